"""What the benchmarks share: the machine's description, interleaved timing, Markdown tables.

Scripts in bench/ run as `python bench/<script>.py`, so this folder is on sys.path and they
`import common`; importing it also puts the repository root on sys.path for the project's
packages and imports `extraction` (which sets torch's OpenMP wait policy; import common before
torch).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import extraction  # noqa: E402, F401  before any torch: its OpenMP wait policy, as angiokg runs


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_lines(device: object) -> list[str]:
    """Date, CPU model, cores, torch version and threads, and the accelerator if one is used."""
    import torch

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        f"date: {dt.datetime.now().isoformat(timespec='seconds')}",
        f"machine: {cpu_model()}; {os.cpu_count()} cores ({usable} usable); "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}",
    ]
    device = torch.device(device)
    if device.type == "cuda":
        lines.append(f"device: {device} = {torch.cuda.get_device_name(device)}")
    else:
        lines.append(f"device: {device}")
    return lines


def sync(device: object) -> None:
    """Wait for queued GPU work, so a wall-clock reading covers it."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(
    jobs: Mapping[str, Callable[[], object]], rounds: Mapping[str, int], device: object = "cpu",
    warm_up: bool = True,
) -> dict[str, list[float]]:
    """Wall times of each job, `rounds[name]` times; the jobs take turns each round so that load
    from other processes on a shared machine falls on all of them alike. One untimed warm-up
    call each first (unless `warm_up` is False)."""
    if warm_up:
        for fn in jobs.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for r in range(max(rounds.values())):
        for name, fn in jobs.items():
            if r >= rounds[name]:
                continue
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def medians(times: Mapping[str, Sequence[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in times.items()}


def bests(times: Mapping[str, Sequence[float]]) -> dict[str, float]:
    return {name: min(values) for name, values in times.items()}


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(who).ru_maxrss / 1024


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub Markdown table; a column of numbers ("-" for none) is right-aligned."""
    def numeric(column: int) -> bool:
        cells = [str(row[column]) for row in rows if str(row[column]) != "-"]
        return bool(cells) and all(_looks_numeric(c) for c in cells)

    align = ["---:" if numeric(c) else ":---" for c in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"
              for row in rows]
    return "\n".join(lines)


def _looks_numeric(text: str) -> bool:
    try:
        float(text.rstrip("x%").replace(",", ""))
    except ValueError:
        return False
    return True
