"""jemalloc under the processes that extract: flat memory over a long archive at glibc's speed.

glibc's heap spreads over a long extraction however its knobs are set (`allocator.py`): with the
4 MiB mmap threshold and a trim after each window the live data stays level, but the buffers of
each window land over a heap that grows about 70 MiB per 1,000 reports, and the small threshold
that stops it costs a fifth of the speed. jemalloc serves each size class from slabs of its own
and reuses them, so neither happens. `bench/bench_memory.py --mallocs jemalloc glibc`
(2026-12-02, session 7's machine, `angiokg extract`, `default` model, the two taking turns;
jemalloc on its own timers, as then): 1,000 -> 10,000 reports 711 -> 752 MiB (1.06x) at 74.0
reports/s under jemalloc, 738 -> 914 (1.24x) at 65.8 on glibc's tuned heap (docs/benchmarks.md,
"Memory as the archive grows").

jemalloc must be in the process before anything allocates, so it comes in through the dynamic
loader (`LD_PRELOAD`), not an import: `angiokg` restarts itself once with it preloaded
(`flows.cli.entry`), and the workers' start scripts preload it for the flow runs they start
(`infra/scripts/worker-env.sh`, which prints `python -m extraction.jemalloc`'s answer). Where no
library is found everything runs on glibc, with `allocator.py`'s settings.

`ANGIOKG_JEMALLOC`: unset looks in the usual places (Debian's and Ubuntu's `libjemalloc2`,
Fedora's `jemalloc`, /usr/local); a path names the library; 0 keeps glibc.

Left to itself jemalloc gives freed pages back on timers: 10 s in its ordinary arenas, and at
once in the arena that serves requests of 8 MiB and more (its "huge" arena, made at the first
such request). Extraction's largest buffers (a batch's feed-forward activations, a pair chunk's
rows) are of that size and come and go with every batch, so each batch faulted their pages in
afresh: over 600 sample reports (`default` model, one thread, 2026-12-02) 1.68-1.75 million
minor page faults, 2.3 s of system time in 13.0-13.9 s. `freed_pages_held` turns the timers off
while a window of batches is open and hands everything freed back at its end, as glibc's trim
does (`allocator.py`); with no window open the timers are back, so the steps after extraction
and a long-lived process between nights give memory back as before: 206,000 faults, 11.3-11.7 s,
peak RSS 671 MiB where the timers gave 608. `bench/bench_memory.py --mallocs jemalloc
jemalloc-timers` (same day and machine, `angiokg extract`, taking turns): 1,000 -> 10,000
reports 743 -> 780 MiB (1.05x) at 69.8 reports/s, against the timers' 679 -> 719 (1.06x) at
60.0: still flat, 1.16x the speed for ~60 MiB.
`ANGIOKG_MALLOC_TRIM=0` leaves jemalloc to its timers; a `MALLOC_CONF` that sets
`dirty_decay_ms` is the user's choice, and is kept.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

LIBRARY_ENV = "ANGIOKG_JEMALLOC"
# Set in the restarted process's environment: a library that is preloaded but does not show
# (another loader, a static build) must not restart the process again and again.
TRIED_ENV = "ANGIOKG_JEMALLOC_TRIED"
ALL_ARENAS = 4096  # mallctl's arena index for every arena (MALLCTL_ARENAS_ALL)
NEVER = -1  # a decay time: freed pages are not given back by a timer
SEARCHED = ("/usr/lib/*-linux-gnu/libjemalloc.so.2", "/usr/lib64/libjemalloc.so.2",
            "/usr/lib/libjemalloc.so.2", "/usr/local/lib/libjemalloc.so.2")


def loaded() -> bool:
    """Whether this process's malloc is jemalloc's (its `mallctl` is among the global
    symbols: preloaded, or linked in)."""
    return _mallctl() is not None


@functools.cache
def _mallctl() -> Callable[..., int] | None:
    """jemalloc's mallctl in this process, looked up once; None where malloc is another's."""
    try:
        return ctypes.CDLL(None).mallctl
    except (AttributeError, OSError):
        return None


def library(environ: Mapping[str, str] | None = None) -> Path | None:
    """The jemalloc library to preload: $ANGIOKG_JEMALLOC's, else the first one found in the
    usual places; None for 0, on other systems than Linux, or where none is found."""
    environ = os.environ if environ is None else environ
    raw = environ.get(LIBRARY_ENV, "").strip()
    if raw == "0" or not sys.platform.startswith("linux"):
        return None
    if raw:
        path = Path(raw)
        if not path.is_file():
            raise ValueError(f"{LIBRARY_ENV}={raw!r}: no such file; give the path of "
                             "libjemalloc.so.2, or 0 to keep glibc's malloc")
        return path
    for pattern in SEARCHED:
        found = sorted(glob.glob(pattern))
        if found:
            return Path(found[0])
    return None


def preload_environ(environ: Mapping[str, str], already_loaded: bool) -> dict[str, str] | None:
    """The environment to restart a process with so that jemalloc is its malloc; None where
    there is nothing to do: it is loaded already, was tried once, is turned off or not found."""
    if already_loaded or environ.get(TRIED_ENV):
        return None
    path = library(environ)
    if path is None:
        return None
    preload = environ.get("LD_PRELOAD", "").strip()
    return {**environ, "LD_PRELOAD": f"{path}:{preload}" if preload else str(path),
            TRIED_ENV: "1"}


def decay_left_to_user(environ: Mapping[str, str] | None = None) -> bool:
    """Whether $MALLOC_CONF sets how jemalloc gives freed pages back: then it is not touched."""
    conf = (os.environ if environ is None else environ).get("MALLOC_CONF", "")
    return "dirty_decay_ms" in conf


# Windows of batches open now, over all of the process's threads (the nightly's shard threads
# each run their own): the pages are held while any is open.
_open_windows = 0
_windows_lock = threading.Lock()


@contextlib.contextmanager
def freed_pages_held() -> Iterator[None]:
    """One window of batches: freed pages are kept for the next batch's buffers while any thread
    is inside a window, everything freed is given back at each window's end, and jemalloc's own
    timers are back once no window is open (the steps after extraction, a long-lived `angiokg
    serve`, give memory back as before)."""
    global _open_windows
    with _windows_lock:
        _open_windows += 1
        _set_decay(lambda index: NEVER)  # again each window: arenas made since are set too
    try:
        yield
    finally:
        with _windows_lock:
            _open_windows -= 1
            _mallctl_write(f"arena.{ALL_ARENAS}.purge", None)
            if _open_windows == 0:
                _restore_timers()


def _restore_timers() -> None:
    """jemalloc's timers as it sets them itself: `opt.dirty_decay_ms` in every arena, and 0 in
    the huge one when that is positive (the huge arena's index is `opt.narenas`: jemalloc
    reserves it after the automatic arenas)."""
    default = _mallctl_read("opt.dirty_decay_ms", ctypes.c_ssize_t)
    huge = _mallctl_read("opt.narenas", ctypes.c_uint)
    if default is None:
        return
    _set_decay(lambda index: 0 if index is not None and index == huge and default > 0
               else default)


def _set_decay(decay_of: Callable[[int | None], int]) -> None:
    """Each arena's dirty-page decay time (ms; -1 never), and the default of arenas made from
    now on (`decay_of(None)`). An arena not made yet answers EFAULT and is left to the default."""
    _mallctl_write("arenas.dirty_decay_ms", ctypes.c_ssize_t(decay_of(None)))
    for index in range(_mallctl_read("arenas.narenas", ctypes.c_uint) or 0):
        _mallctl_write(f"arena.{index}.dirty_decay_ms", ctypes.c_ssize_t(decay_of(index)))


def _mallctl_read(name: str, kind: type[ctypes.c_uint] | type[ctypes.c_ssize_t]) -> int | None:
    """jemalloc's mallctl(name) read as `kind`; None where it does not answer."""
    value, size = kind(0), ctypes.c_size_t(ctypes.sizeof(kind))
    if _mallctl()(name.encode(), ctypes.byref(value), ctypes.byref(size), None,
                  ctypes.c_size_t(0)):
        return None
    return value.value


def _mallctl_write(name: str, value: ctypes.c_ssize_t | None) -> None:
    """jemalloc's mallctl(name) with `value` written (None: a command without one); a name this
    jemalloc does not know (an older one) is left unset."""
    new = ctypes.byref(value) if value is not None else None
    size = ctypes.c_size_t(ctypes.sizeof(value) if value is not None else 0)
    _mallctl()(name.encode(), None, None, new, size)


def main() -> int:
    """Print the LD_PRELOAD value that puts jemalloc first (nothing when none is to be had):
    for shell scripts that start processes other than `angiokg`, such as a worker's flow runs."""
    try:
        environ = preload_environ(os.environ, loaded())
    except ValueError as error:  # said, and the worker starts on glibc's malloc
        print(f"extraction.jemalloc: {error}; starting on glibc's malloc", file=sys.stderr)
        return 0
    if environ is not None:
        print(environ["LD_PRELOAD"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
