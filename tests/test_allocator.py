"""The allocator settings of a loaded Extractor: a freed large buffer goes back to the OS even
after glibc's dynamic threshold has been pushed up (what torch's activations do batch after
batch), and a freed smaller one inside the heap goes back when the heap is trimmed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from extraction.allocator import (
    ARENAS,
    THRESHOLD_BYTES,
    arenas_from_env,
    threshold_from_env,
    trim_from_env,
)

# Push glibc's dynamic threshold up with one freed 16 MiB block, then free an 8 MiB block that
# sits under a small live one, and print how much of it went back to the OS.
PROBE = """
import ctypes, sys
from extraction.allocator import fix_mmap_threshold
if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def resident_kib():
    return int(open("/proc/self/statm").read().split()[1]) * 4
big = libc.malloc(16 << 20); ctypes.memset(big, 1, 16 << 20); libc.free(big)
block = libc.malloc(8 << 20); ctypes.memset(block, 1, 8 << 20)
pin = libc.malloc(64); ctypes.memset(pin, 1, 64)
before = resident_kib()
libc.free(block)
print(before - resident_kib())
"""


def _returned_kib(mode: str) -> int:
    result = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                            check=True)
    return int(result.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_a_freed_large_buffer_is_returned_only_with_the_fixed_threshold():
    assert _returned_kib("fixed") >= 8000  # the 8 MiB went back to the OS
    assert _returned_kib("default") < 1000  # glibc kept it in the heap


# A 1 MiB block (under the fixed threshold: from the heap) freed under a live one stays
# resident until the heap is trimmed; print what free returned, then what the trim did. The
# live one need not land above the block (a hole below can take it: seen in a fresh clone), and
# then free would give the block back by trimming the heap's top, so the probe raises glibc's
# trim threshold (M_TRIM_THRESHOLD) out of the way: what it measures is malloc_trim's work.
TRIM_PROBE = """
import ctypes
from extraction.allocator import fix_mmap_threshold, release_free_memory
assert fix_mmap_threshold()
libc = ctypes.CDLL("libc.so.6")
assert libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def resident_kib():
    return int(open("/proc/self/statm").read().split()[1]) * 4
block = libc.malloc(1 << 20); ctypes.memset(block, 1, 1 << 20)
pin = libc.malloc(64); ctypes.memset(pin, 1, 64)
before = resident_kib()
libc.free(block)
freed = resident_kib()
release_free_memory()
print(before - freed, freed - resident_kib())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim is Linux-only")
def test_a_freed_buffer_inside_the_heap_is_returned_by_the_trim_after_a_window():
    result = subprocess.run([sys.executable, "-c", TRIM_PROBE], capture_output=True, text=True,
                            check=True)
    on_free, on_trim = map(int, result.stdout.split())
    assert on_free < 200  # free alone kept the 1 MiB in the heap
    assert on_trim >= 900  # the trim gave it back


def test_the_threshold_comes_from_the_environment_and_zero_leaves_glibc_alone():
    assert threshold_from_env({}) == THRESHOLD_BYTES == 4 << 20
    assert threshold_from_env({"ANGIOKG_MMAP_THRESHOLD": "131072"}) == 128 << 10
    assert threshold_from_env({"ANGIOKG_MMAP_THRESHOLD": "0"}) == 0
    with pytest.raises(ValueError, match="number of bytes"):
        threshold_from_env({"ANGIOKG_MMAP_THRESHOLD": "4M"})


def test_trimming_is_on_unless_the_environment_says_0():
    assert trim_from_env({}) and trim_from_env({"ANGIOKG_MALLOC_TRIM": "1"})
    assert not trim_from_env({"ANGIOKG_MALLOC_TRIM": "0"})
    with pytest.raises(ValueError, match="ANGIOKG_MALLOC_TRIM"):
        trim_from_env({"ANGIOKG_MALLOC_TRIM": "yes"})


# Threads that each hold small blocks at the same time: print how many heaps (arenas)
# malloc_stats lists once they have all allocated.
ARENA_PROBE = """
import ctypes, sys, threading
from extraction.allocator import limit_arenas
if sys.argv[1] == "limited":
    assert limit_arenas()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
barrier = threading.Barrier(4)
def work():
    block = libc.malloc(64 << 10)
    ctypes.memset(block, 1, 64 << 10)
    barrier.wait()
    libc.free(block)
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
libc.malloc_stats()
"""


def _arenas(mode: str) -> int:
    result = subprocess.run([sys.executable, "-c", ARENA_PROBE, mode], capture_output=True,
                            text=True, check=True)
    return sum(line.startswith("Arena ") for line in result.stderr.splitlines())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_extraction_threads_share_one_heap_where_each_would_take_its_own():
    assert _arenas("default") > 1  # glibc gave the threads heaps of their own
    assert _arenas("limited") == 1


def test_the_arena_count_comes_from_the_environment_and_zero_leaves_glibc_alone():
    assert arenas_from_env({}) == ARENAS == 1
    assert arenas_from_env({"ANGIOKG_MALLOC_ARENAS": "2"}) == 2
    assert arenas_from_env({"ANGIOKG_MALLOC_ARENAS": "0"}) == 0
    with pytest.raises(ValueError, match="number of arenas"):
        arenas_from_env({"ANGIOKG_MALLOC_ARENAS": "one"})
