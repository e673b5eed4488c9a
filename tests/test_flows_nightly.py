"""The nightly flow end to end (tiny profile, a handful of generated reports), twice."""

from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as ds
import pytest

from export.graph_stores import LADYBUG_DB
from export.ladybug_store import LadybugStore
from flows.nightly_flow import nightly_flow, retrain_decision
from flows.parameters import NightlyParams
from flows.state import CurrentModel, RunLayout, read_current_model, read_graph_ledger
from ingest.generator import generate_corpus

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _inputs(root: Path) -> tuple[Path, Path]:
    annotated, archive = root / "annotated", root / "archive"
    generate_corpus(12, seed=11, out_dir=annotated)
    generate_corpus(7, seed=12, out_dir=archive, annotated=False, prefix="new")
    (archive / "empty.txt").write_bytes(b"")  # quarantined, but counted
    return annotated, archive


def _rows(out: Path, dataset: str) -> int:
    return ds.dataset(RunLayout(out).extract / dataset, format="parquet",
                      partitioning="hive").count_rows()


def _graph_reports(out: Path) -> int:
    with LadybugStore(RunLayout(out).graph / LADYBUG_DB, read_only=True) as store:
        return store.query("MATCH (r:Report) RETURN count(r)").rows[0][0]


def test_nightly_twice_extracts_nothing_new_and_duplicates_nothing(tmp_path):
    annotated, archive = _inputs(tmp_path)
    params = NightlyParams(annotated=annotated, archive=archive, out=tmp_path / "run",
                           profile="tiny", shard_size=3, graph="ladybug", graph_retries=0)
    first = nightly_flow(**params.arguments())
    s = first.summary
    assert first.retrained and s.inputs == 8
    assert s.processed + s.quarantined + s.failed == s.inputs
    assert s.quarantined == 1 and s.extracted == 7
    assert read_current_model(RunLayout(params.out)).model_dir == first.model.model_dir
    reports, entities = _rows(params.out, "reports"), _rows(params.out, "entities")
    assert reports == 8 and entities > 0
    assert _graph_reports(params.out) > 0
    graph_before = _graph_reports(params.out)

    second_state = nightly_flow(**params.arguments(), return_state=True)
    second = second_state.result()
    assert not second.retrained and second.retrain_reason == "the annotated corpus is unchanged"
    assert second.summary.inputs == 8 and second.summary.extracted == 0
    # Every input is accounted for again: as already done, the empty one as still quarantined.
    assert second.summary.skipped == 7 and second.summary.processed == 7
    assert second.summary.quarantined == 1
    assert _rows(params.out, "entities") == entities
    assert _graph_reports(params.out) == graph_before
    # A night with nothing new publishes no (empty) run: only the first is there to load.
    assert not second.summary.published
    night = _night_artifact(second_state.state_details.flow_run_id)
    assert "retrain: **no**, the annotated corpus is unchanged" in night
    assert "**Nothing new**: every report in the archive was done before" in night
    assert "nothing new to load" in night
    key = first.export.store
    assert [e.split("#")[0] for e in read_graph_ledger(RunLayout(params.out), key)] == [
        first.summary.run_id]
    assert _rows(params.out, "reports") == reports


def test_retrain_decision_follows_the_policy(tmp_path):
    current = CurrentModel(str(tmp_path), "abc", "tiny", "t")
    assert retrain_decision("on-change", current, "abc", "tiny") == (
        False, "the annotated corpus is unchanged")
    assert retrain_decision("on-change", current, "xyz", "tiny")[0]
    assert retrain_decision("on-change", current, "abc", "default")[0]
    assert retrain_decision("always", current, "abc", "tiny")[0]
    assert not retrain_decision("never", current, "xyz", "tiny")[0]
    assert retrain_decision("on-change", None, "abc", "tiny") == (True, "no current model yet")
    with pytest.raises(ValueError, match="retrain='never'"):
        retrain_decision("never", None, "abc", "tiny")


def _night_artifact(flow_run_id) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        stored = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    (night,) = [a for a in stored if a.key == "angiokg-night"]
    return night.data


def test_no_gpu_worker_fails_the_night_after_extracting_with_the_current_model(
        tmp_path, gpu_deployment):
    pool, deployment = gpu_deployment
    annotated, archive = _inputs(tmp_path)
    params = NightlyParams(annotated=annotated, archive=archive, out=tmp_path / "run",
                           profile="tiny", shard_size=3, graph="ladybug", graph_retries=0)
    first = nightly_flow(**params.arguments())  # trains here: no train_deployment
    generate_corpus(2, seed=13, out_dir=archive, annotated=False, prefix="later")

    state = nightly_flow(**{**params.arguments(), "retrain": "always",
                            "train_deployment": deployment, "on_no_gpu": "fail"},
                         return_state=True)

    assert state.is_failed()
    assert f"no worker is online in work pool {pool}" in state.message
    assert "start-gpu-worker.sh" in state.message and "on_no_gpu=cpu" in state.message
    night = state.result(raise_on_failure=False).result
    assert night.model == first.model  # tonight's extraction used the current model
    assert night.summary.extracted == 2 and night.export.loaded == (night.summary.run_id,)
    summary = _night_artifact(state.state_details.flow_run_id)
    assert summary.startswith("# nightly-") and "**Failed**" in summary
    assert f"work pool {pool}" in summary and "| 10 | 9 | 2 | 7 | 1 | 0 |" in summary


def test_no_gpu_worker_trains_on_the_cpu_worker_when_the_parameter_says_so(
        tmp_path, gpu_deployment):
    _, deployment = gpu_deployment
    annotated, archive = _inputs(tmp_path)
    params = NightlyParams(annotated=annotated, archive=archive, out=tmp_path / "run",
                           profile="tiny", shard_size=3, graph="ladybug", graph_retries=0,
                           train_deployment=deployment, on_no_gpu="cpu")

    state = nightly_flow(**params.arguments(), return_state=True)

    assert state.is_completed()
    night = state.result()
    assert night.retrained and "on the CPU worker" in night.training.where
    assert night.model.model_dir == read_current_model(RunLayout(params.out)).model_dir
    summary = _night_artifact(state.state_details.flow_run_id)
    assert ": completed" in summary and "retrain: **yes**, no current model yet" in summary
    assert "on the CPU worker: no worker is online" in summary
    assert "## Runs of this night" in summary and "training (evaluation, training curve)" in summary


def test_the_nightly_training_reads_the_archive_for_its_vocabulary_and_pretraining(tmp_path):
    from extraction.tokenizer import CharTokenizer
    from flows.train_flow import train_flow

    annotated, archive = _inputs(tmp_path)
    (archive / "only-here.txt").write_text("前降支近段见鑫样狭窄。\n", encoding="utf-8")
    params = NightlyParams(annotated=annotated, archive=archive, out=tmp_path / "run",
                           profile="tiny")
    assert params.train_params().archive == archive
    pointer = train_flow(**params.train_params().arguments())
    assert not any("鑫" in p.read_text("utf-8") for p in annotated.glob("*.txt"))
    assert "鑫" in CharTokenizer.from_dir(Path(pointer.model_dir) / "encoder").vocab
