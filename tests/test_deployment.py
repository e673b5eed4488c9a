"""The deployment path end to end, as an operator runs it: a real `prefect server start` on
loopback, infra/scripts/deploy.sh from this checkout, process workers started by the infra
scripts, and the nightly deployment on a tiny corpus with the `tiny` profile; once with a GPU-pool
worker (training goes there), then without one (the night ends the way `on_no_gpu` says, and
does not hang). Run states, run names and the night's artifacts are read back from the API.

A few minutes on a loaded 2-core machine: the workers poll every second, the GPU worker's
heartbeat is short so that its absence shows within seconds, and the server runs no scheduler.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from prefect_server import (
    BIN,
    ROOT,
    PrefectServer,
    WebhookInbox,
    free_port,
    start_prefect_server,
    wait_for,
    worker_health_ok,
)

from extraction import jemalloc
from flows.run_names import night_of
from ingest.generator import generate_corpus

pytestmark = pytest.mark.slow

TIMEZONE = "Europe/Berlin"  # not the default, to see deploy.sh and the run names follow it
NIGHT_TIMEOUT_S = 420
WORKER_ENV = {"PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_HEARTBEAT_SECONDS": "2",
              "ANGIOKG_TIMEZONE": TIMEZONE}


@dataclass
class Stack:
    server: PrefectServer
    annotated: Path
    archive: Path
    out: Path
    inbox: WebhookInbox
    health_port: int


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    root = tmp_path_factory.mktemp("deployment")
    data = root / "data"
    generate_corpus(12, seed=11, out_dir=data / "annotated")
    generate_corpus(7, seed=12, out_dir=data / "archive", annotated=False, prefix="new")
    server = start_prefect_server(root / "prefect")
    inbox = WebhookInbox()
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            block = inbox.save_block("angiokg-e2e-alerts")
            deployed = server.run(["sh", "infra/scripts/deploy.sh"],
                                  {"ANGIOKG_ALERT_BLOCK": block, "ANGIOKG_TIMEZONE": TIMEZONE})
            assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
            health = free_port()
            cpu = server.spawn("cpu-worker", ["sh", "infra/scripts/start-cpu-worker.sh"],
                               {**WORKER_ENV, "ANGIOKG_WORKER_HEALTH_PORT": str(health)})
            wait_for(lambda: worker_health_ok(health), timeout_s=120,
                     what="the CPU worker's /health", explain=cpu.tail)
            yield Stack(server, data / "annotated", data / "archive", root / "run", inbox,
                        health)
    finally:
        inbox.close()
        server.stop()


def _client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def _deployment_runs(name: str) -> list:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    with _client() as client:
        deployment = client.read_deployment_by_name(name)
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC)


def _finished(stack: Stack, run_id) -> object:
    def final():
        with _client() as client:
            run = client.read_flow_run(run_id)
        return run if run.state and run.state.is_final() else None

    return wait_for(final, timeout_s=NIGHT_TIMEOUT_S, every_s=2, what=f"flow run {run_id} ends",
                    explain=stack.server.logs)


def _run_nightly(stack: Stack, **overrides) -> object:
    """`prefect deployment run` with the paths, the profile and `overrides` set one by one;
    every other parameter is the deployment's."""
    args = {"annotated": stack.annotated, "archive": stack.archive, "out": stack.out,
            "profile": "tiny", **overrides}
    before = {r.id for r in _deployment_runs("angiokg-nightly/nightly")}
    started = stack.server.run([str(BIN / "prefect"), "deployment", "run",
                                "angiokg-nightly/nightly",
                                *[f"-p{k}={v}" for k, v in args.items()]])
    assert started.returncode == 0, started.stdout + started.stderr
    (new,) = [r for r in _deployment_runs("angiokg-nightly/nightly") if r.id not in before]
    return _finished(stack, new.id)


def _artifacts(run_id) -> dict[str, str]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with _client() as client:
        stored = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    return {a.key: a.data for a in stored}


def _gpu_workers_online() -> list[str]:
    from flows.gpu_handoff import live_workers

    with _client() as client:
        return live_workers(client, "angiokg-gpu")


def test_deploy_sh_registers_the_deployments_queue_and_alerts_from_this_checkout(stack):
    with _client() as client:
        deployments = {d.name: d for d in client.read_deployments()}
        queue = client.read_work_queue_by_name("run-folder", work_pool_name="angiokg-cpu")
        automations = {a.name: a for a in client.read_automations()}
    assert set(deployments) == {"nightly", "gpu", "ingest", "extract", "export"}
    for name, d in deployments.items():
        assert len(d.description or "") > 40, name
        (step,) = d.pull_steps  # the checkout deploy.sh ran from, not the images' /app
        assert step["prefect.deployments.steps.set_working_directory"]["directory"] == str(ROOT)
    nightly = deployments["nightly"]
    (schedule,) = nightly.schedules
    assert schedule.schedule.timezone == TIMEZONE and f"02:00 ({TIMEZONE})" in nightly.description
    assert nightly.parameters["train_deployment"] == "angiokg-train/gpu"
    assert queue.concurrency_limit == 1
    assert {d.work_queue_name for n, d in deployments.items() if n != "gpu"} == {"run-folder"}
    assert {"angiokg-nightly-failed", "angiokg-nightly-not-done"} <= set(automations)
    assert all(a.actions[0].type == "send-notification" for a in automations.values())
    assert worker_health_ok(stack.health_port)


@pytest.fixture(scope="module")
def night_on_gpu(stack):
    """The first night, with a GPU-pool worker (training on the CPU it runs on, as
    ANGIOKG_ALLOW_CPU_TRAINING allows); the worker is stopped afterwards."""
    gpu = stack.server.spawn("gpu-worker", ["sh", "infra/scripts/start-gpu-worker.sh"],
                             {**WORKER_ENV, "ANGIOKG_ALLOW_CPU_TRAINING": "1"})
    wait_for(_gpu_workers_online, timeout_s=120, what="the GPU worker online", explain=gpu.tail)
    began = time.monotonic()
    night = _run_nightly(stack)
    seconds = time.monotonic() - began
    gpu.stop()
    return night, seconds


def test_with_a_gpu_worker_training_runs_on_the_gpu_pool_and_the_night_reports_it(
        stack, night_on_gpu):
    night, _ = night_on_gpu
    assert night.state.is_completed(), (night.state.message, stack.server.logs())
    today = night_of(datetime.now(UTC), ZoneInfo(TIMEZONE))
    assert night.name == f"nightly-{today}"
    # One override at a time kept the deployment's other parameters.
    assert night.parameters["train_deployment"] == "angiokg-train/gpu"
    assert night.parameters["retrain"] == "on-change" and night.parameters["profile"] == "tiny"
    (train,) = _deployment_runs("angiokg-train/gpu")
    assert train.state.is_completed() and re.fullmatch(r"train-[0-9a-f]{12}", train.name)
    assert train.work_pool_name == "angiokg-gpu"
    assert train.parent_task_run_id is not None  # shown inside the night's run graph

    summary = _artifacts(night.id)["angiokg-night"]
    assert summary.startswith(f"# nightly-{today}: completed")
    assert "retrain: **yes**, no current model yet" in summary
    assert f"on the GPU pool: training run {train.name} ({train.id}) in work pool " \
           "angiokg-gpu" in summary, summary
    assert "| 7 | 7 | 7 | 0 | 0 | 0 |" in summary  # reports in, processed, extracted now, ...
    assert "loaded 1 new run(s)" in summary
    assert "- queued: 7 of tonight's 7 new reports" in summary and "open in brat" in summary
    assert f"/runs/flow-run/{train.id}" in summary  # a link to the evaluation and curve
    train_artifacts = _artifacts(train.id)
    assert {"angiokg-evaluation", "angiokg-training-curve"} <= set(train_artifacts)


def test_without_a_gpu_worker_the_night_fails_as_told_after_extracting_and_alerts(
        stack, night_on_gpu):
    wait_for(lambda: not _gpu_workers_online(), timeout_s=60, what="the GPU worker offline")
    generate_corpus(2, seed=13, out_dir=stack.archive, annotated=False, prefix="later")
    began = time.monotonic()
    night = _run_nightly(stack, retrain="always", on_no_gpu="fail")
    seconds = time.monotonic() - began

    assert night.state.is_failed(), night.state
    message = night.state.message
    assert "no worker is online in work pool angiokg-gpu" in message
    assert "infra/scripts/start-gpu-worker.sh" in message and "on_no_gpu=cpu" in message
    # No hang: it checked for a worker instead of waiting on a run nobody will start, so it
    # took no longer than the night that trained.
    assert seconds < night_on_gpu[1] + 60, (seconds, night_on_gpu[1])
    assert len(_deployment_runs("angiokg-train/gpu")) == 1  # nothing submitted tonight
    summary = _artifacts(night.id)["angiokg-night"]
    assert "**Failed**" in summary and "| 9 | 9 | 2 | 7 | 0 | 0 |" in summary
    with _client() as client:
        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[night.id])))
    assert not [log.message for log in logs if "Traceback" in log.message]
    (alert,) = wait_for(lambda: stack.inbox.about(night.name), timeout_s=60,
                        what="the failure alert", explain=lambda: str(stack.inbox.messages))
    assert alert["subject"].endswith("ended Failed")
    assert "no worker is online in work pool angiokg-gpu" in alert["body"]


def test_without_a_gpu_worker_the_night_trains_on_the_cpu_worker_when_told(stack, night_on_gpu):
    wait_for(lambda: not _gpu_workers_online(), timeout_s=60, what="the GPU worker offline")
    night = _run_nightly(stack, retrain="always", on_no_gpu="cpu")

    assert night.state.is_completed(), (night.state.message, stack.server.logs())
    summary = _artifacts(night.id)["angiokg-night"]
    assert "trained: in this run on the CPU worker: no worker is online in work pool " \
           "angiokg-gpu" in summary
    assert "**Nothing new**" in summary
    with _client() as client:
        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[night.id])))
    warnings = [log.message for log in logs if log.level == 30]
    assert any("Training here, on the CPU worker, instead (on_no_gpu='cpu')" in w
               for w in warnings), warnings
    assert not [log for log in logs if "HTTP Request:" in log.message]
    for worker in ("cpu-worker", "gpu-worker"):  # what `docker compose logs` would show
        output = (stack.server.home / f"{worker}.log").read_text(encoding="utf-8")
        assert "it/s]" not in output and "HTTP Request:" not in output, worker
    # the worker's flow runs extract under jemalloc where it is installed (worker-env.sh)
    malloc = "jemalloc's malloc" if jemalloc.library() is not None else "glibc's malloc"
    cpu_output = (stack.server.home / "cpu-worker.log").read_text(encoding="utf-8")
    assert f"extraction memory: {malloc}" in cpu_output
