"""Training on the GPU pool without ever waiting silently.

Before submitting, the work pool of the training deployment must have a worker online (a
heartbeat within Prefect's window; not paused). Then the training run must be started by one
within `start_timeout_s` and finish within `finish_timeout_s`. Each wait says what it waits for
every `NOTE_EVERY_S`; a run that times out is cancelled, so it cannot start later behind the
night's back. What goes wrong is an exception whose message names the pool, the run and what to
do; the nightly flow decides what happens next (fail, or train on the CPU worker).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

START_WORKER = ("start one on the GPU machine: PREFECT_API_URL={api} sh "
                "infra/scripts/start-gpu-worker.sh (or, with compose, `docker compose -f "
                "infra/docker-compose.yml --env-file infra/.env --profile gpu up -d gpu-worker`)")
POLL_S = 2.0
NOTE_EVERY_S = 60.0


class GpuUnavailable(RuntimeError):
    """No GPU worker took the training: none online, or none started it in time."""

    def __init__(self, reason: str, pool: str | None) -> None:
        super().__init__(reason)
        self.reason, self.pool = reason, pool


class GpuTrainingFailed(RuntimeError):
    """The training run started on the GPU pool but did not complete (in time)."""


@dataclass(frozen=True)
class TrainingRun:
    """The training flow run on the GPU pool, for links and messages."""

    id: str
    name: str
    pool: str

    def label(self) -> str:
        return f"training run {self.name} ({self.id}) in work pool {self.pool}"


def how_to_start_a_worker(api_url: str | None) -> str:
    return START_WORKER.format(api=api_url or "http://<prefect server>:4200/api")


def live_workers(client: Any, pool_name: str) -> list[str]:
    """Names of the pool's workers Prefect sees online (none when the pool is paused)."""
    from prefect.client.schemas.objects import WorkerStatus, WorkPoolStatus

    pool = client.read_work_pool(pool_name)
    if pool.status == WorkPoolStatus.PAUSED or pool.is_paused:
        return []
    return [w.name for w in client.read_workers_for_work_pool(pool_name)
            if w.status == WorkerStatus.ONLINE]


def deployment_pool(client: Any, deployment_name: str) -> str:
    from prefect.exceptions import ObjectNotFound

    try:
        deployment = client.read_deployment_by_name(deployment_name)
    except ObjectNotFound:
        raise GpuUnavailable(
            f"there is no deployment {deployment_name} on this Prefect server; register the "
            "deployments with infra/scripts/deploy.sh", None) from None
    if not deployment.work_pool_name:
        raise GpuUnavailable(f"deployment {deployment_name} has no work pool", None)
    return deployment.work_pool_name


def _wait(client: Any, run: TrainingRun, done: Callable[[Any], bool], timeout_s: float,
          waiting_for: str, note: Callable[[str], None]) -> Any | None:
    """Poll the run until `done(state)`; its flow run, or None when `timeout_s` passed."""
    began = time.monotonic()
    noted = began
    while True:
        flow_run = client.read_flow_run(run.id)
        if flow_run.state is not None and done(flow_run.state):
            return flow_run
        now = time.monotonic()
        if now - began > timeout_s:
            return None
        if now - noted >= NOTE_EVERY_S:
            note(f"waiting for {waiting_for}: {run.label()} is "
                 f"{flow_run.state.name if flow_run.state else 'unknown'} "
                 f"({now - began:.0f} of {timeout_s:.0f} s)")
            noted = now
        time.sleep(POLL_S)


def _cancel(client: Any, run: TrainingRun, why: str) -> None:
    from prefect.states import Cancelled

    client.set_flow_run_state(run.id, Cancelled(message=why), force=True)


def train_on_gpu_pool(deployment_name: str, parameters: dict[str, Any], *,
                      start_timeout_s: float, finish_timeout_s: float,
                      note: Callable[[str], None], run_name: str | None = None) -> TrainingRun:
    """Submit the training deployment and wait for it to complete; the run, or GpuUnavailable
    (nothing trained; the run, if one was submitted, is cancelled) or GpuTrainingFailed."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()
    with get_client(sync_client=True) as client:
        pool = deployment_pool(client, deployment_name)
        if not live_workers(client, pool):
            raise GpuUnavailable(
                f"no worker is online in work pool {pool}, so the training was not submitted; "
                f"{how_to_start_a_worker(api)}", pool)
        submitted = run_deployment(deployment_name, parameters=parameters, timeout=0,
                                   as_subflow=True, flow_run_name=run_name)
        run = TrainingRun(str(submitted.id), submitted.name, pool)
        note(f"submitted {run.label()}; waiting up to {start_timeout_s:.0f} s for a worker to "
             "start it")
        started = _wait(client, run, lambda s: not s.is_scheduled(), start_timeout_s,
                        f"a worker of pool {pool} to start it", note)
        if started is None:
            why = (f"no worker of pool {pool} started it within {start_timeout_s:.0f} s "
                   "(gpu_start_timeout_s)")
            _cancel(client, run, why)
            raise GpuUnavailable(
                f"{run.label()} was cancelled: {why}; is the GPU worker running, or busy? "
                f"{how_to_start_a_worker(api)}", pool)
        finished = _wait(client, run, lambda s: s.is_final(), finish_timeout_s,
                         "training to finish", note)
        if finished is None:
            why = f"it did not finish within {finish_timeout_s:.0f} s (gpu_train_timeout_s)"
            _cancel(client, run, why)
            raise GpuTrainingFailed(f"{run.label()} was cancelled: {why}; see its logs")
        if not finished.state.is_completed():
            message = f": {finished.state.message}" if finished.state.message else ""
            raise GpuTrainingFailed(f"{run.label()} ended {finished.state.name}{message}; "
                                    "see its logs in the Prefect UI")
    return TrainingRun(run.id, finished.name, pool)  # the name the flow gave itself
