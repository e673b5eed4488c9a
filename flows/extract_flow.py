"""extract_flow: plan (skip what this model already did) -> shards in parallel -> publish the run.

The same crash-safe steps as `flows.extract_job.run_extraction`, with the shards fanned out
through a task runner: threads on this machine by default, a Dask cluster when a scheduler
address is configured (`ExtractParams.dask_address` or $ANGIOKG_DASK_ADDRESS). Each shard task
stages its Parquet files and records its reports in the manifest in one transaction, so a
shard is the unit a crash or a retry redoes; the run becomes visible to readers only when
`publish_run` renames it into place. Only reports this model version has not processed are
planned, so a night over a growing archive does only the new work.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from extraction.batch import RunSummary, Shard, build_shard, group_shards
from extraction.manifest import Manifest
from extraction.predict import Extractor
from flows import artifacts
from flows.extract_job import (
    RUNS_DIR,
    ParquetShardSink,
    RunIdentity,
    new_run_id,
    prepare_run,
)
from flows.parameters import ExtractParams
from flows.state import RunLayout, read_current_model
from ingest.archive import ArchiveReport, iter_reports
from ingest.atomic import write_json_atomic


@dataclass(frozen=True)
class ShardWork:
    index: int
    reports: tuple[ArchiveReport, ...]
    skipped: tuple[str, ...]


@dataclass(frozen=True)
class RunTarget:
    """What every shard task needs to know about its run (small: it travels with each task)."""

    identity: RunIdentity
    model_dir: Path
    out: Path


@dataclass(frozen=True)
class RunPlan:
    target: RunTarget
    shards: tuple[ShardWork, ...]


@functools.lru_cache(maxsize=2)
def _extractor(model_dir: str) -> Extractor:
    # One model per process (or Dask worker), shared by its shard tasks: loading is the slow part.
    return Extractor.load(model_dir)


def _sink(target: RunTarget) -> ParquetShardSink:
    extractor = _extractor(str(target.model_dir))
    return ParquetShardSink(target.out, target.identity, extractor.schema)


def resolve_model_dir(params: ExtractParams) -> Path:
    if params.model_dir is not None:
        return params.model_dir
    pointer = read_current_model(RunLayout(params.out))
    if pointer is None:
        raise ValueError(
            f"no model_dir given and no current model in {RunLayout(params.out).state}: "
            "run train_flow (or the nightly flow) first, or pass model_dir"
        )
    return Path(pointer.model_dir)


def run_id_for(flow_run_id: str | None, started: datetime | None) -> str:
    """Time-ordered and unique: the flow run's scheduled time plus its id (stable on retry)."""
    suffix = (flow_run_id or os.urandom(4).hex()).replace("-", "")[:8]
    return f"{new_run_id(started)}-{suffix}"


@task(cache_policy=NO_CACHE)
def plan_run(archive: Path, out: Path, model_dir: Path, run_id: str, shard_size: int) -> RunPlan:
    # Absolute: a Dask worker started in another directory must write the same run folder.
    model_dir, out = model_dir.absolute(), out.absolute()
    model_version = _extractor(str(model_dir)).model_version
    with Manifest.for_output(out) as manifest:
        record = manifest.start_run(run_id, date.today().isoformat(), model_version)
        identity = RunIdentity(run_id, date.fromisoformat(record.run_date), model_version)
        target = RunTarget(identity, model_dir, out)
        prepare_run(manifest, _sink(target), record)

        def already_done(report: ArchiveReport) -> bool:
            return manifest.is_done(report.report_id, report.content_sha256, model_version,
                                    run_id)

        groups = group_shards(iter_reports(archive), skip=already_done, max_reports=shard_size)
        shards = tuple(ShardWork(i, tuple(todo), tuple(skipped))
                       for i, (todo, skipped) in enumerate(groups))
    return RunPlan(target, shards)


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def extract_shard(target: RunTarget, work: ShardWork) -> Shard:
    run_id = target.identity.run_id
    shard = build_shard(work.index, list(work.reports), list(work.skipped),
                        _extractor(str(target.model_dir)), run_id=run_id)
    if shard.outcomes:
        with Manifest.for_output(target.out) as manifest:  # one connection per task (thread)
            manifest.begin_shard(run_id, shard.key)
            _sink(target).write_shard(shard)
            manifest.commit_shard(run_id, shard.key, shard.entries)
    return shard


@task(cache_policy=NO_CACHE)
def publish_run(target: RunTarget, shards: list[Shard], archive: Path) -> dict[str, object]:
    run_id = target.identity.run_id
    summary = RunSummary(run_id=run_id, model_version=target.identity.model_version,
                         archive=str(archive))
    for shard in sorted(shards, key=lambda s: s.index):
        summary.add(shard)
    _sink(target).commit()
    with Manifest.for_output(target.out) as manifest:
        manifest.mark_committed(run_id)
    write_json_atomic(target.out / RUNS_DIR / f"{run_id}.json", summary.to_dict())
    artifacts.publish_run_summary(summary.to_dict())
    print(summary.format())
    return summary.to_dict()


@flow(name="angiokg-extract-shards", log_prints=True,
      task_runner=ThreadPoolTaskRunner(max_workers=2))
def extract_shards_flow(params: ExtractParams) -> dict[str, object]:
    """Plan, extract the shards on this flow's task runner, publish; returns the run summary
    (inputs == processed + quarantined + failed)."""
    layout = RunLayout(params.out)
    model_dir = resolve_model_dir(params)
    run_id = run_id_for(flow_run.id, flow_run.scheduled_start_time)
    plan = plan_run(params.archive, layout.extract, model_dir, run_id, params.shard_size)
    futures: list[PrefectFuture[Shard]] = [extract_shard.submit(plan.target, work)
                                           for work in plan.shards]
    return publish_run(plan.target, [f.result() for f in futures], params.archive)


def task_runner_for(dask_address: str | None, workers: int):
    """Dask when a scheduler address is configured, else a thread pool of `workers`."""
    if dask_address:
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=dask_address)
    return ThreadPoolTaskRunner(max_workers=workers)


def torch_threads_per_shard(workers: int, cpus: int | None) -> int:
    """CPU threads each concurrent shard may give torch: the cores shared out, at least one.

    torch's default (every core per call) with several shards at once oversubscribes the
    machine, and small ops then wait on each other many times over.
    """
    return max(1, (cpus or 1) // workers)


def extract_flow_for(params: ExtractParams):
    """The shards flow with the task runner these parameters ask for."""
    return extract_shards_flow.with_options(
        task_runner=task_runner_for(params.resolved_dask_address(), params.workers))


@flow(name="angiokg-extract", log_prints=True)
def extract_flow(params: ExtractParams) -> dict[str, object]:
    """Extraction with the task runner chosen at run time from the parameters (a deployment's
    `dask_address`, else $ANGIOKG_DASK_ADDRESS, else threads), not when the module is imported."""
    if params.resolved_dask_address() is None:
        import torch

        torch.set_num_threads(torch_threads_per_shard(params.workers, os.cpu_count()))
    return extract_flow_for(params)(params)
