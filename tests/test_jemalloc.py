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
# what a loaded Extractor does to the heap there (None: nothing to call after each window).
RESTART = """
import os, sys
from flows.cli import restart_under_jemalloc
restart_under_jemalloc()
from extraction import allocator, jemalloc
print(jemalloc.loaded(), sys.argv[1:], allocator.prepare_for_extraction() is None)
"""


@needs_jemalloc
def test_the_command_line_restarts_itself_under_jemalloc_with_its_arguments():
    out = subprocess.run([sys.executable, "-c", RESTART, "extract", "--out", "x"], cwd=REPO,
                         env=_clean_environ(), capture_output=True, text=True, check=True)
    # and the extraction gives freed pages back after each window
    assert out.stdout.split("\n")[0] == "True ['extract', '--out', 'x'] False"


# Under jemalloc, as the loaded Extractor sets it up (or not, as the environment says): free a
# 32 MiB buffer (jemalloc's huge arena, made here, gives such ones back at once by itself) and
# print how much of it left at the free, then at the call made after each window.
HOLD_PROBE = """
import ctypes
from extraction import allocator
after_window = allocator.prepare_for_extraction()
print(allocator.heap_in_use())
lib = ctypes.CDLL(None)
lib.malloc.restype = ctypes.c_void_p
lib.free.argtypes = [ctypes.c_void_p]
def resident_kib():
    return int(open("/proc/self/statm").read().split()[1]) * 4
size = 32 << 20
for _ in range(2):  # the first round makes the huge arena; the second frees into it
    block = lib.malloc(size); ctypes.memset(block, 1, size)
    before = resident_kib()
    lib.free(block)
    freed = resident_kib()
    if after_window is not None:
        after_window()
print(before - freed, freed - resident_kib())
"""


def _hold_probe(**environ: str) -> tuple[str, int, int]:
    """The run log's memory line, and the KiB given back at the free and after the window."""
    env = _clean_environ(LD_PRELOAD=str(FOUND), **environ)
    result = subprocess.run([sys.executable, "-c", HOLD_PROBE], cwd=REPO, env=env,
                            capture_output=True, text=True, check=True)
    said, numbers = result.stdout.strip().split("\n")
    on_free, after_window = map(int, numbers.split())
    return said, on_free, after_window


@needs_jemalloc
def test_extraction_holds_freed_pages_for_the_next_batch_and_gives_them_back_after_a_window():
    said, on_free, after_window = _hold_probe()
    assert on_free < 2000  # the next batch's buffers reuse the pages: nothing faults again
    assert after_window >= 30000  # the window's end gave the 32 MiB back
    assert said.endswith("freed pages held and given back after each window of batches")


@needs_jemalloc
@pytest.mark.parametrize(("environ", "policy"), [
    ({"ANGIOKG_MALLOC_TRIM": "0"}, "on its own timers (ANGIOKG_MALLOC_TRIM=0)"),
    ({"MALLOC_CONF": "dirty_decay_ms:0"}, "as MALLOC_CONF's dirty_decay_ms says")])
def test_turned_off_or_set_by_the_user_jemalloc_gives_freed_pages_back_itself(environ, policy):
    said, on_free, after_window = _hold_probe(**environ)
    assert on_free >= 30000 and after_window < 2000
    assert said.endswith(f"freed pages given back {policy}")


def test_turned_off_the_command_line_stays_on_glibc_and_tunes_it():
    out = subprocess.run([sys.executable, "-c", RESTART, "a"], cwd=REPO,
                         env=_clean_environ(ANGIOKG_JEMALLOC="0"), capture_output=True,
                         text=True, check=True)
    assert out.stdout.split("\n")[0] == "False ['a'] False"


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
