"""One writer per output folder: an exclusive lock that a second run waits on or is refused by.

`extract`, `nightly`, `preannotate` (and `select`) hold `OUT/_angiokg.lock` for as long as they
write OUT. The lock is `flock(2)` on that file: the kernel drops it when the holder exits, killed
or not, so a crash never leaves a stale lock to clean up by hand. The file says who holds it
(pid, host, command, since when) for the message a second run prints. It is the one file of the
project not written by `ingest.atomic`: a lock must stay the same file, not be replaced.

flock is honoured between processes on one machine and on local filesystems; on NFS it depends
on the server (Linux NFSv4 maps it to byte-range locks). Dask workers never take it: the run
that plans and publishes holds it while its workers write shards.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

LOCK_FILE = "_angiokg.lock"
log = logging.getLogger(__name__)


class OutputLocked(RuntimeError):
    """Another run holds the output folder; the message names it and what to do."""


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode("utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another angiokg run"
    return (f"{info.get('command', 'angiokg')} (pid {info.get('pid')} on {info.get('host')}, "
            f"since {info.get('since')})")


def _claim(fd: int, command: str) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
            "since": datetime.now(UTC).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(info).encode("utf-8"))


def _refusal(out: Path, holder: str) -> OutputLocked:
    return OutputLocked(
        f"{out}: {holder} is writing this output folder; wait for it to finish, or pass --wait "
        "to start as soon as it has (one writer per folder keeps runs from duplicating or "
        "losing reports)")


def refuse_if_held(folder: str | Path) -> None:
    """Raise `OutputLocked` (naming the holder) if a run holds `folder`'s lock now; creates
    nothing. For a command that must start something slow before it can take the lock itself
    (the nightly starts Prefect, and its flow takes the lock): it refuses at once instead. Not
    a lock: the flow's own `output_lock` still decides a race."""
    out = Path(folder)
    try:
        fd = os.open(out / LOCK_FILE, os.O_RDWR)
    except OSError:
        return  # no lock file (or none this user may lock): the command's own lock decides
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _refusal(out, _holder(fd)) from None
    finally:
        os.close(fd)  # releases the probe's lock, if it got one


@contextlib.contextmanager
def output_lock(folder: str | Path, *, wait: bool, command: str | None = None,
                say: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Hold `folder`'s lock for the block. Held by someone else: with `wait`, say so once and
    wait for it; without, raise `OutputLocked` naming the holder."""
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputLocked(f"{out}: cannot create the output folder ({exc.strerror or exc}); "
                           "give a folder you may write to") from exc
    path = out / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise OutputLocked(f"{path}: cannot open the output folder's lock ({exc.strerror or exc});"
                           " is the folder writable?") from exc
    command = command or " ".join(["angiokg", *sys.argv[1:3]])
    held = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if not wait:
                raise _refusal(out, holder) from None
            message = f"{out}: {holder} is writing this output folder; waiting for it to finish"
            (say or log.warning)(message)
            began = time.monotonic()
            fcntl.flock(fd, fcntl.LOCK_EX)
            log.info("%s: lock acquired after %.0f s", out, time.monotonic() - began)
        held = True
        _claim(fd, command)
        yield path
    finally:
        if held:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor releases the flock
