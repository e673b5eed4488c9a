"""Keep a long extraction's memory flat: large buffers go back to the OS when torch frees them.

glibc serves a request above its mmap threshold with its own mapping, returned on free; below
it, from the heap, which only shrinks from the top. The threshold adapts upwards after each
large free (up to 32 MiB), so after a few batches torch's activations of every shape are carved
out of the heap, and the holes they leave are too small for the next batch's shapes: measured
on `angiokg extract` over 3,000 reports, peak RSS grew shard by shard from 766 to 1,650 MiB while
Python's own objects stayed at 5 MiB. A fixed threshold of 128 KiB (glibc's default start)
keeps the peak at about 620 MiB, flat, for 1,000 and for 10,000 reports. `Extractor.load`
sets it, so every extraction (command, flow, Dask worker) runs with it; training does not.

The price is throughput: every large buffer is a fresh mapping to fault in, and extraction ran
about 20% slower (24 -> 18 reports/s on 2 cores). A night that must not run out of memory is
worth more than a fifth of its speed, so this is the default; `ANGIOKG_MMAP_THRESHOLD=0` keeps
glibc's adaptive behaviour (faster, memory grows with the run), any other value sets the
threshold in bytes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
THRESHOLD_BYTES = 128 * 1024
THRESHOLD_ENV = "ANGIOKG_MMAP_THRESHOLD"


def threshold_from_env(environ: dict[str, str] | None = None) -> int:
    """The threshold to set: $ANGIOKG_MMAP_THRESHOLD (bytes; 0 = glibc's adaptive default)."""
    raw = (os.environ if environ is None else environ).get(THRESHOLD_ENV, "").strip()
    if not raw:
        return THRESHOLD_BYTES
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{THRESHOLD_ENV}={raw!r}: give a number of bytes, or 0 to keep "
                         "glibc's adaptive threshold") from None
    if value < 0:
        raise ValueError(f"{THRESHOLD_ENV}={raw!r} is negative; give bytes, or 0")
    return value


def fix_mmap_threshold(threshold_bytes: int | None = None) -> bool:
    """Fix glibc's mmap threshold (default: `threshold_from_env()`); True when set, False where
    it is left alone (0 asked for, or no glibc: macOS, musl)."""
    if threshold_bytes is None:
        threshold_bytes = threshold_from_env()
    if threshold_bytes == 0 or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        log.debug("no glibc mallopt here; the allocator keeps its defaults")
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, threshold_bytes))
