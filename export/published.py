"""Which runs are published in a Parquet root, in the order they were published: the one place
that answers "which runs are there" (the graph loader, `angiokg load-graph --run`, the current
view and the run protocol all ask here).

`ROOT/_published.json` lists the runs; `export.parquet_sink.commit_run` adds a run to it once
every dataset's partition of the run is in place, so a run listed here is there whole. A run
published again (its id redone) moves to the end. The leading underscore keeps dataset readers
from taking the file for data.

    {"runs": [{"run_id": "...", "run_date": "2026-12-01", "model_version": "...",
               "publication": 7, "stamp": "9f2c01ab"}, ...]}

`publication` counts publications in this root (never reused), so a later one is always larger;
`stamp` is random, made with the entry. Together with the run id they name what was published
(`Publication.publish_id`): a run redone under its id is a new publication with a new
`publish_id`, so the graph loader (`flows.export_flow`, whose ledger keeps `publish_id`s) loads
every publication once, a redone run included. The stamp still tells a republication apart if
this file was deleted and rebuilt, restarting the numbers.
A root written before this list existed has none: its runs are found from the partition folders,
oldest first by (date, id), as they were then, leaving out a run whose commit is in progress.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from ingest.atomic import write_json_atomic

PUBLISHED_FILE = "_published.json"
# Where export.parquet_sink stages runs, and the journal of a commit in progress.
STAGING = "_staging"
COMMIT_JOURNAL = "COMMIT"
# Any dataset would do for the folder fallback: every published run has a partition in each.
_INDEX_DATASET = "reports"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_name(what: str, value: str) -> None:
    if not _SAFE_NAME.match(value):
        raise ValueError(
            f"{what} {value!r} cannot name a folder: use letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (at most 128 characters)"
        )


@dataclass(frozen=True)
class RunInfo:
    """The identity of one run, the one type every room uses for it: its id names the
    partition, together with its date; `model_version` is what extracted it (None when only
    the folders are known)."""

    run_id: str
    run_date: dt.date
    model_version: str | None = None

    def __post_init__(self) -> None:
        check_name("run_id", self.run_id)


@dataclass(frozen=True)
class Publication:
    run: RunInfo
    publication: int
    stamp: str = ""  # random, per entry; "" for an entry written before stamps existed

    @property
    def publish_id(self) -> str:
        """This publication of the run, and no other (`run-x#7-9f2c01ab`; a run id has no
        `#`)."""
        return f"{self.run.run_id}#{self.publication}" + (f"-{self.stamp}" if self.stamp else "")


def publications(root: str | Path) -> list[Publication]:
    """Every published run, in publish order."""
    path = Path(root) / PUBLISHED_FILE
    if not path.exists():
        return [Publication(run, i) for i, run in enumerate(_runs_from_folders(Path(root)), 1)]
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["runs"]
        return [Publication(RunInfo(e["run_id"], dt.date.fromisoformat(e["run_date"]),
                                    e.get("model_version")), int(e["publication"]),
                            str(e.get("stamp", "")))
                for e in entries]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a list of published runs ({exc}); it is rebuilt from the "
                         "partition folders if you delete it") from exc


def published_runs(root: str | Path) -> list[RunInfo]:
    """Every published run, oldest publication first."""
    return [p.run for p in publications(root)]


def record_published(root: str | Path, run: RunInfo) -> Publication:
    """Add `run` at the end of the list (moving it there when it was published before)."""
    earlier = publications(root)
    kept = [p for p in earlier if p.run.run_id != run.run_id]
    # The largest of all, the run's own earlier entry included: a redone run that was last
    # got its old number again, and the current view, stamped with it, was not rewritten.
    mine = Publication(run, max((p.publication for p in earlier), default=0) + 1,
                       secrets.token_hex(4))
    write_json_atomic(Path(root) / PUBLISHED_FILE, {"runs": [
        {"run_id": p.run.run_id, "run_date": p.run.run_date.isoformat(),
         "model_version": p.run.model_version, "publication": p.publication,
         **({"stamp": p.stamp} if p.stamp else {})}
        for p in [*kept, mine]]})
    return mine


def is_published(root: str | Path, run_id: str) -> bool:
    return any(p.run.run_id == run_id for p in publications(root))


def find_run(root: str | Path, run_id: str) -> RunInfo:
    """The published run with this id."""
    check_name("run_id", run_id)
    for run in published_runs(root):
        if run.run_id == run_id:
            return run
    raise FileNotFoundError(f"{Path(root)}: no published run {run_id!r}")


def latest_run(root: str | Path) -> RunInfo:
    """The run published last."""
    runs = published_runs(root)
    if not runs:
        raise FileNotFoundError(f"{Path(root)}: no published run")
    return runs[-1]


def _runs_from_folders(root: Path) -> list[RunInfo]:
    runs = []
    for date_dir in sorted((root / _INDEX_DATASET).glob("run_date=*")):
        for run_dir in sorted(date_dir.glob("run_id=*")):
            if (root / STAGING / run_dir.name / COMMIT_JOURNAL).exists():
                continue  # its partitions are being put in place: not published yet
            runs.append(RunInfo(run_dir.name.removeprefix("run_id="),
                                dt.date.fromisoformat(date_dir.name.removeprefix("run_date="))))
    return sorted(runs, key=lambda r: (r.run_date, r.run_id))
