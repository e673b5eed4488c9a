"""Peak RSS per step (pipeline.peak_memory): each phase's own peak, not the process's."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.peak_memory import PhasePeaks, peak_mib, reset_peak

needs_reset = pytest.mark.skipif(not reset_peak(), reason="this kernel refuses to reset VmHWM "
                                 "through /proc/self/clear_refs")


CHILD = """
from pipeline.peak_memory import PhasePeaks
peaks = PhasePeaks()
with peaks.phase("big"):
    block = bytearray(300 * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])  # every page touched
    del block
with peaks.phase("small"):
    small = bytearray(10 * 1024 * 1024)
    del small
print(peaks.phases, peaks.cumulative)
print(peaks.format())
"""


@needs_reset
def test_a_phase_after_a_big_one_reports_its_own_smaller_peak():
    # a fresh interpreter: in this one, earlier tests' malloc settings may keep freed memory
    # resident, and a big block can reuse it without raising the peak
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=60, check=True)
    phases_line, format_line = done.stdout.strip().splitlines()
    phases, cumulative = phases_line.rsplit(" ", 1)
    (big_name, big), (small_name, small_peak) = ast.literal_eval(phases)
    assert (big_name, small_name) == ("big", "small")
    assert big - small_peak > 200  # the second phase does not inherit the first one's peak
    assert cumulative == "False"
    assert "big" in format_line and "each step's peak" in format_line


def test_without_a_reset_the_figures_say_they_are_cumulative(tmp_path):
    refused = tmp_path / "missing" / "clear_refs"
    assert reset_peak(refused) is False
    peaks = PhasePeaks(clear_refs=refused)
    with peaks.phase("only"):
        pass
    assert peaks.cumulative and "cannot be reset" in peaks.format()
    assert peaks.phases[0][0] == "only" and peaks.phases[0][1] > 0


def test_the_peak_is_read_from_the_status_file(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmPeak:\t 999 kB\nVmHWM:\t  2048 kB\nVmRSS:\t 1024 kB\n")
    assert peak_mib(status) == 2.0
    assert peak_mib(tmp_path / "none") is None
    assert PhasePeaks().format().startswith("not measured")


def test_the_memory_benchmark_reads_the_nightlys_line_as_it_is_printed(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "bench"))
    import bench_memory

    peaks = PhasePeaks([("ingest", 577.2), ("extraction", 1878.4), ("graph load", 1118.0)])
    output = f"Run folder: x\n  memory      {peaks.format()}\n  queue       y\n"
    assert bench_memory.night_steps(output) == {"ingest": 577.0, "extraction": 1878.0,
                                                "graph load": 1118.0}
    assert bench_memory.night_steps("no memory line") == {}


def test_the_nightlys_peak_is_its_highest_step_when_wait4_saw_only_the_last(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "bench"))
    import bench_memory

    steps = {"ingest": 577.0, "extraction": 972.0, "queue": 695.0, "graph load": 879.0}
    assert bench_memory.night_peak(879.0, steps) == 972.0
    # a child (Prefect's server) that peaked higher than every step still counts
    assert bench_memory.night_peak(1500.0, steps) == 1500.0
    assert bench_memory.night_peak(640.0, {}) == 640.0


@needs_reset
def test_resetting_the_peak_resets_what_wait4_reports():
    """Why night_peak exists: ru_maxrss after a reset is the peak since the reset."""
    def waited_peak_mib(reset: bool) -> float:
        child = ("b = b'x' * (300 * 2**20)\n"  # written: 300 MiB resident
                 "del b\n"
                 + ("open('/proc/self/clear_refs', 'w').write('5')\n" if reset else ""))
        # Waited for by a small parent of its own, as bench_memory's children are: a child
        # spawned by vfork counts its parent's peak in its ru_maxrss, and pytest's is large.
        parent = ("import os, subprocess, sys\n"
                  f"child = subprocess.Popen([sys.executable, '-c', {child!r}])\n"
                  "_, status, usage = os.wait4(child.pid, 0)\n"
                  "assert os.waitstatus_to_exitcode(status) == 0\n"
                  "print(usage.ru_maxrss / 1024)\n")
        done = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True,
                              check=True)
        return float(done.stdout)

    assert waited_peak_mib(reset=False) > 300
    assert waited_peak_mib(reset=True) < 200


def test_the_retrained_night_gets_the_same_weights_under_another_version(tmp_path,
                                                                          monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "bench"))
    import bench_memory

    model = tmp_path / "model-default"
    model.mkdir()
    (model / "model_version").write_text("model-default-b3ee4c56e7\n", encoding="utf-8")
    (model / "heads.pt").write_bytes(b"weights")
    copy = bench_memory.retrained_model(model, tmp_path / "work")
    assert (copy / "model_version").read_text(encoding="utf-8").strip() \
        == "model-default-retrained-b3ee4c56e7"
    assert (copy / "heads.pt").read_bytes() == b"weights"
    assert (model / "model_version").read_text(encoding="utf-8").strip() \
        == "model-default-b3ee4c56e7"
    assert bench_memory.retrained_model(model, tmp_path / "work") == copy  # made once
