"""Which reports a model version has already processed, so nightly runs only extract what is new.

Keyed by (report_id, content sha256, model_version): a changed text or a new model is extracted
again, an unchanged report with the same model is skipped. The manifest is a SQLite file beside
the outputs: one transaction per shard, so a shard is either wholly recorded or not at all.

It doubles as the run's write-ahead log for crash safety. Before a shard's outputs are written,
`begin_shard` records it as pending; `commit_shard` records its reports and clears the pending
mark in one transaction, after the outputs are durable. A pending mark found at start-up means
the process died in between: the caller discards that shard's outputs and extracts it again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# A leading underscore keeps pyarrow.dataset and Spark from taking it for data.
MANIFEST_NAME = "_manifest.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS processed (
    report_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    model_version TEXT NOT NULL,
    status TEXT NOT NULL,
    run_id TEXT NOT NULL,
    shard TEXT NOT NULL,
    PRIMARY KEY (report_id, sha256, model_version, run_id)
);
CREATE INDEX IF NOT EXISTS processed_key ON processed (report_id, sha256, model_version);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    run_date TEXT NOT NULL,
    model_version TEXT NOT NULL,
    committed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS pending (
    run_id TEXT NOT NULL,
    shard TEXT NOT NULL,
    PRIMARY KEY (run_id, shard)
);
"""


@dataclass(frozen=True)
class ManifestEntry:
    report_id: str
    sha256: str
    model_version: str
    status: str
    run_id: str
    shard: str


@dataclass(frozen=True)
class RunRecord:
    """A run as first started: a restart keeps its date, so it lands in the same partition."""

    run_id: str
    run_date: str
    model_version: str
    committed: bool


@dataclass(frozen=True)
class PendingShard:
    run_id: str
    shard: str


class Manifest:
    """The processed-reports record of one output folder. Use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we open transactions ourselves so a shard commits as one.
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    @classmethod
    def for_output(cls, out_dir: str | Path) -> Manifest:
        return cls(Path(out_dir) / MANIFEST_NAME)

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def start_run(self, run_id: str, run_date: str, model_version: str) -> RunRecord:
        """The run's record, created on its first start (a restart gets the first date)."""
        self._db.execute("INSERT OR IGNORE INTO runs VALUES (?, ?, ?, 0)",
                         (run_id, run_date, model_version))
        record = self.run(run_id)
        assert record is not None
        return record

    def mark_committed(self, run_id: str, committed: bool = True) -> None:
        self._db.execute("UPDATE runs SET committed = ? WHERE run_id = ?",
                         (int(committed), run_id))

    def forget_run(self, run_id: str, keep_shards: Iterable[str] = ()) -> int:
        """Drop the run's entries except those of `keep_shards` (its outputs still staged);
        returns how many were dropped. Used when a run is redone or its staging was lost."""
        keep = sorted(set(keep_shards))
        marks = ",".join("?" * len(keep))
        query = "DELETE FROM processed WHERE run_id = ?"
        if keep:
            query += f" AND shard NOT IN ({marks})"
        return self._db.execute(query, (run_id, *keep)).rowcount

    def is_done(self, report_id: str, sha256: str, model_version: str, run_id: str) -> bool:
        """True when this text was processed by this model version and need not be again.

        Counted: this run's own entries (a restart skips what its staged shards hold), and the
        entries of published runs except failures (which may have been transient). Entries of
        a run that crashed and was never published do not count: its outputs are not visible.
        """
        row = self._db.execute(
            "SELECT 1 FROM processed p JOIN runs r ON p.run_id = r.run_id "
            "WHERE p.report_id = ? AND p.sha256 = ? AND p.model_version = ? "
            "AND (p.run_id = ? OR (r.committed = 1 AND p.status != 'failed')) LIMIT 1",
            (report_id, sha256, model_version, run_id),
        ).fetchone()
        return row is not None

    def run(self, run_id: str) -> RunRecord | None:
        row = self._db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else RunRecord(row[0], row[1], row[2], bool(row[3]))

    def begin_shard(self, run_id: str, shard: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO pending VALUES (?, ?)", (run_id, shard))

    def commit_shard(self, run_id: str, shard: str, entries: Iterable[ManifestEntry]) -> None:
        """Record a shard's reports as processed; call only once its outputs are durable."""
        rows = [(e.report_id, e.sha256, e.model_version, e.status, e.run_id, e.shard)
                for e in entries]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT OR REPLACE INTO processed VALUES (?, ?, ?, ?, ?, ?)", rows)
            self._db.execute("DELETE FROM pending WHERE run_id = ? AND shard = ?",
                             (run_id, shard))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def pending(self) -> list[PendingShard]:
        """Shards begun but never committed: a crashed run's partial outputs to discard."""
        rows = self._db.execute("SELECT run_id, shard FROM pending ORDER BY run_id, shard")
        return [PendingShard(*row) for row in rows]

    def clear_pending(self, pending: PendingShard) -> None:
        self._db.execute("DELETE FROM pending WHERE run_id = ? AND shard = ?",
                         (pending.run_id, pending.shard))

    def entries(self, model_version: str | None = None) -> list[ManifestEntry]:
        """All recorded entries (for tests and audits; not used on the hot path)."""
        query, args = "SELECT * FROM processed", ()
        if model_version is not None:
            query, args = query + " WHERE model_version = ?", (model_version,)
        return [ManifestEntry(*row) for row in self._db.execute(query + " ORDER BY rowid", args)]
