"""The GPU hand-off against a real Prefect API: no worker online means nothing is submitted and
the message says which pool and how to start a worker; a worker that is online but never starts
the run means it is cancelled after the start timeout, so it cannot run later behind the night's
back. (A worker that does train is the end-to-end test's: tests/test_deployment.py.)"""

from __future__ import annotations

import pytest

from flows.gpu_handoff import GpuUnavailable, live_workers, train_on_gpu_pool

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _runs_of(deployment_name: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(deployment_name)
        return client.read_flow_runs(deployment_filter=DeploymentFilter(
            id=DeploymentFilterId(any_=[deployment.id])))


def test_no_worker_online_submits_nothing_and_says_how_to_start_one(gpu_deployment):
    pool, deployment = gpu_deployment
    notes: list[str] = []
    with pytest.raises(GpuUnavailable) as unavailable:
        train_on_gpu_pool(deployment, {}, start_timeout_s=60, finish_timeout_s=60,
                          note=notes.append)
    message = str(unavailable.value)
    assert f"no worker is online in work pool {pool}" in message
    assert "infra/scripts/start-gpu-worker.sh" in message and "--profile gpu" in message
    assert unavailable.value.pool == pool
    assert _runs_of(deployment) == [] and notes == []


def test_a_run_no_worker_starts_is_cancelled_after_the_start_timeout(gpu_deployment):
    from prefect.client.orchestration import get_client

    pool, deployment = gpu_deployment
    with get_client(sync_client=True) as client:  # online, as a worker busy elsewhere would be
        client.send_worker_heartbeat(pool, "gpu-busy", heartbeat_interval_seconds=30)
        assert live_workers(client, pool) == ["gpu-busy"]
    notes: list[str] = []
    with pytest.raises(GpuUnavailable) as unavailable:
        train_on_gpu_pool(deployment, {}, start_timeout_s=2, finish_timeout_s=60,
                          note=notes.append)
    (run,) = _runs_of(deployment)
    assert run.state.is_cancelled() and "within 2 s" in run.state.message
    message = str(unavailable.value)
    assert f"training run {run.name} ({run.id}) in work pool {pool} was cancelled" in message
    assert "start-gpu-worker.sh" in message
    assert notes and f"submitted training run {run.name}" in notes[0]


def test_a_paused_pool_counts_as_no_worker(gpu_deployment):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolUpdate

    pool, deployment = gpu_deployment
    with get_client(sync_client=True) as client:
        client.send_worker_heartbeat(pool, "gpu-1", heartbeat_interval_seconds=30)
        client.update_work_pool(pool, WorkPoolUpdate(is_paused=True))
        assert live_workers(client, pool) == []


def test_a_missing_training_deployment_says_to_run_the_deploy_script():
    with pytest.raises(GpuUnavailable, match="no deployment angiokg-train/nowhere.*deploy.sh"):
        train_on_gpu_pool("angiokg-train/nowhere", {}, start_timeout_s=1, finish_timeout_s=1,
                          note=lambda _: None)
