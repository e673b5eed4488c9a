"""Extract an archive into the Parquet datasets: archive -> model -> shards -> sink, crash-safe.

Plain functions (no Prefect here), so the nightly flow, the `angiokg extract` command and the
tests run the same code. Each shard is staged in three steps:

1. the manifest marks the shard pending (write-ahead),
2. the sink stages the shard's files, each atomically (temporary name, then rename),
3. the manifest records the shard's reports and clears the mark, in one transaction.

At the end the sink publishes the staged run as its partition of every dataset (a rename), and
the manifest marks the run committed. A process killed anywhere leaves committed shards and at
most one pending mark; the next start with the same run id discards the pending shard's files,
keeps the staged shards, extracts the remaining reports and publishes: every report's output
ends up present exactly once, and readers never see a partial file or a partial run.

Running a run id again after it was published redoes that run (its partition is replaced, not
added to). A new run id extracts only what no earlier run did with this model version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol

from export import parquet_sink
from extraction.batch import (
    DEFAULT_SHARD_CHARS,
    DEFAULT_SHARD_REPORTS,
    DocumentExtractor,
    RunSummary,
    Shard,
    extract_shards,
)
from extraction.manifest import Manifest, RunRecord
from ingest.archive import DEFAULT_MAX_BYTES, ArchiveReport, iter_reports
from ingest.atomic import write_json_atomic
from ingest.schema import Schema, load_schema

log = logging.getLogger(__name__)

RUNS_DIR = "_runs"  # underscore: dataset readers skip it


class ShardSink(Protocol):
    """Where one run's shards go: staged one by one, then published together."""

    def begin(self, *, resume: bool) -> set[str]:
        """Prepare the run; with resume, keep and return the keys of shards already staged."""

    def write_shard(self, shard: Shard) -> None:
        """Stage (or restage) the shard's files; return only once they are durable."""

    def discard_shard(self, shard_key: str) -> None:
        """Remove whatever files a crashed write of this shard left (none is fine)."""

    def commit(self) -> None:
        """Publish the staged shards as the run's outputs (idempotent)."""


@dataclass(frozen=True)
class RunIdentity:
    run_id: str
    run_date: date
    model_version: str


SinkFactory = Callable[[RunIdentity], ShardSink]


class ParquetShardSink:
    """The four Parquet datasets of `export.parquet_sink`, one file per shard and dataset."""

    def __init__(self, root: str | Path, run: RunIdentity, schema: Schema) -> None:
        self.root = Path(root)
        self.schema = schema
        self.run = parquet_sink.RunInfo(run.run_id, run.run_date, run.model_version)

    def begin(self, *, resume: bool) -> set[str]:
        return parquet_sink.begin_run(self.root, self.run, resume=resume)

    def write_shard(self, shard: Shard) -> None:
        tables = parquet_sink.document_tables(shard.documents, shard.outcomes, self.schema,
                                              self.run)
        parquet_sink.write_shard(self.root, self.run, shard.key, tables)

    def discard_shard(self, shard_key: str) -> None:
        # A shard's staged files are `<staging>/<dataset>/part-<key>.parquet` plus its marker;
        # writing the shard again would replace them, but the restarted run may never rebuild
        # this key (the archive changed), and an unmarked file blocks the commit.
        staging = parquet_sink._staging_dir(self.root, self.run)
        (staging / parquet_sink._SHARD_MARKERS / f"{shard_key}.done").unlink(missing_ok=True)
        for dataset in parquet_sink.DATASETS:
            (staging / dataset / f"part-{shard_key}.parquet").unlink(missing_ok=True)

    def commit(self) -> None:
        parquet_sink.commit_run(self.root, self.run)


def parquet_sink_factory(out_dir: str | Path, schema: Schema) -> SinkFactory:
    return lambda run: ParquetShardSink(out_dir, run, schema)


@dataclass(frozen=True)
class ExtractSettings:
    run_id: str | None = None
    batch_size: int = 64
    shard_reports: int = DEFAULT_SHARD_REPORTS
    shard_chars: int = DEFAULT_SHARD_CHARS
    max_report_bytes: int = DEFAULT_MAX_BYTES


def new_run_id(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("run-%Y%m%dT%H%M%SZ")


def prepare_run(manifest: Manifest, sink: ShardSink, record: RunRecord) -> None:
    """Make the manifest agree with what the sink holds for this run before extracting.

    - published before: the run is redone from scratch (its partition will be replaced);
    - interrupted: pending shards are discarded; staged shards are kept and their reports
      skipped; manifest entries of shards no longer staged are dropped so they are redone.
    """
    run_id = record.run_id
    for pending in manifest.pending():
        if pending.run_id != run_id:
            continue  # another run's leftovers are dealt with when that run is restarted
        log.warning("run %s shard %s was interrupted; discarding its partial outputs and "
                    "extracting its reports again", run_id, pending.shard)
        sink.discard_shard(pending.shard)
        manifest.clear_pending(pending)
    if record.committed:
        log.info("run %s was published before; redoing it (its partition is replaced)", run_id)
        sink.begin(resume=False)
        manifest.forget_run(run_id)
        manifest.mark_committed(run_id, False)
        return
    staged = sink.begin(resume=True)
    dropped = manifest.forget_run(run_id, keep_shards=staged)
    if staged or dropped:
        log.info("run %s resumed: %d shards kept; %d reports to redo", run_id, len(staged),
                 dropped)


def run_extraction(archive: str | Path, out_dir: str | Path, extractor: DocumentExtractor,
                   sink_factory: SinkFactory | None = None,
                   settings: ExtractSettings = ExtractSettings(),
                   on_shard: Callable[[Shard], None] | None = None) -> RunSummary:
    """Extract every report of `archive` not yet processed by this model into OUT's datasets.

    Returns the run's summary, also written to `OUT/_runs/<run_id>.json`. `on_shard` is called
    after each shard is staged and recorded (progress reporting, tests).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run_id = settings.run_id or new_run_id()
    model_version = extractor.model_version
    if sink_factory is None:
        sink_factory = parquet_sink_factory(out, getattr(extractor, "schema", None)
                                            or load_schema())
    summary = RunSummary(run_id=run_id, model_version=model_version, archive=str(archive))
    with Manifest.for_output(out) as manifest:
        record = manifest.start_run(run_id, date.today().isoformat(), model_version)
        if record.model_version != model_version:
            raise ValueError(f"run id {run_id!r} was started with model {record.model_version}, "
                             f"not {model_version}; use a new --run-id for a new model")
        sink = sink_factory(RunIdentity(run_id, date.fromisoformat(record.run_date),
                                        model_version))
        prepare_run(manifest, sink, record)

        def already_done(report: ArchiveReport) -> bool:
            return manifest.is_done(report.report_id, report.content_sha256, model_version,
                                    run_id)

        reports = iter_reports(archive, max_bytes=settings.max_report_bytes)
        for shard in extract_shards(reports, extractor, run_id=run_id, skip=already_done,
                                    batch_size=settings.batch_size,
                                    max_reports=settings.shard_reports,
                                    max_chars=settings.shard_chars):
            if shard.outcomes:
                manifest.begin_shard(run_id, shard.key)
                sink.write_shard(shard)
                manifest.commit_shard(run_id, shard.key, shard.entries)
            summary.add(shard)
            log.info("shard %d (%s): %d reports; %d inputs so far", shard.index, shard.key,
                     len(shard.outcomes), summary.inputs)
            if on_shard is not None:
                on_shard(shard)
        sink.commit()
        manifest.mark_committed(run_id)
    write_json_atomic(out / RUNS_DIR / f"{run_id}.json", summary.to_dict())
    return summary
