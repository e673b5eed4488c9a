"""`angiokg select`: the N reports of an archive the model would learn most from, through the
one run protocol (`pipeline.run`) into a `SelectSink`.

1. **plan** streams the archive once; the sink's skip test drops, before the model runs, the
   reports already annotated (same id in `--exclude`) or nearly identical to one (MinHash over
   character n-grams; the test sees each report's text as the plan reads it and keeps only
   counts). The others become shards of references, never texts (a tar.gz or CSV is spooled, as for
   `extract`).
2. **extract_shard** predicts each shard; the sink scores its predictions and offers them to a
   bounded pool of the best N (`extraction.select.QueuePool`: never two near-duplicates), and
   forgets the rest. Memory is N predictions and N signatures, whatever the archive's size.
3. **publish** removes the run's spool; `select_to_folder` then writes the pool's ranking as
   the queue folder (`pipeline.select_queue`), still holding the folder's lock, which it took
   before the model was loaded.

Unlike the Parquet and brat sinks, a `SelectSink` keeps state between shards (the pool, the
counts), so its shards run in the process that planned them, one after the other, which is
what `run_locked` does; it is never sent to Dask workers.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from export.published import RunInfo
from extraction.select import (
    AnnotatedFilter,
    QueuePool,
    Selection,
    SelectSummary,
    new_pool,
    selection_of,
)
from extraction.shard import DocumentExtractor
from extraction.uncertainty import DEFAULT_STRATEGY
from ingest.archive import ArchiveReport, iter_reports
from ingest.document import ReportStatus
from ingest.model_notes import DEFAULT_NOTE_BELOW
from ingest.near_duplicates import DEFAULT_THRESHOLD
from ingest.schema import Schema
from pipeline.defaults import DEFAULT_BATCH_SIZE
from pipeline.lock import output_lock
from pipeline.run import RunSettings, new_run_id, run_locked
from pipeline.select_queue import check_queue_folder, write_queue
from pipeline.sinks import Began, StagedShard, folder_spool, output_inside_archive
from pipeline.summary import RunSummary


@dataclass(frozen=True)
class SelectSink:
    """Predictions into `pool`; counts into `summary`. `out` is the folder the run holds the
    lock of and spools into (the queue folder)."""

    out: Path
    pool: QueuePool
    annotated: AnnotatedFilter
    summary: SelectSummary

    def begin(self, run_id: str, model_version: str, *, fresh: bool) -> Began:
        return Began(RunInfo(run_id, date.today(), model_version))

    @contextlib.contextmanager
    def already_done(self, run: RunInfo) -> Iterator[Callable[[ArchiveReport], bool]]:
        def skip(report: ArchiveReport) -> bool:
            if self.annotated(report):
                self.summary.inputs += 1
                return True
            return False

        yield skip

    def skip_folder(self, archive: Path) -> Path | None:
        return output_inside_archive(self.out, archive)

    def scratch(self, run: RunInfo) -> Path:
        return folder_spool(self.out, run.run_id)

    def write_shard(self, run: RunInfo, shard: StagedShard, schema: Schema) -> None:
        summary = self.summary
        for outcome in shard.extracted.outcomes:
            summary.inputs += 1
            if outcome.status == ReportStatus.OK:
                continue
            if outcome.status == ReportStatus.QUARANTINED:
                summary.quarantined += 1
            else:
                summary.failed += 1
            if len(summary.problems) < summary.MAX_PROBLEMS:
                summary.problems.append(f"{outcome.status}: {outcome.reason}")
        for document in shard.extracted.documents:
            self.pool.offer(document)

    def publish(self, run: RunInfo, summary: RunSummary) -> None:
        shutil.rmtree(self.scratch(run), ignore_errors=True)

    def publishing(self, run: RunInfo) -> bool:
        return False

    def abandon(self, run: RunInfo) -> None:
        shutil.rmtree(self.scratch(run), ignore_errors=True)


def select(extractor: DocumentExtractor, archive: str | Path, n: int, *,
           out: str | Path | None = None, exclude: str | Path | None = None,
           strategy: str = DEFAULT_STRATEGY, seed: int = 0,
           threshold: float = DEFAULT_THRESHOLD, batch_size: int = DEFAULT_BATCH_SIZE
           ) -> Selection:
    """Stream `archive` through the model and keep the best `n` reports not yet annotated.

    The caller holds `out`'s lock (`pipeline.lock.output_lock`) when `out` is given; without
    it, a temporary folder takes the run's spool. (The nightly's queue is chosen from the
    predictions its run published instead: pipeline.run_queue.)
    """
    pool = new_pool(n, strategy, seed, threshold)  # a bad strategy or n fails before any work
    summary = SelectSummary(strategy, n)
    annotated = AnnotatedFilter(iter_reports(exclude) if exclude is not None else (), summary,
                                threshold)
    settings = RunSettings(run_id=new_run_id().replace("run-", "select-"),
                           batch_size=batch_size)
    with contextlib.ExitStack() as stack:
        folder = (Path(out) if out is not None
                  else Path(stack.enter_context(tempfile.TemporaryDirectory(
                      prefix="angiokg-select-"))))
        sink = SelectSink(folder.absolute(), pool, annotated, summary)
        run_locked(archive, sink, extractor, settings)
    return selection_of(pool, summary)


def select_to_folder(load_extractor: Callable[[], DocumentExtractor], archive: str | Path,
                     out: str | Path, n: int, *, wait: bool = False,
                     command: str = "angiokg select", note_below: float = DEFAULT_NOTE_BELOW,
                     exclude: str | Path | None = None, strategy: str = DEFAULT_STRATEGY,
                     seed: int = 0, threshold: float = DEFAULT_THRESHOLD,
                     batch_size: int = DEFAULT_BATCH_SIZE) -> Selection:
    """`select` written as a queue folder (`pipeline.select_queue`): `out` must be new or
    empty, and is locked from before the model is loaded (a refused or waiting run holds no
    model) until the queue is written."""
    check_queue_folder(out)
    with output_lock(out, wait=wait, command=command):
        extractor = load_extractor()
        selection = select(extractor, archive, n, out=out, exclude=exclude, strategy=strategy,
                           seed=seed, threshold=threshold, batch_size=batch_size)
        write_queue(selection, out, extractor.schema, note_below=note_below)
    return selection
