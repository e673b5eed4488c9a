"""`angiokg run-sample | nightly | serve`: the deployments `serve` runs (built, not served), the
offline environment of a local run, and the refusals a user sees before any work starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from flows.cli import main
from flows.flows_cli import (
    DEFAULT_CRON,
    DEFAULT_TIMEZONE,
    SERVED_DEPLOYMENT,
    build_deployments,
    offline_prefect_environment,
)
from flows.parameters import ExportParams, ExtractParams, IngestParams, NightlyParams, TrainParams
from flows.state import RunLayout

STEPS = ("nightly", "train", "ingest", "extract", "export")


@pytest.fixture
def params(tmp_path) -> NightlyParams:
    (tmp_path / "annotated").mkdir()
    (tmp_path / "archive").mkdir()
    return NightlyParams(annotated=tmp_path / "annotated", archive=tmp_path / "archive",
                         out=tmp_path / "run", profile="tiny", shard_size=7, workers=3,
                         dask_address="tcp://scheduler:8786", graph="ladybug")


@pytest.fixture
def saved_environ():
    """The CLI handlers set Prefect's environment for the process: put it back afterwards."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def _by_name(deployments) -> dict:
    """{step: deployment}, e.g. "nightly" for angiokg-nightly/local."""
    return {d.flow_name.removeprefix("angiokg-"): d for d in deployments}


def test_serve_builds_one_deployment_per_flow_apart_from_the_worker_ones(params):
    deployments = build_deployments(params)
    assert [f"{d.flow_name}/{d.name}" for d in deployments] == [
        f"angiokg-{step}/local" for step in STEPS]
    assert SERVED_DEPLOYMENT == "local"
    for step, d in _by_name(deployments).items():
        assert d.entrypoint == f"flows/{step}_flow.py:{step}_flow"
        assert "angiokg" in d.tags
        assert d.concurrency_limit == (None if step == "ingest" else 1)
    # infra/prefect.yaml's deployments are named after their step or pool, never `local`.
    infra = yaml.safe_load((Path(__file__).parents[1] / "infra" / "prefect.yaml").read_text())
    assert SERVED_DEPLOYMENT not in {d["name"] for d in infra["deployments"]}


def test_nightly_runs_at_two_in_shanghai_by_default_and_nothing_else_is_scheduled(params):
    deployments = _by_name(build_deployments(params))
    (nightly,) = deployments.pop("nightly").schedules
    assert (nightly.schedule.cron, nightly.schedule.timezone) == ("0 2 * * *", "Asia/Shanghai")
    assert (DEFAULT_CRON, DEFAULT_TIMEZONE) == ("0 2 * * *", "Asia/Shanghai")
    assert nightly.active
    assert all(not d.schedules for d in deployments.values())


def test_the_nightly_cron_and_time_zone_are_configurable(params):
    nightly = _by_name(build_deployments(params, "30 3 * * 1-5", "Europe/Berlin"))["nightly"]
    (schedule,) = nightly.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("30 3 * * 1-5",
                                                                     "Europe/Berlin")


@pytest.mark.parametrize(("cron", "timezone", "flag"), [
    ("0 25 * * *", "Asia/Shanghai", "--cron"), ("0 2 * * *", "Mars/Olympus", "--timezone")])
def test_a_bad_schedule_is_refused_naming_the_option(params, cron, timezone, flag):
    with pytest.raises(ValueError, match=f"^{flag} .* is not valid"):
        build_deployments(params, cron, timezone)


def test_deployment_parameters_are_json_and_round_trip_into_the_flow_parameters(params):
    import json

    deployments = _by_name(build_deployments(params))
    expected = {"nightly": (NightlyParams, params), "train": (TrainParams, params.train_params()),
                "ingest": (IngestParams, params.ingest_params()),
                "extract": (ExtractParams, params.extract_params()),
                "export": (ExportParams, params.export_params())}
    for name, (model, value) in expected.items():
        stored = deployments[name].parameters
        assert set(stored) == set(model.model_fields)  # top-level: one can be overridden alone
        assert json.loads(json.dumps(stored)) == stored  # what the API stores: plain JSON
        assert model.model_validate(stored) == value, name
    assert deployments["nightly"].parameters["annotated"] == str(params.annotated)


def test_deployment_parameters_satisfy_the_schema_the_api_enforces(params):
    """A flow run of the deployment is created only when its parameters match the flow's
    parameter schema (built from the pydantic models)."""
    from prefect.utilities.callables import parameter_schema
    from prefect.utilities.schema_tools import ValidationError, validate

    from flows.export_flow import export_flow
    from flows.extract_flow import extract_flow
    from flows.ingest_flow import ingest_flow
    from flows.nightly_flow import nightly_flow
    from flows.train_flow import train_flow

    flows = {f.name: f for f in (nightly_flow, train_flow, ingest_flow, extract_flow,
                                 export_flow)}
    for deployment in build_deployments(params):
        assert deployment.enforce_parameter_schema
        schema = parameter_schema(flows[deployment.flow_name]).model_dump(exclude_unset=True)
        validate(deployment.parameters, schema, raise_on_error=True)
    nightly = _by_name(build_deployments(params))["nightly"]
    wrong = {**nightly.parameters, "workers": "many"}
    with pytest.raises(ValidationError, match="workers"):
        validate(wrong, parameter_schema(nightly_flow).model_dump(exclude_unset=True),
                 raise_on_error=True)


def test_offline_environment_puts_prefect_home_in_the_run_folder(tmp_path):
    environ: dict[str, str] = {}
    applied = offline_prefect_environment(tmp_path / "run", environ)
    home = Path(environ["PREFECT_HOME"])
    assert home == RunLayout(tmp_path / "run").prefect_home.resolve()
    assert home.is_relative_to((tmp_path / "run").resolve())
    assert home.is_dir()  # Prefect would not create the run folder's state/ above it
    assert environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert environ["DO_NOT_TRACK"] == "1"
    assert applied == environ


def test_progress_bars_are_for_a_person_at_a_terminal(tmp_path):
    logged: dict[str, str] = {}
    offline_prefect_environment(tmp_path / "run", logged, at_terminal=False)
    assert logged["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"  # `make run > log`, a worker
    watched: dict[str, str] = {}
    offline_prefect_environment(tmp_path / "run", watched, at_terminal=True)
    assert "HF_HUB_DISABLE_PROGRESS_BARS" not in watched


def test_offline_environment_keeps_what_the_user_set(tmp_path):
    environ = {"PREFECT_HOME": "/srv/prefect", "PREFECT_API_URL": "http://prefect:4200/api",
               "DO_NOT_TRACK": "0"}
    applied = offline_prefect_environment(tmp_path / "run", environ)
    assert environ["PREFECT_HOME"] == "/srv/prefect"
    assert environ["PREFECT_API_URL"] == "http://prefect:4200/api"
    assert environ["DO_NOT_TRACK"] == "0"
    assert not {"PREFECT_HOME", "PREFECT_API_URL", "DO_NOT_TRACK"} & set(applied)


def test_nightly_with_a_missing_folder_exits_naming_the_parameter(tmp_path, saved_environ):
    missing = tmp_path / "no-such-folder"
    (tmp_path / "archive").mkdir()
    before = dict(os.environ)
    with pytest.raises(SystemExit) as exited:
        main(["nightly", "--annotated", str(missing), "--archive", str(tmp_path / "archive"),
              "--out", str(tmp_path / "run")])
    message = str(exited.value.code)
    assert message.startswith("angiokg nightly: --annotated: ")
    assert str(missing) in message and "does not exist" in message
    assert os.environ == before  # refused before the environment was touched
    assert not (tmp_path / "run").exists()


def test_nightly_with_a_bad_number_exits_naming_the_flag(tmp_path, saved_environ):
    for name in ("annotated", "archive"):
        (tmp_path / name).mkdir()
    with pytest.raises(SystemExit) as exited:
        main(["nightly", "--annotated", str(tmp_path / "annotated"), "--archive",
              str(tmp_path / "archive"), "--out", str(tmp_path / "run"), "--shard-size", "0"])
    assert str(exited.value.code).startswith("angiokg nightly: --shard-size: ")


def test_serve_without_a_prefect_server_is_refused(tmp_path, saved_environ):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    for name in ("annotated", "archive"):
        (tmp_path / name).mkdir()
    os.environ.pop("PREFECT_API_URL", None)
    with temporary_settings(restore_defaults={PREFECT_API_URL}), \
            pytest.raises(SystemExit, match="PREFECT_API_URL is not set"):
        main(["serve", "--annotated", str(tmp_path / "annotated"), "--archive",
              str(tmp_path / "archive"), "--out", str(tmp_path / "run")])
