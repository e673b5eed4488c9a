"""Every deployed flow takes its parameter model's fields as top-level parameters: the same
names, types' defaults and UI descriptions, so a run can override one and keep the others, and a
bad value is refused by the model, naming the parameter."""

from __future__ import annotations

import inspect

import pytest

from flows.export_flow import export_flow
from flows.extract_flow import extract_flow
from flows.ingest_flow import ingest_flow
from flows.nightly_flow import nightly_flow
from flows.parameters import (
    ExportParams,
    ExtractParams,
    IngestParams,
    NightlyParams,
    ParameterError,
    TrainParams,
)
from flows.train_flow import train_flow

FLOWS = [(ingest_flow, IngestParams), (train_flow, TrainParams), (extract_flow, ExtractParams),
         (export_flow, ExportParams), (nightly_flow, NightlyParams)]


@pytest.mark.parametrize(("flow", "model"), FLOWS, ids=[m.__name__ for _, m in FLOWS])
def test_the_flow_signature_is_its_model(flow, model):
    signature = inspect.signature(flow.fn)
    assert list(signature.parameters) == list(model.model_fields)
    for name, parameter in signature.parameters.items():
        field = model.model_fields[name]
        if field.is_required():
            assert parameter.default is inspect.Parameter.empty, name
        else:
            assert parameter.default == field.default, name


@pytest.mark.parametrize(("flow", "model"), FLOWS, ids=[m.__name__ for _, m in FLOWS])
def test_the_ui_shows_each_parameter_with_its_model_description(flow, model):
    from prefect.utilities.callables import parameter_schema

    properties = parameter_schema(flow).model_dump(exclude_unset=True)["properties"]
    assert set(properties) == set(model.model_fields)
    for name, field in model.model_fields.items():
        assert field.description and properties[name]["description"] == field.description, name
    assert flow.description and "Args:" not in flow.description


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize(("bad", "said"), [
    ({"shard_size": 0}, "shard_size: Input should be greater than 0"),
    ({"archive": "missing"}, "does not exist; pass a folder of .txt reports"),
])
def test_a_deployment_run_with_a_bad_value_fails_naming_it(tmp_path, bad, said):
    (tmp_path / "annotated").mkdir()
    (tmp_path / "archive").mkdir()
    arguments = {"annotated": tmp_path / "annotated", "archive": tmp_path / "archive",
                 "out": tmp_path / "run", **bad}
    if "archive" in bad:
        arguments["archive"] = tmp_path / bad["archive"]
    state = nightly_flow(**arguments, return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, ParameterError) and said in str(error), error
    assert not (tmp_path / "run").exists()  # refused before any work


def test_a_model_gives_the_flow_its_arguments_and_the_api_plain_json(tmp_path):
    (tmp_path / "annotated").mkdir()
    params = TrainParams(annotated=tmp_path / "annotated", out=tmp_path / "run", profile="tiny")
    assert params.arguments()["annotated"] == tmp_path / "annotated"
    assert params.as_json() == {"annotated": str(tmp_path / "annotated"),
                                "out": str(tmp_path / "run"), "profile": "tiny",
                                "checkpoint": None, "archive": None, "schema_path": None,
                                "split_seed": 42,
                                "split_file": None, "corpus_sha256": None}
    assert TrainParams.from_arguments(params.arguments()) == params
