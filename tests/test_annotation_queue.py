"""The nightly annotation queue: written into the run folder as a brat collection after
extraction, and published as a table artifact read back here from a real Prefect API."""

from __future__ import annotations

import csv
import json

import pytest
from prefect import flow

from flows.annotation_queue import QUEUE_ARTIFACT, annotation_queue
from flows.nightly_flow import nightly_flow
from flows.parameters import NightlyParams
from flows.state import RunLayout
from ingest.corpus import load_corpus
from ingest.generator import generate_corpus
from ingest.schema import load_schema
from pipeline.select_queue import QUEUE_CSV

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _queue_artifact(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        stored = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    (artifact,) = [a for a in stored if a.key == QUEUE_ARTIFACT]
    table = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    return artifact, table


def test_the_nightly_flow_queues_the_nights_new_reports_and_publishes_the_path(tmp_path):
    annotated, archive = tmp_path / "annotated", tmp_path / "archive"
    generate_corpus(12, seed=11, out_dir=annotated)
    generate_corpus(7, seed=12, out_dir=archive, annotated=False, prefix="new")
    # an archive report that is already annotated is never queued
    (archive / "old.txt").write_bytes(next(annotated.glob("*.txt")).read_bytes())
    params = NightlyParams(annotated=annotated, archive=archive, out=tmp_path / "run",
                           profile="tiny", shard_size=3, graph="ladybug", graph_retries=0,
                           queue_size=3)
    state = nightly_flow(**params.arguments(), return_state=True)
    assert state.is_completed()
    result = state.result()
    queue = result.queue
    run_id = result.summary.run_id
    assert queue.folder == RunLayout(params.out).queue / run_id
    assert queue.reports == 3 and queue.candidates == 8
    # the night's peak memory, step by step (the first night trains)
    assert [name for name, _ in result.memory.phases] == ["ingest", "training", "extraction",
                                                          "queue", "graph load"]
    assert all(peak > 50 for _, peak in result.memory.phases)
    with (queue.folder / QUEUE_CSV).open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["rank"] for r in rows] == ["1", "2", "3"]
    assert all(r["report_id"].startswith("new") for r in rows)
    load = load_corpus(queue.folder, load_schema())
    assert [f for f in load.findings if f.is_error] == [] and len(load.documents) == 3
    assert {p.name for p in queue.folder.glob("*.conf")} == {"annotation.conf", "visual.conf",
                                                             "tools.conf"}

    artifact, table = _queue_artifact(state.state_details.flow_run_id)
    assert artifact.type == "table" and str(queue.folder) in artifact.description
    assert [row["report_id"] for row in table] == [r["report_id"] for r in rows]
    assert table[0]["file"] == str(queue.folder / f"{rows[0]['report_id']}.ann")

    # the run resumed after its queue was written: the same queue, not written again
    stamp = (queue.folder / QUEUE_CSV).stat().st_mtime_ns
    @flow
    def resumed():
        return annotation_queue(params.out, archive, annotated, run_id, 3)

    again = resumed()
    assert (again.folder, again.reports, again.candidates) == (queue.folder, 3, 8)
    assert (queue.folder / QUEUE_CSV).stat().st_mtime_ns == stamp

    second = nightly_flow(**params.arguments(), return_state=True)  # nothing new: no queue
    assert second.result().queue.folder is None
    artifact, table = _queue_artifact(second.state_details.flow_run_id)
    assert "no new report" in table[0]["report_id"]
    assert len(list(RunLayout(params.out).queue.iterdir())) == 1
