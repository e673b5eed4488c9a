"""The nightly annotation queue: after extraction, the N of the night's new reports the model
would learn most from, written as a brat collection in the run folder and published as a Prefect
table artifact with the path to give annotators.

"New" are the reports tonight's extraction run extracted (after a retraining that is the whole
archive again: the new model scores it afresh). They are scored from the predictions that run
published, so the model runs once a night (pipeline.run_queue). Reports already annotated, or
nearly identical to an annotated one, are never queued.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from export.published import RunInfo
from flows.state import RunLayout
from ingest.schema import load_schema
from pipeline.defaults import DEFAULT_MAX_BYTES
from pipeline.manifest import Manifest
from pipeline.run_queue import queue_from_run
from pipeline.select_queue import QUEUE_CSV, queue_rows, read_queue

QUEUE_ARTIFACT = "angiokg-annotation-queue"


@dataclass(frozen=True)
class QueueResult:
    folder: Path | None  # None: no new report tonight, no queue written
    reports: int  # queued
    candidates: int  # the night's new reports it chose from


def queue_artifact_rows(folder: Path, rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """The table the UI shows: each queued report with its place in the queue folder."""
    return [{"rank": r["rank"], "report_id": r["report_id"], "score": r["score"],
             "least_sure": r["least_sure"], "file": str(folder / f"{r['report_id']}.ann")}
            for r in rows]


def _publish(folder: Path | None, rows: list[dict[str, object]], new: int) -> None:
    if folder is None:
        table: list[dict[str, object]] = [{"rank": "", "report_id": "(no new report tonight)"}]
        description = "No annotation queue tonight: the extraction found no new report."
    else:
        table = queue_artifact_rows(folder, rows)
        description = (f"Next annotation queue: open `{folder}` in brat (a collection: "
                       "annotation.conf, visual.conf, tools.conf; queue.csv lists the order). "
                       f"{len(rows)} of tonight's {new} new reports, those the model expects "
                       "the most corrections in; near-duplicates of annotated reports left out.")
    create_table_artifact(table=table, key=QUEUE_ARTIFACT, description=description)


@task(name="annotation-queue")
def annotation_queue(out: Path, archive: Path, annotated: Path, run_id: str, size: int,
                     schema_path: Path | None = None,
                     max_report_bytes: int = DEFAULT_MAX_BYTES) -> QueueResult:
    layout = RunLayout(out)
    with Manifest.for_output(layout.extract) as manifest:
        new = manifest.report_hashes(run_id)
        record = manifest.run(run_id)
    folder = layout.queue / run_id
    if not new or record is None:
        _publish(None, [], 0)
        return QueueResult(None, 0, 0)
    if (folder / QUEUE_CSV).is_file():  # a resumed run: tonight's queue is already written
        rows: list[dict[str, object]] = list(read_queue(folder))
    else:
        run = RunInfo(record.run_id, record.run_date, record.model_version)
        selection = queue_from_run(layout.extract, run, new, archive, folder, size,
                                   load_schema(schema_path), exclude=annotated, wait=True,
                                   max_bytes=max_report_bytes)
        # the choice's accounting, and the reports left out (changed since the run, gone)
        get_run_logger().info("annotation queue: %s", selection.summary.format())
        rows = queue_rows(selection.picks)
    _publish(folder, rows, len(new))
    return QueueResult(folder, len(rows), len(new))
