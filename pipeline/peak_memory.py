"""Peak resident memory of this process, phase by phase (Linux).

A night's steps need different memory (the extraction its model and batches, the embedded
graph's load its buffer pool), and the process's one peak does not say which step set it.
`/proc/self/status`'s VmHWM is the peak; writing `5` to `/proc/self/clear_refs` resets it to
the current size (Linux 4.0+), so each phase's VmHWM is that phase's own peak. Where the reset
is refused or there is no /proc, a phase's figure is the peak so far, and `PhasePeaks.cumulative`
says so. Threads share the process's figure; work done in other processes (a Dask worker, the
GPU pool's training) is not in it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
RESET_PEAK = "5"


def peak_mib(status: Path = STATUS) -> float | None:
    """VmHWM in MiB; None without /proc."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def reset_peak(clear_refs: Path = CLEAR_REFS) -> bool:
    """Start a new peak from the current size; False where the kernel refuses."""
    try:
        clear_refs.write_text(RESET_PEAK)
    except OSError:
        return False
    return True


@dataclass
class PhasePeaks:
    """(phase, peak MiB) in the order the phases ran. The two paths are the kernel's (tests
    point them elsewhere)."""

    phases: list[tuple[str, float]] = field(default_factory=list)
    cumulative: bool = False
    status: Path = STATUS
    clear_refs: Path = CLEAR_REFS

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if not reset_peak(self.clear_refs):
            self.cumulative = True
        try:
            yield
        finally:
            peak = peak_mib(self.status)
            if peak is not None:
                self.phases.append((name, peak))

    def format(self) -> str:
        if not self.phases:
            return "not measured (no /proc/self/status)"
        shown = ", ".join(f"{name} {peak:,.0f}" for name, peak in self.phases)
        kind = "peak so far after each step (the peak cannot be reset here)" if self.cumulative \
            else "each step's peak"
        return f"{shown} MiB ({kind}; this process only)"
