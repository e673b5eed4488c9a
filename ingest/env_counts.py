"""Counts read from the environment (heap sizes, buffer pools): one parser, one error wording.

In `ingest`, the bottom package, because `extraction` (the allocator) and `export` (the graph's
buffer pool) both read such settings and neither may import the other.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def count_from_env(name: str, default: int, unit: str, zero_means: str,
                   environ: Mapping[str, str] | None = None) -> int:
    """$name as a count of `unit` (0 = `zero_means`), `default` when unset or blank; one error
    naming the variable for anything else."""
    raw = (os.environ if environ is None else environ).get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: give a number of {unit}, or 0 to keep "
                         f"{zero_means}") from None
    if value < 0:
        raise ValueError(f"{name}={raw!r} is negative; give a number of {unit}, or 0")
    return value
