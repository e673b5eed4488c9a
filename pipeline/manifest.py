"""Which reports have a current extraction, so nightly runs only extract what is new.

Keyed by (report_id, content sha256, model_version). A report is done when its *current*
extraction (its entry in the most recently published run that has one) is of this text by this
model: a changed text or a new model is extracted again, and so is a text that changed back to
an earlier version (the current one is the other version). The manifest is a SQLite file beside
the outputs (the only "manifest" of the project; the split ingest writes is the split file):
one transaction per shard, so a shard is either wholly recorded or not at all.

It doubles as the run's write-ahead log for crash safety: `commit_shard` records a shard's
reports in one transaction, after its outputs are durable; a staged shard the manifest has no
entries for (the process died in between) is discarded and extracted again
(`pipeline.sinks.prepare_run`). `begin_shard` marks a shard pending before its outputs are
written; the sinks no longer need it (a shard without entries is redone either way), but a
pending mark found at start-up is still honoured.

Durability: what each commit costs and why that is enough. A commit that waits for the disk
(fsync, ~1-5 ms here) is paid only where a power cut could otherwise lose or corrupt something:

- On a local filesystem the manifest is in SQLite's WAL mode with `synchronous=NORMAL`: a
  commit is atomic and the file is never corrupted by a power cut, but the last commits may be
  rolled back by one (SQLite: "WAL mode is always consistent with synchronous=NORMAL, but WAL
  mode does lose durability"; an application crash or SIGKILL loses nothing). Commits are kept
  in order: what survives is every commit up to some point. For the run protocol that is
  enough: a shard's commit rolled back only means its reports have no entries, and a shard
  without entries is extracted again; its files are written atomically under a name derived
  from its reports, so redoing it replaces them.
- The commit that decides visibility is not the manifest's: a run is published by the Parquet
  sink's journaled commit (`export.parquet_sink.commit_run`). Before that journal is written
  the sink calls `make_durable`: the write-ahead log is fsync'd, so every shard's entries and
  the run's record are on disk before the run can become visible (else a published run whose
  entries a power cut rolled back would be extracted and published again the next night). The
  run's final mark (`mark_committed`) needs no wait: rolled back, the next start finds the run
  in `_published.json` and marks it again (`pipeline.sinks.recover`).
- SQLite checkpoints the log into the database and deletes it when the last connection closes
  (two syncs), and creates it again at the next write (two more): with one connection per step
  (the sinks open one per call, from any thread or worker) that costs what a rollback-journal
  commit costs. `hold` keeps one connection open from a run's start to its end, so the log
  lives as long as the run and its commits wait for nothing. The log is copied into the
  database when it reaches SQLite's default of 1,000 pages (4 MiB; three syncs) and at the
  run's end: while a run lasts, its folder holds up to that much more (a shard's commit writes
  a few pages per table: ~16 KiB for a shard of 3 reports, ~100 KiB for one of 150), plus the
  32 KiB `-shm`.
- WAL needs every process that opens the file on the same host with shared memory; it does not
  work over a network filesystem. The folder's filesystem type is looked up in /proc/self/mounts
  (`_local_filesystem`); on any other (NFS, SMB, FUSE, ...), or where it cannot be told, the
  manifest keeps the rollback journal with `synchronous=FULL`: every commit durable, as before.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ingest.document import ReportStatus

# A leading underscore keeps pyarrow.dataset and Spark from taking it for data.
MANIFEST_NAME = "_manifest.sqlite"

# Filesystems where SQLite's WAL works (one host, shared memory). Anything else, or a folder
# whose filesystem cannot be told, keeps the rollback journal.
_LOCAL_FILESYSTEMS = frozenset({
    "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "jfs", "reiserfs", "bcachefs",
    "tmpfs", "ramfs", "overlay",
})
MOUNTS = Path("/proc/self/mounts")

# One transaction (see Manifest.__init__), so a new manifest costs one commit, not four.
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
            # Shard tasks on threads or workers commit to the same file: wait for each other.
            self._db.execute("PRAGMA busy_timeout=60000")
            self.wal = _use_wal(self._db, self.path)
            self._db.execute(f"PRAGMA synchronous={'NORMAL' if self.wal else 'FULL'}")
            self._create_or_migrate()

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

    def _create_or_migrate(self) -> None:
        """The tables, in one transaction, where they are missing (a manifest that has them
        is only read here: no write lock, no commit); manifests written before runs had a
        publish order get the column, published runs in rowid order."""
        tables = {row[0] for row in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"processed", "runs", "pending"} <= tables:
            with self._transaction():
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self._db.execute(statement)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(runs)")}
        if "seq" not in columns:
            with self._transaction():
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

    def make_durable(self) -> None:
        """Every commit made so far, by any connection, on disk: the write-ahead log fsync'd
        (what `synchronous=FULL` does at each commit). A no-op with the rollback journal,
        whose commits are each durable."""
        if not self.wal:
            return
        with self._errors():
            self._db.execute("SELECT 1 FROM runs LIMIT 1").fetchall()  # the log is open
        log = self.path.with_name(self.path.name + "-wal")
        try:
            fd = os.open(log, os.O_RDONLY)
        except FileNotFoundError:
            return  # checkpointed into the database and removed: that was synced
        except OSError as exc:
            raise self._error(exc) from exc
        try:
            os.fsync(fd)
        except OSError as exc:
            raise self._error(exc) from exc
        finally:
            os.close(fd)

    def shards(self, run_id: str) -> set[str]:
        """The shards of a run whose reports are recorded."""
        rows = self._sql("SELECT DISTINCT shard FROM processed WHERE run_id = ?", (run_id,))
        return {row[0] for row in rows}

    def pending(self) -> list[PendingShard]:
        """Shards begun but never committed: a crashed run's partial outputs to discard."""
        rows = self._sql("SELECT run_id, shard FROM pending ORDER BY run_id, shard")
        return [PendingShard(*row) for row in rows]

    def clear_pending(self, pending: PendingShard) -> None:
        self._sql("DELETE FROM pending WHERE run_id = ? AND shard = ?",
                         (pending.run_id, pending.shard))

    def report_hashes(self, run_id: str, status: str = "ok") -> dict[str, str]:
        """The reports a run processed with `status`, each with the hash of the text it read
        (the nightly queue's new reports, checked against the archive as it is now)."""
        rows = self._db.execute("SELECT report_id, sha256 FROM processed "
                                "WHERE run_id = ? AND status = ?", (run_id, status))
        return {row[0]: row[1] for row in rows}

    def entries(self, model_version: str | None = None) -> list[ManifestEntry]:
        """All recorded entries (for tests and audits; not used on the hot path)."""
        query, args = "SELECT * FROM processed", ()
        if model_version is not None:
            query, args = query + " WHERE model_version = ?", (model_version,)
        return [ManifestEntry(r[0], r[1], r[2], ReportStatus(r[3]), r[4], r[5])
                for r in self._sql(query + " ORDER BY rowid", args)]


def filesystem_type(folder: str, mounts: str) -> str:
    """The type of the filesystem holding `folder` (an absolute path without links) by a
    mount table in /proc/self/mounts' format: that of the longest mount point holding it;
    "" when none does."""
    best, fstype = "", ""
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ").replace("\\011", "\t")
        inside = folder == point or folder.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):  # a later mount over the same point wins
            best, fstype = point, fields[2]
    return fstype


@functools.lru_cache(maxsize=64)
def _local_filesystem(folder: str) -> bool:
    """True when `folder` is on one of `_LOCAL_FILESYSTEMS`; False on any other, or when
    /proc/self/mounts cannot be read (not Linux)."""
    try:
        mounts = MOUNTS.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return filesystem_type(folder, mounts) in _LOCAL_FILESYSTEMS


def _use_wal(db: sqlite3.Connection, path: Path) -> bool:
    """WAL on a local filesystem, the rollback journal elsewhere; True when WAL is in use (a
    journal mode SQLite refuses leaves the one it has)."""
    wanted = "wal" if _local_filesystem(os.path.realpath(path.parent)) else "delete"
    mode = db.execute(f"PRAGMA journal_mode={wanted}").fetchone()[0]
    return str(mode).lower() == "wal"


# --- holding the manifest open for a run -----------------------------------------------------

_held: dict[Path, sqlite3.Connection] = {}
_held_lock = threading.Lock()


def hold(path: str | Path) -> None:
    """Keep the manifest at `path` open in this process until `release` (see the module's
    docstring: its write-ahead log then lasts the whole run). Holding it again replaces the
    connection held before (a run interrupted without `release`); with the rollback journal
    nothing is held."""
    path = Path(path)
    release(path)
    with Manifest(path) as probe:
        if not probe.wal:
            return
        # Opened before the probe closes, so the log is not checkpointed away in between;
        # SQLite opens the files at the first statement, and from then on the connection
        # counts (another connection's close is no longer the last one's).
        keeper = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            keeper.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            keeper.close()
            raise probe._error(exc) from exc
    with _held_lock:
        _held[path.absolute()] = keeper


def release(path: str | Path) -> None:
    """Close the connection `hold` keeps (none is fine): SQLite checkpoints the log into the
    database and removes it when this is the last connection."""
    with _held_lock:
        keeper = _held.pop(Path(path).absolute(), None)
    if keeper is not None:
        keeper.close()


def _record(row: tuple) -> RunRecord:
    return RunRecord(row[0], date.fromisoformat(row[1]), row[2], bool(row[3]), row[4])
