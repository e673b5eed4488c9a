"""Where a run's shards go: the `Sink` protocol and its two sinks.

- `ParquetSink`: the five Parquet datasets of `export.parquet_sink` with the manifest
  (`pipeline.manifest`) as write-ahead log; shards are staged, then the run is published whole.
  `angiokg extract` and the nightly flow use it.
- `BratSink`: a `.txt` + `.ann` pair per report for annotators to correct (`angiokg
  preannotate`); an existing `.ann` is never overwritten without `force`.

A sink is a small frozen dataclass (a folder and options), so it travels inside the run's plan
to whichever thread or Dask worker extracts a shard; each method opens what it needs.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

from export import parquet_sink
from export.current import refresh_current
from export.published import RunInfo, is_published, publications
from extraction.shard import ExtractedShard
from ingest.archive import ArchiveReport
from ingest.atomic import write_json_atomic
from ingest.brat_collection import write_collection_confs
from ingest.brat_writer import write_document
from ingest.document import Document, ReportStatus
from ingest.model_notes import DEFAULT_NOTE_BELOW, with_model_notes
from ingest.schema import Schema
from pipeline.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestEntry,
    RunRecord,
    hold,
    release,
)
from pipeline.summary import RunSummary

log = logging.getLogger(__name__)

RUNS_DIR = "_runs"  # underscore: dataset readers skip it


@dataclass(frozen=True)
class Began:
    """A run as its sink prepared it: `resumed_shards` were staged by an earlier attempt."""

    run: RunInfo
    resumed_shards: int = 0


@dataclass(frozen=True)
class StagedShard:
    """A shard as extracted: its reports as read (ids and hashes) and the model's outcome."""

    key: str
    reports: tuple[ArchiveReport, ...]
    extracted: ExtractedShard


class Sink(Protocol):
    @property
    def out(self) -> Path: ...

    def begin(self, run_id: str, model_version: str, *, fresh: bool) -> Began:
        """Recover what a killed run left, then start (or resume) this run."""

    def already_done(self, run: RunInfo) -> contextlib.AbstractContextManager[
            Callable[[ArchiveReport], bool]]:
        """A test, valid within the block: has this report nothing left to do? It sees the
        report as the plan reads it, text included (`angiokg select` skips near-duplicates
        of annotated reports there), and must keep nothing of it."""

    def skip_folder(self, archive: Path) -> Path | None:
        """A folder of a folder archive the run must not read (its own output), or None."""

    def scratch(self, run: RunInfo) -> Path:
        """A folder of the run's own for files that live until it is published."""

    def write_shard(self, run: RunInfo, shard: StagedShard, schema: Schema) -> None:
        """Write (stage) the shard and record its reports; return once that is durable."""

    def publish(self, run: RunInfo, summary: RunSummary) -> None:
        """Make the run's outputs visible, whole."""

    def publishing(self, run: RunInfo) -> bool:
        """True once `publish` has passed the point after which the run completes on the next
        start (it must not be abandoned then)."""

    def abandon(self, run: RunInfo) -> None:
        """The run found nothing new: leave no trace of it."""


# --- Parquet -------------------------------------------------------------------------------


def summary_path(out: Path, run_id: str) -> Path:
    return out / RUNS_DIR / f"{run_id}.json"


@dataclass(frozen=True)
class ParquetSink:
    out: Path

    def begin(self, run_id: str, model_version: str, *, fresh: bool) -> Began:
        # Held open until publish or abandon: the manifest's commits then wait for no disk
        # (pipeline.manifest, "Durability").
        manifest_file = self.out / MANIFEST_NAME
        hold(manifest_file)
        try:
            with Manifest(manifest_file) as manifest:
                recover(self.out, manifest, keep=run_id)
                record = manifest.start_run(run_id, date.today(), model_version, fresh=fresh)
                if record.model_version != model_version:
                    raise ValueError(f"run id {run_id!r} was started with model "
                                     f"{record.model_version}, not {model_version}; use a new "
                                     "--run-id for a new model")
                run = RunInfo(run_id, record.run_date, model_version)
                return Began(run, prepare_run(self.out, manifest, run, record))
        except BaseException:
            release(manifest_file)
            raise

    @contextlib.contextmanager
    def already_done(self, run: RunInfo) -> Iterator[Callable[[ArchiveReport], bool]]:
        with Manifest.for_output(self.out) as manifest:
            model_version = run.model_version or ""
            yield lambda report: manifest.is_done(report.report_id, report.content_sha256,
                                                  model_version, run.run_id)

    def skip_folder(self, archive: Path) -> Path | None:
        return None

    def scratch(self, run: RunInfo) -> Path:
        return parquet_sink.staging_dir(self.out, run.run_id) / "_spool"

    def write_shard(self, run: RunInfo, shard: StagedShard, schema: Schema) -> None:
        extracted = shard.extracted
        entries = [ManifestEntry(report.report_id, report.content_sha256,
                                 run.model_version or "", outcome.status, run.run_id, shard.key)
                   for report, outcome in zip(shard.reports, extracted.outcomes, strict=True)]
        tables = parquet_sink.document_tables(extracted.documents, extracted.outcomes, schema,
                                              run)
        # The files first, durable, then their entries in one commit: a shard staged but not
        # recorded (killed in between, or its commit lost in a power cut) is redone.
        parquet_sink.write_shard(self.out, run, shard.key, tables)
        with Manifest.for_output(self.out) as manifest:  # one connection per thread or worker
            manifest.commit_shard(run.run_id, shard.key, entries)

    def publish(self, run: RunInfo, summary: RunSummary) -> None:
        # Order matters for a kill at any step: the manifest's entries durable, the summary
        # (harmless alone: the next start removes it with the run's staging), then the
        # journaled commit, the current view and the manifest's mark; `recover` finishes
        # whatever a kill left undone (the mark, too, when a power cut rolled it back).
        shutil.rmtree(self.scratch(run), ignore_errors=True)
        try:
            with Manifest.for_output(self.out) as manifest:
                manifest.make_durable()
                write_json_atomic(summary_path(self.out, run.run_id), summary.to_dict())
                parquet_sink.commit_run(self.out, run)
                refresh_current(self.out)
                manifest.mark_committed(run.run_id)
        finally:
            release(self.out / MANIFEST_NAME)

    def publishing(self, run: RunInfo) -> bool:
        return parquet_sink.commit_started(self.out, run.run_id)

    def abandon(self, run: RunInfo) -> None:
        parquet_sink.discard_staging(self.out, run.run_id)
        published = is_published(self.out, run.run_id)
        if not published:
            summary_path(self.out, run.run_id).unlink(missing_ok=True)
        try:
            with Manifest.for_output(self.out) as manifest:
                if published:
                    manifest.mark_committed(run.run_id)  # a redo that found nothing: as it was
                else:
                    manifest.drop_run(run.run_id)
        finally:
            release(self.out / MANIFEST_NAME)


def recover(out: Path, manifest: Manifest, *, keep: str) -> None:
    """Make the folder whole again after a run killed at any moment; `keep` is the run about
    to start (its staged shards are resumed, not removed).

    1. a publish cut short is finished (`parquet_sink.finish_commits`), and the current view
       brought up to date;
    2. a run published but not yet recorded so in the manifest is recorded (else a plain rerun
       would extract and publish its reports again);
    3. the staging of every other killed run is removed with its manifest entries: a plain
       rerun extracts those reports again, once.
    """
    for run in parquet_sink.finish_commits(out):
        log.warning("run %s: its publish was cut short; finished now", run.run_id)
    refresh_current(out)
    for publication in publications(out):
        record = manifest.run(publication.run.run_id)
        if record is not None and not record.committed:
            log.warning("run %s was published but not recorded so; recorded now",
                        record.run_id)
            manifest.mark_committed(record.run_id)
    staged = set(parquet_sink.staged_runs(out))
    for record in manifest.runs(committed=False):
        if record.run_id != keep:
            staged.add(record.run_id)
    for run_id in sorted(staged - {keep}):
        log.warning("run %s was killed before it was published; removing its staged outputs "
                    "(this run extracts its reports again)", run_id)
        parquet_sink.discard_staging(out, run_id)
        if is_published(out, run_id):  # killed while redoing a published run: as it was
            manifest.mark_committed(run_id)
        else:
            manifest.drop_run(run_id)
            summary_path(out, run_id).unlink(missing_ok=True)


def prepare_run(out: Path, manifest: Manifest, run: RunInfo, record: RunRecord) -> int:
    """Make the manifest agree with what is staged for this run; returns the shards kept.

    - published before: the run is redone from scratch (its partition will be replaced);
    - interrupted: a staged shard is kept (its reports skipped) only when it has both its
      marker and its manifest entries; one with a marker but no entries (killed between its
      files and its commit, or the commit rolled back by a power cut: `pipeline.manifest`,
      "Durability") is discarded and redone, as is a shard marked pending; entries of shards
      no longer staged are dropped so they are redone.
    """
    for pending in manifest.pending():
        if pending.run_id != run.run_id:
            continue
        log.warning("run %s shard %s was interrupted; discarding its partial outputs and "
                    "extracting its reports again", run.run_id, pending.shard)
        parquet_sink.discard_shard(out, run, pending.shard)
        manifest.clear_pending(pending)
    if record.committed:
        log.info("run %s was published before; redoing it (its partition is replaced)",
                 run.run_id)
        parquet_sink.begin_run(out, run, resume=False)
        manifest.forget_run(run.run_id)
        manifest.mark_committed(run.run_id, False)
        return 0
    staged = parquet_sink.begin_run(out, run, resume=True)
    recorded = manifest.shards(run.run_id)
    for shard in sorted(staged - recorded):
        log.warning("run %s shard %s was staged but never recorded; discarding it and "
                    "extracting its reports again", run.run_id, shard)
        parquet_sink.discard_shard(out, run, shard)
    staged &= recorded
    dropped = manifest.forget_run(run.run_id, keep_shards=staged)
    if staged or dropped:
        log.info("run %s resumed: %d shards kept; %d reports to redo", run.run_id, len(staged),
                 dropped)
    return len(staged)


# --- brat ----------------------------------------------------------------------------------


def output_inside_archive(out: Path, archive: Path) -> Path | None:
    """A brat folder written inside the folder archive it reads: the folder the plan must skip
    (its own output is not input), else None."""
    out, source = out.resolve(), archive.resolve()
    return out if source.is_dir() and out.is_relative_to(source) else None


def folder_spool(out: Path, run_id: str) -> Path:
    """The scratch folder of a run writing a brat folder: tar.gz/CSV members spooled there
    live until the run ends."""
    return out / f".angiokg-spool-{run_id}"


@dataclass(frozen=True)
class BratSink:
    """Pre-annotations as brat pairs in `out`. A report whose `.ann` is already there is kept
    as the annotators left it (skipped) unless `force`; an `out` inside a folder archive is
    not read as input."""

    out: Path
    force: bool = False
    note_below: float = DEFAULT_NOTE_BELOW  # AnnotatorNotes "model 0.41" under it

    def begin(self, run_id: str, model_version: str, *, fresh: bool) -> Began:
        return Began(RunInfo(run_id, date.today(), model_version))

    @contextlib.contextmanager
    def already_done(self, run: RunInfo) -> Iterator[Callable[[ArchiveReport], bool]]:
        def annotated(report: ArchiveReport) -> bool:
            return (not self.force and report.problem is None
                    and (self.out / f"{report.report_id}.ann").exists())

        yield annotated

    def skip_folder(self, archive: Path) -> Path | None:
        return output_inside_archive(self.out, archive)

    def scratch(self, run: RunInfo) -> Path:
        return folder_spool(self.out, run.run_id)

    def write_shard(self, run: RunInfo, shard: StagedShard, schema: Schema) -> None:
        # OUT is a brat collection: annotation.conf, visual.conf, tools.conf (ingest)
        write_collection_confs(self.out, schema)
        predicted = {d.doc_id: d for d in shard.extracted.documents}
        for report, outcome in zip(shard.reports, shard.extracted.outcomes, strict=True):
            if outcome.status == ReportStatus.QUARANTINED or report.text is None:
                continue
            # A report the model failed on is still copied, with an empty .ann.
            document = predicted.get(report.report_id) or Document(
                report.report_id, report.text, annotated=False)
            write_document(with_model_notes(document, self.note_below), self.out)

    def publish(self, run: RunInfo, summary: RunSummary) -> None:
        shutil.rmtree(self.scratch(run), ignore_errors=True)

    def publishing(self, run: RunInfo) -> bool:
        return False

    def abandon(self, run: RunInfo) -> None:
        shutil.rmtree(self.scratch(run), ignore_errors=True)
