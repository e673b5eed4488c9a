"""Shared fixtures.

`prefect_harness`: one temporary Prefect API (SQLite, subprocess server) for the whole session,
started only by tests that ask for it, so tests that do not touch Prefect pay nothing.
"""

from __future__ import annotations

import os

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
