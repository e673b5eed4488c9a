"""Peak RSS per step (pipeline.peak_memory): each phase's own peak, not the process's."""

from __future__ import annotations

import pytest

from pipeline.peak_memory import PhasePeaks, peak_mib, reset_peak

needs_reset = pytest.mark.skipif(not reset_peak(), reason="this kernel refuses to reset VmHWM "
                                 "through /proc/self/clear_refs")


@needs_reset
def test_a_phase_after_a_big_one_reports_its_own_smaller_peak():
    peaks = PhasePeaks()
    with peaks.phase("big"):
        block = bytearray(300 * 1024 * 1024)  # touched: zero-filled by bytearray
        block[::4096] = b"x" * len(block[::4096])
        del block
    with peaks.phase("small"):
        small = bytearray(10 * 1024 * 1024)
        del small
    (big_name, big), (small_name, small_peak) = peaks.phases
    assert (big_name, small_name) == ("big", "small")
    assert big - small_peak > 200  # the second phase does not inherit the first one's peak
    assert not peaks.cumulative
    assert "big" in peaks.format() and "each step's peak" in peaks.format()


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
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "bench"))
    import bench_memory

    peaks = PhasePeaks([("ingest", 577.2), ("extraction", 1878.4), ("graph load", 1118.0)])
    output = f"Run folder: x\n  memory      {peaks.format()}\n  queue       y\n"
    assert bench_memory.night_steps(output) == {"ingest": 577.0, "extraction": 1878.0,
                                                "graph load": 1118.0}
    assert bench_memory.night_steps("no memory line") == {}
