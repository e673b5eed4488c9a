"""The nightly's annotation queue from what tonight's run published: the model runs once a night.

`angiokg select` (pipeline.select) runs the model over an archive to score it. The nightly has
just done that: tonight's run wrote every new report's predictions, confidences and doubt to its
Parquet partitions. So its queue is chosen from there, the same way `select` chooses:

1. **score**: each new report's prediction, read back from the run's tables shard by shard
   (export.run_documents), scored by the strategy; only the scores are kept.
2. **choose**: the archive is streamed once, in its order, as `select` streams it; each new
   report whose text is still the one the run extracted (its hash in the run's manifest) goes
   through the same `AnnotatedFilter` (already annotated, or nearly identical to an annotated
   report) and is offered to the same `QueuePool` (the best N, never two near-duplicates),
   holding its text but not its prediction. A report changed since is left for the next night,
   which extracts it again.
3. **write**: the N chosen are read back in full with their texts and written as the queue
   folder (pipeline.select_queue), under the folder's lock.

Memory: a score per new report, N texts and N signatures; the run's tables are read one shard
at a time. The picks are the ones `select` over the same reports would make from the same
predictions (tests/test_run_queue.py checks it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path

from export.parquet_sink import read_run_shards
from export.published import RunInfo
from export.run_documents import DATASETS_READ, predictions
from extraction.select import (
    AnnotatedFilter,
    Pick,
    QueuePool,
    Selection,
    SelectSummary,
    selection_of,
)
from extraction.uncertainty import DEFAULT_STRATEGY, scorer
from ingest.archive import DEFAULT_MAX_BYTES, iter_reports
from ingest.document import Document
from ingest.model_notes import DEFAULT_NOTE_BELOW
from ingest.near_duplicates import DEFAULT_THRESHOLD
from ingest.schema import Schema
from pipeline.lock import output_lock
from pipeline.select_queue import check_queue_folder, write_queue


def _run_predictions(root: str | Path, run: RunInfo, ids: set[str],
                     texts: Mapping[str, str] | None = None) -> Iterator[Document]:
    """The run's predictions of `ids`, read one shard's tables at a time."""
    for tables in read_run_shards(root, run, DATASETS_READ):
        yield from predictions(tables, texts, ids=ids)


def run_scores(root: str | Path, run: RunInfo, ids: set[str], strategy: str = DEFAULT_STRATEGY,
               seed: int = 0) -> dict[str, float]:
    """The strategy's score of each of `ids` that the run processed, from its tables (an
    unknown strategy fails before any is read)."""
    score_of = scorer(strategy)
    return {document.doc_id: score_of(document, seed)
            for document in _run_predictions(root, run, ids)}


def select_from_run(root: str | Path, run: RunInfo, new: Mapping[str, str],
                    archive: str | Path, n: int, *, exclude: str | Path | None = None,
                    strategy: str = DEFAULT_STRATEGY, seed: int = 0,
                    threshold: float = DEFAULT_THRESHOLD,
                    max_bytes: int = DEFAULT_MAX_BYTES) -> Selection:
    """The best `n` of `new` (report id -> the hash of the text the run extracted), chosen from
    the predictions run `run` published under `root`; `archive` gives their texts."""
    scores = run_scores(root, run, set(new), strategy, seed)
    summary = SelectSummary(strategy, n)
    annotated = AnnotatedFilter(iter_reports(exclude) if exclude is not None else (), summary,
                                threshold)
    pool = QueuePool(n, lambda document: scores[document.doc_id], threshold)
    met, changed = set(), 0
    for report in iter_reports(archive, max_bytes=max_bytes):
        if report.report_id not in scores or report.report_id in met:
            continue
        met.add(report.report_id)
        if report.text is None or report.content_sha256 != new[report.report_id]:
            changed += 1
            continue
        summary.inputs += 1
        if not annotated(report):
            pool.offer(Document(report.report_id, report.text, annotated=False,
                                source=report.source))
    gone = len(scores) - len(met)
    if changed:
        summary.problems.append(f"{changed} of run {run.run_id}'s reports changed in the archive "
                                "since it extracted them: left for the next night's queue")
    if gone:
        summary.problems.append(f"{gone} of run {run.run_id}'s reports are no longer in the "
                                "archive: not queued")
    chosen = selection_of(pool, summary)
    return Selection(_as_predicted(root, run, chosen), chosen.summary)


def _as_predicted(root: str | Path, run: RunInfo, chosen: Selection) -> tuple[Pick, ...]:
    """The picks with the run's predictions in place of their text-only stand-ins."""
    texts = {pick.document.doc_id: pick.document.text for pick in chosen.picks}
    full = {document.doc_id: document
            for document in _run_predictions(root, run, set(texts), texts)}
    return tuple(replace(pick, document=full[pick.document.doc_id]) for pick in chosen.picks)


def queue_from_run(root: str | Path, run: RunInfo, new: Mapping[str, str],
                   archive: str | Path, out: str | Path, n: int, schema: Schema, *,
                   exclude: str | Path | None = None, wait: bool = False,
                   command: str = "angiokg nightly: annotation queue",
                   note_below: float = DEFAULT_NOTE_BELOW,
                   max_bytes: int = DEFAULT_MAX_BYTES) -> Selection:
    """`select_from_run` written as a queue folder: `out` must be new or empty, and is locked
    until the queue is written."""
    check_queue_folder(out)
    with output_lock(out, wait=wait, command=command):
        selection = select_from_run(root, run, new, archive, n, exclude=exclude,
                                    max_bytes=max_bytes)
        write_queue(selection, out, schema, note_below=note_below)
    return selection
