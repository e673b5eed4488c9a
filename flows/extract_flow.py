"""extract_flow: the run protocol of `pipeline.run` as Prefect tasks: plan -> shards -> publish.

The shards fan out through a task runner: threads on this machine by default, a Dask cluster
when a scheduler address is configured (`ExtractParams.dask_address` or $ANGIOKG_DASK_ADDRESS).
Only references cross the task boundary: each shard task reads its own members from the archive
where it runs and returns counts. The flow holds the output folder's lock from plan to publish.
"""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from extraction import allocator
from extraction.predict import Extractor
from flows import artifacts, run_names
from flows.logs import readable_run_logs
from flows.parameters import ExtractParams, documented_by
from flows.state import RunLayout, read_current_model
from pipeline import run as protocol
from pipeline.defaults import DEFAULT_BATCH_SIZE, DEFAULT_MAX_BYTES, DEFAULT_SHARD_REPORTS
from pipeline.lock import output_lock
from pipeline.sinks import ParquetSink
from pipeline.summary import RunSummary, ShardResult


@functools.lru_cache(maxsize=2)
def _extractor(model_dir: str) -> Extractor:
    # One model per process (or Dask worker), shared by its shard tasks: loading is the slow part.
    return Extractor.load(model_dir)


def resolve_model_dir(params: ExtractParams) -> Path:
    if params.model_dir is not None:
        return params.model_dir.absolute()
    pointer = read_current_model(RunLayout(params.out))
    if pointer is None:
        raise ValueError(
            f"no model_dir given and no current model in {RunLayout(params.out).state}: "
            "run train_flow (or the nightly flow) first, or pass model_dir"
        )
    return Path(pointer.model_dir).absolute()


def run_id_for(flow_run_id: str | None, started: datetime | None) -> str:
    """Time-ordered and unique: the flow run's scheduled time plus its id (stable on retry, so
    a retried flow run resumes its own staged shards)."""
    suffix = (flow_run_id or os.urandom(4).hex()).replace("-", "")[:8]
    return f"{(started or datetime.now(UTC)).strftime('run-%Y%m%dT%H%M%SZ')}-{suffix}"


def settings_for(params: ExtractParams) -> protocol.RunSettings:
    return protocol.RunSettings(batch_size=params.batch_size, shard_reports=params.shard_size,
                                max_report_bytes=params.max_report_bytes,
                                wait_for_lock=params.wait_for_lock)


@task(cache_policy=NO_CACHE)
def plan(params: ExtractParams, model_dir: Path, run_id: str) -> protocol.RunPlan:
    sink = ParquetSink(RunLayout(params.out).extract.absolute())
    model_version = _extractor(str(model_dir)).model_version
    # in the flow run's log, where an operator reads the night: which malloc it extracts with
    get_run_logger().info(allocator.heap_in_use())
    return protocol.plan(params.archive, sink, model_version, settings_for(params),
                         run_id=run_id)


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def extract_shard(target: protocol.RunTarget, shard: protocol.ShardRefs, model_dir: Path
                  ) -> ShardResult:
    return protocol.extract_shard(target, shard, _extractor(str(model_dir)))


@task(cache_policy=NO_CACHE)
def publish(planned: protocol.RunPlan, results: list[ShardResult]) -> RunSummary:
    summary = protocol.publish(planned, results)
    artifacts.publish_run_summary(summary)
    print(summary.format())
    return summary


@flow(name="angiokg-extract-shards", flow_run_name=run_names.dated("extract-shards"),
      log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=2))
def extract_shards_flow(params: ExtractParams) -> RunSummary:
    """Plan, extract the shards on this flow's task runner, publish; returns the run summary
    (inputs == processed + quarantined + failed)."""
    model_dir = resolve_model_dir(params)
    run_id = run_id_for(flow_run.id, flow_run.scheduled_start_time)
    with output_lock(RunLayout(params.out).extract, wait=params.wait_for_lock,
                     command=f"extract_flow {run_id}", say=print):
        planned = plan(params, model_dir, run_id)
        with protocol.failing_cleanly(planned.target):
            futures: list[PrefectFuture[ShardResult]] = [
                extract_shard.submit(planned.target, shard, model_dir)
                for shard in planned.shards]
            return publish(planned, [f.result() for f in futures])


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


@flow(name="angiokg-extract", flow_run_name=run_names.dated("extract"), log_prints=True,
      description="Extract the archive's reports the model has not processed into the Parquet "
      "datasets, shard by shard (threads, or a Dask cluster), and publish them as one run.")
@documented_by(ExtractParams)
def extract_flow(archive: Path, out: Path, model_dir: Path | None = None,
                 shard_size: int = DEFAULT_SHARD_REPORTS, batch_size: int = DEFAULT_BATCH_SIZE,
                 max_report_bytes: int = DEFAULT_MAX_BYTES, wait_for_lock: bool = False,
                 workers: int = 2, dask_address: str | None = None) -> RunSummary:
    """Extraction with the task runner chosen at run time from the parameters (a deployment's
    `dask_address`, else $ANGIOKG_DASK_ADDRESS, else threads), not when the module is imported."""
    readable_run_logs()
    params = ExtractParams.from_arguments(locals())
    if params.resolved_dask_address() is None:
        import torch

        torch.set_num_threads(torch_threads_per_shard(params.workers, os.cpu_count()))
    summary = extract_flow_for(params)(params)
    if summary.nothing_new:
        get_run_logger().info("nothing new: the %d report(s) of %s were all done before with "
                              "this model; no run published", summary.inputs, params.archive)
    return summary
