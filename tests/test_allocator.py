"""The fixed mmap threshold: a freed large buffer goes back to the OS even after glibc's
dynamic threshold has been pushed up (what torch's activations do batch after batch)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from extraction.allocator import THRESHOLD_BYTES, threshold_from_env

# Push glibc's dynamic threshold up with one freed 8 MiB block, then free a 4 MiB block that
# sits under a small live one, and print how much of it is still resident.
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
big = libc.malloc(8 << 20); ctypes.memset(big, 1, 8 << 20); libc.free(big)
block = libc.malloc(4 << 20); ctypes.memset(block, 1, 4 << 20)
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
    assert _returned_kib("fixed") >= 4000  # the 4 MiB went back to the OS
    assert _returned_kib("default") < 1000  # glibc kept it in the heap


def test_the_threshold_comes_from_the_environment_and_zero_leaves_glibc_alone():
    assert threshold_from_env({}) == THRESHOLD_BYTES
    assert threshold_from_env({"ANGIOKG_MMAP_THRESHOLD": "4194304"}) == 4 << 20
    assert threshold_from_env({"ANGIOKG_MMAP_THRESHOLD": "0"}) == 0
    with pytest.raises(ValueError, match="number of bytes"):
        threshold_from_env({"ANGIOKG_MMAP_THRESHOLD": "4M"})
