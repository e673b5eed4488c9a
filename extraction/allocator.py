"""Keep a long extraction's memory bounded without paying a fifth of its speed for it.

Where jemalloc is this process's malloc (`extraction.jemalloc`: `angiokg` and the workers
preload it where it is installed) it stays flat by itself; `prepare_for_extraction` only makes it
hold freed pages for reuse through each window of batches and give them back at its end, as the
trim below does for glibc (`jemalloc.py` says why). The rest of this module is for glibc's malloc.

glibc serves a request above its mmap threshold with its own mapping, returned on free; below
it, from the heap, which only shrinks from the top. The threshold adapts upwards after each
large free (up to 32 MiB), so after a few batches torch's activations of every shape are carved
out of the heap, and the holes they leave are too small for the next batch's shapes: measured
on `angiokg extract` over 3,000 reports, peak RSS grew shard by shard from 766 to 1,650 MiB while
Python's own objects stayed at 5 MiB.

The first fix fixed the threshold at 128 KiB: flat (about 620 MiB for 1,000 and for 10,000
reports), but every buffer above 128 KiB became a fresh mapping to fault in, and extraction ran
about a fifth slower. What `Extractor.load` sets now (every extraction: command, flows, Dask
workers; training keeps glibc's defaults):

- the threshold fixed at 4 MiB: the few largest buffers (a batch's feed-forward activations,
  a pair chunk's rows) still come and go as mappings, the many smaller ones are reused from the
  heap without faulting pages in again;
- after each window of sentences (`extraction.predict.SORT_WINDOW_BATCHES` batches),
  `malloc_trim(0)` hands the heap's free pages back (glibc gives back whole free pages inside
  the heap too, not only at its top), so the holes those smaller buffers leave cannot pile up.
  After every batch instead it cost a tenth of the speed in faulting the pages in again, for
  little less memory;
- one heap (arena) for the threads started after it (`M_ARENA_MAX` 1): glibc gives each thread
  a heap of its own (up to 8 per core), and the nightly's two shard threads each carved theirs
  up; shared, each one's freed buffers serve the other's next batch. Over 1,000 reports on two
  threads (quiet machine, 2026-12-01): 764-769 -> 738 MiB, as fast (74 reports/s).

A window's batches also run longest first (`extraction.predict.window_batches`), so each
batch's heap buffers fit in the holes the longer one before it left; in increasing order every
batch took fresh pages from the top of the heap until the window's trim (two threads over
1,000 reports: 887-913 -> 764-769 MiB).

Side by side over 3,000 reports (bench/bench_memory.py --allocators 3000, 2026-12-01): 1.09x the
speed of the 128 KiB threshold (glibc's adaptive one: 1.18x) at a peak of 750 MiB (128 KiB: 587;
adaptive: 1,424). It still grows a little, about 7 MiB per 256-report shard in-process, where
the 128 KiB threshold stays flat: the trade is half of that threshold's cost back for some of
its flatness. `ANGIOKG_MMAP_THRESHOLD` (bytes; 0 keeps glibc's adaptive threshold),
`ANGIOKG_MALLOC_TRIM=0` (no trimming; under jemalloc: its own timers) and
`ANGIOKG_MALLOC_ARENAS` (heaps the threads share; 0 keeps glibc's default) choose otherwise:
131072 with trimming off is the first fix, 0 / 0 / 0 glibc's own behaviour.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

from extraction import jemalloc
from ingest.env_counts import count_from_env

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers
M_ARENA_MAX = -8
THRESHOLD_BYTES = 4 * 1024 * 1024
ARENAS = 1
THRESHOLD_ENV = "ANGIOKG_MMAP_THRESHOLD"
TRIM_ENV = "ANGIOKG_MALLOC_TRIM"
ARENAS_ENV = "ANGIOKG_MALLOC_ARENAS"


def threshold_from_env(environ: dict[str, str] | None = None) -> int:
    """The threshold to set: $ANGIOKG_MMAP_THRESHOLD (bytes; 0 = glibc's adaptive default)."""
    return count_from_env(THRESHOLD_ENV, THRESHOLD_BYTES, "bytes",
                          "glibc's adaptive threshold", environ)


def arenas_from_env(environ: dict[str, str] | None = None) -> int:
    """How many heaps (arenas) threads share: $ANGIOKG_MALLOC_ARENAS (0 = glibc's default)."""
    return count_from_env(ARENAS_ENV, ARENAS, "arenas", "glibc's default (8 per core)",
                          environ)


def trim_from_env(environ: dict[str, str] | None = None) -> bool:
    """Whether to trim after each window: $ANGIOKG_MALLOC_TRIM, 1 (the default) or 0."""
    raw = (os.environ if environ is None else environ).get(TRIM_ENV, "").strip()
    if raw in ("", "1"):
        return True
    if raw == "0":
        return False
    raise ValueError(f"{TRIM_ENV}={raw!r}: give 1 to trim the heap after each window of "
                     "batches, 0 not to")


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc has both; musl has neither
    except (OSError, AttributeError):
        log.debug("no glibc here; the allocator keeps its defaults")
        return None
    return libc


def fix_mmap_threshold(threshold_bytes: int | None = None) -> bool:
    """Fix glibc's mmap threshold (default: `threshold_from_env()`); True when set, False where
    it is left alone (0 asked for, or no glibc: macOS, musl)."""
    return _mallopt(M_MMAP_THRESHOLD,
                    threshold_from_env() if threshold_bytes is None else threshold_bytes)


def limit_arenas(count: int | None = None) -> bool:
    """Let threads that start from now on share `count` heaps (default: `arenas_from_env()`);
    True when set, False where left alone (0 asked for, or no glibc). A thread that already
    has a heap of its own keeps it: call this before the extraction's threads start."""
    return _mallopt(M_ARENA_MAX, arenas_from_env() if count is None else count)


def _mallopt(parameter: int, value: int) -> bool:
    """glibc's mallopt(parameter, value); False where left alone (0 asked for, or no glibc)."""
    libc = _libc()
    if value == 0 or libc is None:
        return False
    return bool(libc.mallopt(parameter, value))


# What each window of batches runs inside: `with window_memory(): ...`
WindowMemory = Callable[[], AbstractContextManager[object]]


def prepare_for_extraction() -> WindowMemory:
    """Set the heap up for a long extraction; returns what each window of batches runs inside.
    jemalloc: freed pages held through the window and given back at its end; glibc: one arena
    and the fixed threshold now, the trim after each window; as the environment says (the
    module's docstring)."""
    _say_once(heap_in_use())
    if jemalloc.loaded():
        return jemalloc.freed_pages_held if _jemalloc_holds_pages() else contextlib.nullcontext
    limit_arenas()
    fix_mmap_threshold()
    return trimmed_after if trim_from_env() else contextlib.nullcontext


@contextlib.contextmanager
def trimmed_after() -> Iterator[None]:
    """One window of batches, glibc's heap trimmed after it."""
    try:
        yield
    finally:
        release_free_memory()


def heap_in_use() -> str:
    """One line for a run's log: the malloc this process extracts with."""
    if jemalloc.loaded():
        if _jemalloc_holds_pages():
            how = "freed pages held and given back after each window of batches"
        elif jemalloc.decay_left_to_user():
            how = "freed pages given back as MALLOC_CONF's dirty_decay_ms says"
        else:
            how = f"freed pages given back on its own timers ({TRIM_ENV}=0)"
        return f"extraction memory: jemalloc's malloc (preloaded); {how}"
    return ("extraction memory: glibc's malloc, tuned (extraction/allocator.py); install "
            "jemalloc (Debian: libjemalloc2) for flat memory over long archives")


def _jemalloc_holds_pages() -> bool:
    """Whether the extraction takes jemalloc's giving back of freed pages over (`jemalloc.py`):
    unless trimming is turned off or the user's MALLOC_CONF sets it."""
    return trim_from_env() and not jemalloc.decay_left_to_user()


@functools.cache
def _say_once(message: str) -> None:
    log.info(message)


def release_free_memory() -> None:
    """Give the heap's free pages back to the OS (glibc's malloc_trim(0); nothing elsewhere)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
