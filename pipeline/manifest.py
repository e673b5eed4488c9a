"""Which reports have a current extraction, so nightly runs only extract what is new.

Keyed by (report_id, content sha256, model_version). A report is done when its *current*
extraction (its entry in the most recently published run that has one) is of this text by this
model: a changed text or a new model is extracted again, and so is a text that changed back to
an earlier version (the current one is the other version). The manifest is a SQLite file beside
the outputs (the only "manifest" of the project; the split ingest writes is the split file):
one transaction per shard, so a shard is either wholly recorded or not at all.

It doubles as the run's write-ahead log for crash safety. Before a shard's outputs are written,
`begin_shard` records it as pending; `commit_shard` records its reports and clears the pending
mark in one transaction, after the outputs are durable. A pending mark found at start-up means
the process died in between: the caller discards that shard's outputs and extracts it again.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ingest.document import ReportStatus

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
    committed INTEGER NOT NULL DEFAULT 0,
    seq INTEGER
);
CREATE TABLE IF NOT EXISTS pending (
    run_id TEXT NOT NULL,
    shard TEXT NOT NULL,
    PRIMARY KEY (run_id, shard)
);
"""


class ManifestError(RuntimeError):
    """The manifest could not be read or written; the message names the file and the cause."""


class RunIdCollision(ValueError):
    """A new run was started under the id of one the manifest already has."""


@dataclass(frozen=True)
class ManifestEntry:
    report_id: str
    sha256: str
    model_version: str
    status: ReportStatus
    run_id: str
    shard: str


@dataclass(frozen=True)
class RunRecord:
    """A run as first started: a restart keeps its date, so it lands in the same partition.
    `seq` orders published runs (None until published)."""

    run_id: str
    run_date: date
    model_version: str
    committed: bool
    seq: int | None = None


@dataclass(frozen=True)
class PendingShard:
    run_id: str
    shard: str


class Manifest:
    """The processed-reports record of one output folder. Use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we open transactions ourselves so a shard commits as one.
            self._db = sqlite3.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc) from exc
        with self._errors():
            self._db.execute("PRAGMA synchronous=FULL")
            # Shard tasks on threads or workers commit to the same file: wait for each other.
            self._db.execute("PRAGMA busy_timeout=60000")
            self._db.executescript(_SCHEMA)
            self._migrate()

    def _error(self, exc: BaseException) -> ManifestError:
        return ManifestError(f"{self.path}: the run's manifest cannot be written ({exc}); is "
                             "the output folder writable, with space left?")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction; on failure it is rolled back if SQLite has not already done so (a
        full disk aborts it, and a second ROLLBACK would hide the cause behind "cannot
        rollback - no transaction is active")."""
        with self._errors():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _sql(self, query: str, args: tuple = ()) -> sqlite3.Cursor:
        with self._errors():
            return self._db.execute(query, args)

    def _migrate(self) -> None:
        """Manifests written before runs had a publish order: published runs in rowid order."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(runs)")}
        if "seq" not in columns:
            self._db.execute("ALTER TABLE runs ADD COLUMN seq INTEGER")
            self._db.execute("UPDATE runs SET seq = rowid WHERE committed = 1")

    @classmethod
    def for_output(cls, out_dir: str | Path) -> Manifest:
        return cls(Path(out_dir) / MANIFEST_NAME)

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def start_run(self, run_id: str, run_date: date, model_version: str, *,
                  fresh: bool = False) -> RunRecord:
        """The run's record, created on its first start (a restart gets the first date).

        `fresh`: the id was made for a new run, so finding it already here means two runs
        were given one id; refused rather than mixing their outputs.
        """
        inserted = self._sql(
            "INSERT OR IGNORE INTO runs (run_id, run_date, model_version, committed) "
            "VALUES (?, ?, ?, 0)", (run_id, run_date.isoformat(), model_version)).rowcount
        if fresh and not inserted:
            raise RunIdCollision(f"{self.path}: run id {run_id!r} is already taken by another "
                                 "run; start again (a new id is made) or give another --run-id")
        record = self.run(run_id)
        assert record is not None
        return record

    def mark_committed(self, run_id: str, committed: bool = True) -> None:
        """Published (placed last in the publish order), or back to unpublished."""
        if committed:
            self._sql("UPDATE runs SET committed = 1, seq = (SELECT COALESCE(MAX(seq), 0) "
                             "+ 1 FROM runs) WHERE run_id = ?", (run_id,))
        else:
            self._sql("UPDATE runs SET committed = 0, seq = NULL WHERE run_id = ?",
                             (run_id,))

    def runs(self, *, committed: bool | None = None) -> list[RunRecord]:
        query = "SELECT * FROM runs"
        if committed is not None:
            query += f" WHERE committed = {int(committed)}"
        return [_record(row) for row in self._sql(query + " ORDER BY rowid")]

    def drop_run(self, run_id: str) -> None:
        """Forget an unpublished run entirely (its staging was discarded)."""
        with self._transaction():
            for table in ("processed", "pending", "runs"):
                self._db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))

    def forget_run(self, run_id: str, keep_shards: Iterable[str] = ()) -> int:
        """Drop the run's entries except those of `keep_shards` (its outputs still staged);
        returns how many were dropped. Used when a run is redone or its staging was lost."""
        keep = sorted(set(keep_shards))
        marks = ",".join("?" * len(keep))
        query = "DELETE FROM processed WHERE run_id = ?"
        if keep:
            query += f" AND shard NOT IN ({marks})"
        return self._sql(query, (run_id, *keep)).rowcount

    def is_done(self, report_id: str, sha256: str, model_version: str, run_id: str) -> bool:
        """True when this text by this model version is the report's current extraction.

        Counted: this run's own entries (a restart skips what its staged shards hold), and the
        entries of the latest published run that processed the report, except failures (which
        may have been transient). An older published run's entry does not count: a report
        whose text changed and then changed back is extracted again, or the newer version
        would stay current. Entries of a run that was never published do not count either:
        its outputs are not visible.
        """
        row = self._sql(
            "SELECT 1 FROM processed p JOIN runs r ON p.run_id = r.run_id "
            "WHERE p.report_id = ? AND p.sha256 = ? AND p.model_version = ? "
            "AND (p.run_id = ? OR (p.status != 'failed' AND r.committed = 1 AND r.seq = ("
            "  SELECT MAX(r2.seq) FROM processed p2 JOIN runs r2 ON p2.run_id = r2.run_id "
            "  WHERE p2.report_id = p.report_id AND r2.committed = 1))) LIMIT 1",
            (report_id, sha256, model_version, run_id),
        ).fetchone()
        return row is not None

    def run(self, run_id: str) -> RunRecord | None:
        row = self._sql("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else _record(row)

    def begin_shard(self, run_id: str, shard: str) -> None:
        self._sql("INSERT OR IGNORE INTO pending VALUES (?, ?)", (run_id, shard))

    def commit_shard(self, run_id: str, shard: str, entries: Iterable[ManifestEntry]) -> None:
        """Record a shard's reports as processed; call only once its outputs are durable."""
        rows = [(e.report_id, e.sha256, e.model_version, str(e.status), e.run_id, e.shard)
                for e in entries]
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO processed VALUES (?, ?, ?, ?, ?, ?)", rows)
            self._db.execute("DELETE FROM pending WHERE run_id = ? AND shard = ?",
                             (run_id, shard))

    def pending(self) -> list[PendingShard]:
        """Shards begun but never committed: a crashed run's partial outputs to discard."""
        rows = self._sql("SELECT run_id, shard FROM pending ORDER BY run_id, shard")
        return [PendingShard(*row) for row in rows]

    def clear_pending(self, pending: PendingShard) -> None:
        self._sql("DELETE FROM pending WHERE run_id = ? AND shard = ?",
                         (pending.run_id, pending.shard))

    def report_ids(self, run_id: str, status: str = "ok") -> set[str]:
        """The reports a run processed with `status` (the nightly queue's new reports)."""
        rows = self._db.execute("SELECT report_id FROM processed WHERE run_id = ? AND status = ?",
                                (run_id, status))
        return {row[0] for row in rows}

    def entries(self, model_version: str | None = None) -> list[ManifestEntry]:
        """All recorded entries (for tests and audits; not used on the hot path)."""
        query, args = "SELECT * FROM processed", ()
        if model_version is not None:
            query, args = query + " WHERE model_version = ?", (model_version,)
        return [ManifestEntry(r[0], r[1], r[2], ReportStatus(r[3]), r[4], r[5])
                for r in self._sql(query + " ORDER BY rowid", args)]


def _record(row: tuple) -> RunRecord:
    return RunRecord(row[0], date.fromisoformat(row[1]), row[2], bool(row[3]), row[4])
