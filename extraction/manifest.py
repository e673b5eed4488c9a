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
    PRIMARY KEY (report_id, sha256, model_version)
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

    def is_done(self, report_id: str, sha256: str, model_version: str, run_id: str) -> bool:
        """True when this text was processed by this model version and need not be again.

        A report that failed in an earlier run is tried again (the failure may have been
        transient); one that failed in this same run (before a restart) is not, so a restarted
        run writes each report's outcome once.
        """
        row = self._db.execute(
            "SELECT status, run_id FROM processed "
            "WHERE report_id = ? AND sha256 = ? AND model_version = ?",
            (report_id, sha256, model_version),
        ).fetchone()
        return row is not None and (row[0] != "failed" or row[1] == run_id)

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
