"""jemalloc under `angiokg` and the workers' flow runs: which library, the restart that preloads
it, and what a loaded Extractor does with it: freed pages held for the next batch and given
back after each window of batches."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from extraction import jemalloc

REPO = Path(__file__).resolve().parents[1]
FOUND = jemalloc.library({})
needs_jemalloc = pytest.mark.skipif(
    FOUND is None or not sys.platform.startswith("linux"),
    reason="no libjemalloc.so.2 on this machine (Debian: apt-get install libjemalloc2; "
           "`make setup` installs it where it runs as root)")


def _clean_environ(**extra: str) -> dict[str, str]:
    """This process's environment without a preload or an earlier restart's mark."""
    environ = {k: v for k, v in os.environ.items()
               if k not in ("LD_PRELOAD", jemalloc.TRIED_ENV, jemalloc.LIBRARY_ENV)}
    return {**environ, **extra}


def test_the_library_is_the_one_named_or_none_when_turned_off(tmp_path):
    named = tmp_path / "libjemalloc.so.2"
    named.write_bytes(b"")
    assert jemalloc.library({jemalloc.LIBRARY_ENV: str(named)}) == named
    assert jemalloc.library({jemalloc.LIBRARY_ENV: "0"}) is None
    with pytest.raises(ValueError, match="ANGIOKG_JEMALLOC=.*no such file"):
        jemalloc.library({jemalloc.LIBRARY_ENV: str(tmp_path / "missing.so")})


def test_the_restart_environment_puts_jemalloc_first_once(tmp_path):
    named = tmp_path / "libjemalloc.so.2"
    named.write_bytes(b"")
    environ = {jemalloc.LIBRARY_ENV: str(named), "LD_PRELOAD": "/opt/other.so", "KEEP": "1"}
    restarted = jemalloc.preload_environ(environ, already_loaded=False)
    assert restarted is not None
    assert restarted["LD_PRELOAD"] == f"{named}:/opt/other.so"
    assert restarted["KEEP"] == "1" and restarted[jemalloc.TRIED_ENV] == "1"
    # the restarted process does not restart again, whatever its loader made of the preload
    assert jemalloc.preload_environ(restarted, already_loaded=False) is None
    assert jemalloc.preload_environ(environ, already_loaded=True) is None
    assert jemalloc.preload_environ({jemalloc.LIBRARY_ENV: "0"}, already_loaded=False) is None


# The command line's restart, in a child: the same arguments come through, under jemalloc; and
# what a loaded Extractor runs each window of batches inside there.
RESTART = """
import os, sys
from flows.cli import restart_under_jemalloc
restart_under_jemalloc()
from extraction import allocator, jemalloc
print(jemalloc.loaded(), sys.argv[1:], allocator.prepare_for_extraction().__name__)
"""


@needs_jemalloc
def test_the_command_line_restarts_itself_under_jemalloc_with_its_arguments():
    out = subprocess.run([sys.executable, "-c", RESTART, "extract", "--out", "x"], cwd=REPO,
                         env=_clean_environ(), capture_output=True, text=True, check=True)
    # and the extraction holds freed pages through each window
    assert out.stdout.split("\n")[0] == "True ['extract', '--out', 'x'] freed_pages_held"


def test_turned_off_the_command_line_stays_on_glibc_and_tunes_it():
    out = subprocess.run([sys.executable, "-c", RESTART, "a"], cwd=REPO,
                         env=_clean_environ(ANGIOKG_JEMALLOC="0"), capture_output=True,
                         text=True, check=True)
    assert out.stdout.split("\n")[0] == "False ['a'] trimmed_after"


@needs_jemalloc
def test_the_worker_environment_preloads_jemalloc_for_its_flow_runs():
    environ = _clean_environ(PATH=f"{Path(sys.executable).parent}{os.pathsep}"
                                  f"{os.environ.get('PATH', '')}")
    script = '. infra/scripts/worker-env.sh; printf "%s" "$LD_PRELOAD"'
    preload = subprocess.run(["sh", "-c", script], cwd=REPO, env=environ, capture_output=True,
                             text=True, check=True).stdout
    assert preload == str(FOUND)
    off = subprocess.run(["sh", "-c", script], cwd=REPO, env={**environ, "ANGIOKG_JEMALLOC": "0"},
                         capture_output=True, text=True, check=True).stdout
    assert off == ""


# Under jemalloc, as the loaded Extractor sets it up (or not, as the environment says): free
# 32 MiB buffers (jemalloc's huge arena, made here, gives such ones back at once by itself) and
# print the KiB given back: at a free inside a window, at the window's end, at a free inside a
# window while another (another shard thread's) has just ended, and at a free after all windows.
HOLD_PROBE = """
import ctypes
from extraction import allocator
window_memory = allocator.prepare_for_extraction()
print(allocator.heap_in_use())
lib = ctypes.CDLL(None)
lib.malloc.restype = ctypes.c_void_p
lib.free.argtypes = [ctypes.c_void_p]
def resident_kib():
    return int(open("/proc/self/statm").read().split()[1]) * 4
def returned_at_free():
    block = lib.malloc(32 << 20); ctypes.memset(block, 1, 32 << 20)
    before = resident_kib()
    lib.free(block)
    return before - resident_kib()
with window_memory():
    returned_at_free()  # makes the huge arena
    inside = returned_at_free()
    held = resident_kib()
at_end = held - resident_kib()
outer = window_memory()
outer.__enter__()
with window_memory():
    pass
overlapping = returned_at_free()
outer.__exit__(None, None, None)
after = returned_at_free()
print(inside, at_end, overlapping, after)
"""


def _hold_probe(**environ: str) -> tuple[str, list[int]]:
    """The run log's memory line, and the KiB given back at each point of the probe."""
    env = _clean_environ(LD_PRELOAD=str(FOUND), **environ)
    result = subprocess.run([sys.executable, "-c", HOLD_PROBE], cwd=REPO, env=env,
                            capture_output=True, text=True, check=True)
    said, numbers = result.stdout.strip().split("\n")
    return said, [int(n) for n in numbers.split()]


@needs_jemalloc
def test_extraction_holds_freed_pages_through_a_window_and_gives_them_back_at_its_end():
    said, (inside, at_end, overlapping, after) = _hold_probe()
    assert inside < 2000  # the next batch's buffers reuse the pages: nothing faults again
    assert at_end >= 30000  # the window's end gave the 32 MiB back
    assert overlapping < 2000  # another thread's window still open: still held
    assert after >= 30000  # no window open: jemalloc's own timers again (at once, here)
    assert said.endswith("freed pages held and given back after each window of batches")


@needs_jemalloc
@pytest.mark.parametrize(("environ", "policy"), [
    ({"ANGIOKG_MALLOC_TRIM": "0"}, "on its own timers (ANGIOKG_MALLOC_TRIM=0)"),
    ({"MALLOC_CONF": "dirty_decay_ms:0"}, "as MALLOC_CONF's dirty_decay_ms says")])
def test_turned_off_or_set_by_the_user_jemalloc_gives_freed_pages_back_itself(environ, policy):
    said, (inside, at_end, overlapping, after) = _hold_probe(**environ)
    assert min(inside, overlapping, after) >= 30000 and at_end < 2000
    assert said.endswith(f"freed pages given back {policy}")


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_the_images_preload_the_jemalloc_they_install(dockerfile):
    text = (REPO / "infra" / dockerfile).read_text(encoding="utf-8")
    preload = re.search(r"^ENV LD_PRELOAD=(\S+)$", text, re.M)[1]
    assert "apt-get install -y --no-install-recommends libjemalloc2" in text
    assert f"ln -s /usr/lib/*-linux-gnu/libjemalloc.so.2 {preload}" in text
    assert preload in jemalloc.SEARCHED  # angiokg finds the same copy where LD_PRELOAD is unset


def test_a_library_named_that_is_not_there_is_one_line_naming_the_variable(tmp_path):
    missing = str(tmp_path / "libjemalloc.so.2")
    environ = _clean_environ(ANGIOKG_JEMALLOC=missing)
    command = subprocess.run([sys.executable, "-m", "flows.cli", "--help"], cwd=REPO,
                             env=environ, capture_output=True, text=True)
    assert command.returncode == 2 and "Traceback" not in command.stderr
    assert command.stderr.strip() == (f"angiokg: ANGIOKG_JEMALLOC={missing!r}: no such file; give "
                                      "the path of libjemalloc.so.2, or 0 to keep glibc's malloc")
    # a worker's start script says so too, and starts on glibc's malloc
    script = '. infra/scripts/worker-env.sh; printf "[%s]" "$LD_PRELOAD"'
    worker = subprocess.run(["sh", "-c", script], cwd=REPO, capture_output=True, text=True,
                            env={**environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                                                    f"{os.environ.get('PATH', '')}"})
    assert worker.stdout == "[]" and "ANGIOKG_JEMALLOC=" in worker.stderr
