"""Report-level train/dev/test split that stays put as the archive grows.

A report's side is a function of (seed, report_id) alone: a hash, not a shuffle of the whole
list. Adding reports never moves an old one, so a report in yesterday's test split is never in
tomorrow's training split, and no report can be on two sides.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.atomic import atomic_path, write_text_atomic

SIDES = ("train", "dev", "test")
DEFAULT_RATIOS = (8, 1, 1)
_BUCKETS = 10_000


@dataclass(frozen=True)
class SplitEntry:
    report_id: str
    split: str


def _bucket(report_id: str, seed: int) -> int:
    digest = hashlib.sha256(f"{seed}\x00{report_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _BUCKETS


def assign_split(report_id: str, seed: int, ratios: Sequence[int] = DEFAULT_RATIOS) -> str:
    """"train", "dev" or "test" for this report, in proportion to `ratios` (default 8:1:1)."""
    if len(ratios) != len(SIDES) or any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ValueError(f"ratios must be three non-negative numbers, not all 0; got {ratios}")
    point = _bucket(report_id, seed) / _BUCKETS * sum(ratios)
    edge = 0.0
    for side, ratio in zip(SIDES, ratios, strict=True):
        edge += ratio
        if point < edge:
            return side
    return SIDES[-1]


def assign_splits(
    report_ids: Iterable[str], seed: int, ratios: Sequence[int] = DEFAULT_RATIOS
) -> list[SplitEntry]:
    """Entries sorted by report id (duplicates collapse: one report, one side)."""
    return [SplitEntry(rid, assign_split(rid, seed, ratios)) for rid in sorted(set(report_ids))]


def split_counts(entries: Iterable[SplitEntry]) -> dict[str, int]:
    counts = Counter(e.split for e in entries)
    return {side: counts.get(side, 0) for side in SIDES}


def write_split_file(
    report_ids: Iterable[str],
    path: str | Path,
    seed: int,
    ratios: Sequence[int] = DEFAULT_RATIOS,
) -> list[SplitEntry]:
    """Write `report_id,split` rows (CSV, or JSON when the path ends in .json); return them."""
    entries = assign_splits(report_ids, seed, ratios)
    target = Path(path)
    if target.suffix.lower() == ".json":
        rows = [{"report_id": e.report_id, "split": e.split} for e in entries]
        write_text_atomic(target, json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
    else:
        with atomic_path(target) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(("report_id", "split"))
            writer.writerows((e.report_id, e.split) for e in entries)
    return entries


def read_split_file(path: str | Path) -> dict[str, str]:
    """`{report_id: split}` from a split file written by `write_split_file`."""
    source = Path(path)
    if source.suffix.lower() == ".json":
        rows = json.loads(source.read_text(encoding="utf-8"))
    else:
        with source.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    result: dict[str, str] = {}
    for number, row in enumerate(rows, start=2):
        rid, side = row.get("report_id"), row.get("split")
        if not rid or side not in SIDES:
            raise ValueError(
                f"{source}: row {number}: expected report_id and split in {SIDES}, got {row}"
            )
        if result.get(rid, side) != side:
            raise ValueError(f"{source}: row {number}: report {rid!r} is on two sides")
        result[rid] = side
    return result
