"""Shared fixtures.

`prefect_harness`: one temporary Prefect API (SQLite, subprocess server) for the whole session,
started only by tests that ask for it, so tests that do not touch Prefect pay nothing.
"""

from __future__ import annotations

import os
import uuid

import pytest

# Offline and quiet before prefect is imported anywhere: no telemetry, no update checks.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    # The machine is shared and slow: allow the server a few minutes to start.
    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture
def gpu_deployment(prefect_harness):
    """A work pool of its own and a training deployment in it: `angiokg-train/<name>`."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    pool, name = f"gpu-{uuid.uuid4().hex[:8]}", f"gpu-{uuid.uuid4().hex[:8]}"
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
        flow_id = client.create_flow_from_name("angiokg-train")
        client.create_deployment(flow_id=flow_id, name=name, work_pool_name=pool,
                                 entrypoint="flows/train_flow.py:train_flow")
    return pool, f"angiokg-train/{name}"
