"""What a run does, step by step: archive -> plan -> extract each shard -> publish.

This is the one implementation of a run. `angiokg extract` (`run`, below) loops over it in one
process; the Prefect flow (`flows.extract_flow`) calls the same three functions as tasks, the
shards on threads or Dask workers; `angiokg preannotate` (`pipeline.preannotate`) runs it into a
`BratSink`. A new command that runs the model over an archive (e.g. `select`) does the same:
give `run(archive, sink, extractor, settings)` a `Sink` (`pipeline.sinks`), or call `plan`,
`extract_shard` and `publish` yourself to fan the shards out.

1. **lock** (`run`, or the flow): one writer per output folder (`pipeline.lock`): a second run
   is refused, or waits with `wait_for_lock`. The lock comes before the model: commands give
   `run` a loader, called once the lock is held, so a refused run loads nothing and a waiting
   one holds no model in memory.
2. **plan**: the sink recovers what a killed run left (a publish cut short is finished, other
   killed runs' staging removed) and starts the run: a new id, unique under concurrency, or a
   given one to resume (its staged shards are kept); a run id started with another model is
   refused. The archive is streamed once; a report whose current extraction is this text by
   this model is skipped; the rest are grouped into shards (a report count and a character
   budget). A shard is **references** (archive members or table rows, with each text's hash),
   never texts: a plan over any archive is small and crosses task boundaries cheaply. A tar.gz,
   a CSV or a Parquet file of huge row groups has no (cheap) random access, so their new
   reports are spooled (`pipeline.spool`).
3. **extract_shard** (any thread or worker): read the shard's members from the archive (a
   member changed since the plan is refused, not mixed in), run the model (a report it fails
   on fails alone), and have the sink write the shard and record its reports, durably, as one
   unit (`pipeline.manifest` is the write-ahead log). Returns counts only.
4. **publish**: the run's summary; the sink makes the run visible whole (Parquet: journaled
   renames, then the published list, the current view and the manifest). A run that found
   nothing new publishes nothing.

A process killed at any moment leaves a state the next start recovers: the same run id resumes
from its staged shards, a plain rerun (a new id) extracts what was lost; every report's output
ends up present once (docs/faults.md, "Crashes and restarts").

Durability (a power cut, not a kill: a killed process loses nothing the kernel already has) is
paid for only where losing a write could lose or duplicate a report, each wait ~1-5 ms here:
- a shard: its five files' data fsync'd together, then their folders together
  (`ingest.atomic.atomic_group`); its marker and its manifest commit wait for nothing. A
  staged shard counts on resume only with both its marker and its entries, so a power cut
  that loses either only means the shard is extracted again (its files are replaced);
- publish: the manifest's log fsync'd (every shard's entries on disk) before the journal that
  makes the run visible, the journal, the five partitions' renames (synced together), the
  published list and the current view; the manifest's final mark waits for nothing (the next
  start re-marks a listed run). Why each is enough: `pipeline.manifest`, "Durability".
Measured (strace -f -c -e trace=fsync,fdatasync, a one-shard run of 150 reports into a new
folder): 57 syncs, one after another, before; 33 in 21 waits now.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from export.published import RunInfo, check_name
from extraction.shard import DocumentExtractor, extract_reports
from ingest.archive import ArchiveReport, ReportRef, iter_reports, random_access, read_reports
from pipeline.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_BYTES,
    DEFAULT_SHARD_CHARS,
    DEFAULT_SHARD_REPORTS,
)
from pipeline.lock import OutputLocked, output_lock
from pipeline.sinks import Sink, StagedShard
from pipeline.spool import spool_shard
from pipeline.summary import RunSummary, ShardResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSettings:
    """The one set of defaults of a run, whoever starts it."""

    run_id: str | None = None  # None: a new, unique id; given: resume or redo that run
    batch_size: int = DEFAULT_BATCH_SIZE  # sentences per model batch
    shard_reports: int = DEFAULT_SHARD_REPORTS
    shard_chars: int = DEFAULT_SHARD_CHARS
    max_report_bytes: int = DEFAULT_MAX_BYTES
    wait_for_lock: bool = False


@dataclass(frozen=True)
class RunTarget:
    """What every shard task needs to know about its run (small: it travels with each task)."""

    run: RunInfo
    archive: Path
    sink: Sink
    settings: RunSettings


@dataclass(frozen=True)
class ShardRefs:
    """One shard to extract: where to read it (the archive, or its spool file) and what."""

    index: int
    key: str
    source: Path
    refs: tuple[ReportRef, ...]


@dataclass(frozen=True)
class RunPlan:
    target: RunTarget
    shards: tuple[ShardRefs, ...]
    skipped: tuple[str, ...]  # ids already done: counted, not extracted
    resumed_shards: int = 0  # staged by an earlier attempt of this run
    # Done before and still unreadable (a FIFO, an empty or UTF-16 file, ...): not extracted
    # again, but counted as quarantined, with their reasons, not as done.
    quarantined_before: tuple[str, ...] = ()

    @property
    def nothing_new(self) -> bool:
        return not self.shards and not self.resumed_shards


class RunFailed(RuntimeError):
    """A run stopped on an error: the message names the file and the cause, and says that the
    previous outputs are intact and nothing of this run was left staged."""


def new_run_id(now: datetime | None = None) -> str:
    """Time-ordered and unique: two runs started in the same second get different ids."""
    return f"{(now or datetime.now(UTC)).strftime('run-%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def shard_key(model_version: str, refs: Iterable[ReportRef]) -> str:
    """Derived from the shard's contents: a restarted run rebuilds the same shard under the
    same key."""
    digest = hashlib.sha256(model_version.encode("utf-8"))
    for ref in refs:
        digest.update(f"\n{ref.report_id}\t{ref.sha256}".encode())
    return digest.hexdigest()[:20]


def plan(archive: str | Path, sink: Sink, model_version: str,
         settings: RunSettings = RunSettings(), *, run_id: str | None = None) -> RunPlan:
    """Start the run and divide the archive's new reports into shards of references.

    `run_id` (else `settings.run_id`, else a new one) names the run; a given id may resume.
    Raises `ArchiveError` for an archive that cannot be opened at all, `RunFailed` when
    reading it breaks midway (the run is then abandoned, as `failing_cleanly` says).
    """
    # Absolute: a Dask worker started in another directory must read and write the same files.
    source = Path(archive).absolute()
    in_place = random_access(source)
    given = run_id or settings.run_id
    if given is not None:
        check_name("run_id", given)  # before the manifest records it
    began = sink.begin(given or new_run_id(), model_version, fresh=given is None)
    run = began.run
    with failing_cleanly(RunTarget(run, source, sink, settings)):
        return _plan_shards(source, in_place, sink, run, model_version, settings,
                            began.resumed_shards)


def _plan_shards(source: Path, in_place: bool, sink: Sink, run: RunInfo, model_version: str,
                 settings: RunSettings, resumed_shards: int) -> RunPlan:
    shards: list[ShardRefs] = []
    skipped: list[str] = []
    quarantined_before: list[str] = []
    refs: list[ReportRef] = []
    texts: list[ArchiveReport] = []  # only when spooling: one shard's worth
    chars = 0

    def close_shard() -> None:
        key = shard_key(model_version, refs)
        if in_place:
            shards.append(ShardRefs(len(shards), key, source, tuple(refs)))
        else:
            spool, spooled = spool_shard(sink.scratch(run), key, texts)
            shards.append(ShardRefs(len(shards), key, spool, spooled))

    reports = iter_reports(source, max_bytes=settings.max_report_bytes,
                           skip_folder=sink.skip_folder(source))
    with sink.already_done(run) as done:
        for report in reports:
            if done(report):
                if report.ref.problem is None:
                    skipped.append(report.report_id)
                else:
                    quarantined_before.append(f"quarantined: {report.ref.problem} (as before)")
                continue
            ref = report.ref
            refs.append(ref)
            if not in_place:
                texts.append(report)
            chars += ref.chars
            if len(refs) >= settings.shard_reports or chars >= settings.shard_chars:
                close_shard()
                refs, texts, chars = [], [], 0
        if refs:
            close_shard()
    target = RunTarget(run, source, sink, settings)
    log.info("run %s: %d shards to extract, %d reports already done", run.run_id, len(shards),
             len(skipped))
    return RunPlan(target, tuple(shards), tuple(skipped), resumed_shards,
                   tuple(quarantined_before))


def extract_shard(target: RunTarget, shard: ShardRefs, extractor: DocumentExtractor
                  ) -> ShardResult:
    """Read the shard's members, extract them, and have the sink write the shard durably."""
    reports = read_reports(shard.source, shard.refs,
                           max_bytes=target.settings.max_report_bytes)
    extracted = extract_reports(reports, extractor, batch_size=target.settings.batch_size)
    target.sink.write_shard(target.run, StagedShard(shard.key, tuple(reports), extracted),
                            extractor.schema)
    result = ShardResult.of(shard.index, shard.key, extracted)
    log.info("shard %d (%s): %d reports", shard.index, shard.key, result.reports)
    return result


def publish(plan: RunPlan, results: Sequence[ShardResult]) -> RunSummary:
    """The run's summary; its outputs made visible whole (none when nothing was new)."""
    target = plan.target
    summary = RunSummary.of(run_id=target.run.run_id,
                            model_version=target.run.model_version or "",
                            archive=str(target.archive),
                            run_date=target.run.run_date.isoformat(),
                            skipped=len(plan.skipped), results=results,
                            published=not plan.nothing_new,
                            quarantined_before=plan.quarantined_before)
    if summary.published:
        target.sink.publish(target.run, summary)
    else:
        target.sink.abandon(target.run)
        log.info("run %s: nothing new; no run published", target.run.run_id)
    return summary


@contextlib.contextmanager
def failing_cleanly(target: RunTarget) -> Iterator[None]:
    """On an error (a full disk, a read-only folder, an archive that breaks midway) leave the
    output folder as the run found it: the run is abandoned (its staging removed, its manifest
    entries dropped) and `RunFailed` says why, naming the file. An interruption (Ctrl-C, a
    kill) is not an error: the staging stays, for the same run id to resume."""
    try:
        yield
    except (RunFailed, OutputLocked):
        raise
    except Exception as exc:
        run_id = target.run.run_id
        if target.sink.publishing(target.run):
            # The publish journal is written: the run's outputs are complete and the next
            # start finishes publishing them; removing them would lose the run.
            raise RunFailed(f"run {run_id} failed while being published: {exc}; its outputs "
                            "are complete and the next run finishes publishing them") from exc
        try:
            target.sink.abandon(target.run)
            cleaned = "nothing of it is left staged"
        except Exception as cleanup:  # noqa: BLE001 - the first error is the one to report
            cleaned = (f"its staging could not be removed ({cleanup}); the next run removes "
                       "it")
        raise RunFailed(f"run {run_id} failed: {exc} -- nothing of it was published: the "
                        f"previous outputs in {target.sink.out} are intact and {cleaned}"
                        ) from exc


ExtractorLoader = Callable[[], DocumentExtractor]


def loaded(extractor: DocumentExtractor | ExtractorLoader) -> DocumentExtractor:
    """The model itself, or what its loader returns (a loader has no `extract`)."""
    return extractor if hasattr(extractor, "extract") else extractor()


def run(archive: str | Path, sink: Sink, extractor: DocumentExtractor | ExtractorLoader,
        settings: RunSettings = RunSettings(),
        on_shard: Callable[[ShardResult], None] | None = None) -> RunSummary:
    """The whole run in this process, holding the output folder's lock. `extractor`: the
    model, or a function that loads it once the lock is held (what the commands pass)."""
    with output_lock(sink.out, wait=settings.wait_for_lock):
        return run_locked(archive, sink, loaded(extractor), settings, on_shard)


def run_locked(archive: str | Path, sink: Sink, extractor: DocumentExtractor,
               settings: RunSettings = RunSettings(),
               on_shard: Callable[[ShardResult], None] | None = None) -> RunSummary:
    """The whole run in this process; the caller holds `sink.out`'s lock (`run` takes it;
    `angiokg select` holds it from before the model is loaded until its queue is written)."""
    planned = plan(archive, sink, extractor.model_version, settings)
    with failing_cleanly(planned.target):
        results = []
        for shard in planned.shards:
            results.append(extract_shard(planned.target, shard, extractor))
            if on_shard is not None:
                on_shard(results[-1])
        return publish(planned, results)
