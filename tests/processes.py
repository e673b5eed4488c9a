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


# --- killing a run of the protocol at a named moment (in the child itself) -----------------
#
# The publish steps follow each other within milliseconds, too fast to catch from outside, so
# the child kills itself with SIGKILL when it reaches the moment: a real kill, with nothing
# after it run (no finally, no atexit), at a precise place.

PUBLISH_MOMENTS = (
    "summary-written",       # _runs/<id>.json written, commit not started
    "journal-written",       # COMMIT journal written, no dataset renamed
    "rename-2",              # between the per-dataset renames: 1 of 5 in place
    "rename-3",
    "rename-4",
    "renamed-not-listed",    # every partition in place, the run not in _published.json
    "listed-not-current",    # listed, the current view not rewritten
    "current-not-recorded",  # current view rewritten, the manifest not marked
)
MOMENTS = ("shard-staged", "part-temp-written", *PUBLISH_MOMENTS)


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install_kill_at(moment: str) -> None:
    """Make this process SIGKILL itself when the run protocol reaches `moment`."""
    from export import parquet_sink
    from ingest import atomic
    from pipeline import sinks
    from pipeline.manifest import Manifest

    if moment == "shard-staged":  # the first shard's files staged, not recorded
        Manifest.commit_shard = lambda *a, **k: _die()  # type: ignore[method-assign]
    elif moment == "part-temp-written":  # a part file's temporary written, not renamed
        replace = atomic.os.replace

        def dying_replace(src, dst, *args, **kwargs):
            if str(dst).endswith(".parquet") and "_staging" in str(dst):
                _die()
            return replace(src, dst, *args, **kwargs)

        atomic.os.replace = dying_replace  # type: ignore[assignment]
    elif moment == "summary-written":
        parquet_sink.commit_run = lambda *a, **k: _die()  # type: ignore[assignment]
    elif moment == "journal-written" or moment.startswith("rename-"):
        before = 1 if moment == "journal-written" else int(moment.split("-")[1])
        rename, calls = parquet_sink.os.rename, [0]

        def dying_rename(src, dst, *args, **kwargs):
            if "_staging" in str(src):
                calls[0] += 1
                if calls[0] == before:
                    _die()
            return rename(src, dst, *args, **kwargs)

        parquet_sink.os.rename = dying_rename  # type: ignore[assignment]
    elif moment == "renamed-not-listed":
        parquet_sink.record_published = lambda *a, **k: _die()  # type: ignore[assignment]
    elif moment == "listed-not-current":
        refresh, calls = sinks.refresh_current, [0]

        def dying_refresh(*args, **kwargs):
            calls[0] += 1
            if calls[0] == 2:  # the first call is the recovery at the start of the run
                _die()
            return refresh(*args, **kwargs)

        sinks.refresh_current = dying_refresh  # type: ignore[assignment]
    elif moment == "current-not-recorded":
        Manifest.mark_committed = lambda *a, **k: _die()  # type: ignore[method-assign]
    else:
        raise ValueError(f"unknown moment {moment!r}; one of {MOMENTS}")
