"""Killing a subprocess at a chosen moment, for the crash tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable


def sigkill_when(proc: subprocess.Popen, reached: Callable[[], bool], *, timeout_s: float,
                 what: str) -> None:
    """SIGKILL `proc` as soon as `reached()` holds; fail the test if it ends or times out first.

    `what` names the moment waited for, so a failure says which one never came.
    """
    try:
        deadline = time.monotonic() + timeout_s
        while not reached():
            if proc.poll() is not None:
                tail = proc.stderr.read().decode(errors="replace")[-3000:] if proc.stderr else ""
                raise AssertionError(f"the process ended before {what}: {tail}")
            assert time.monotonic() < deadline, f"{what} did not happen in {timeout_s:.0f} s"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
