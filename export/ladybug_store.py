"""The embedded graph: the graph model in LadybugDB (a Kùzu fork; `import ladybug`).

A committed run is loaded in bulk (tens of times faster than row-wise writes), in one
transaction with the deletes of the reports' earlier findings and mentions: its graph tables
are built shard by shard (`run_graph_pieces`: one shard's rows in memory at a time) into
Parquet files in a staging folder beside the database, then each table is read by one
`COPY ... FROM [files]` of all of them. Small incremental loads run the plan shared with the
Neo4j writer (`export.graph_load`: one transaction per batch of reports). Either way reloading
a report replaces it, and no reader sees it half loaded.

Memory (`bench/bench_memory.py`): LadybugDB's buffer pool is capped (`DEFAULT_BUFFER_POOL_MIB`,
raised for a run whose one transaction needs more, `pool_mib_for`, counting the reports it
replaces, to at most half of the machine's memory; or exactly $ANGIOKG_GRAPH_BUFFER_POOL_MIB);
uncapped it may take ~80% of the machine's memory. A load that needs more than the cap fails
with a message that says which setting to raise.
COPY from the staged files rather than from an Arrow table passed as a parameter: a whole
10,000-report run loaded from its Arrow tables peaked at 974 MiB (the run's tables in Python,
and LadybugDB's own copy of what it scans), staged at 577-580 MiB, as fast (1,000: 458 vs 346-351;
fresh processes, side by side); and one COPY per table rather than one per shard, since each
COPY into a table that already holds rows leaves LadybugDB holding more (about 65 MiB per
256-report shard: 3,009 MiB for 40 shards). What still grows with the run is LadybugDB's memory
for the transaction's uncommitted rows.

Query parameters carry every value; the only thing spliced into a statement is the path of a
staging file this module names itself (COPY takes no parameter for its source), refused if it
holds a quote or a backslash.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ladybug as lb
import pyarrow as pa
import pyarrow.parquet as pq

from export import graph_model as gm
from export.graph_load import (
    PER_REPORT_NODES,
    PER_REPORT_RELS,
    Statement,
    delete_statements,
    merge_load,
    merge_statements,
    name_of,
    tree_statements,
)
from export.graph_model import (
    BUFFER_POOL_ENV,
    DEFAULT_BATCH_SIZE,
    DEFAULT_BUFFER_POOL_MIB,
    batches,
)
from export.graph_tables import graph_tables, run_graph_pieces, tree_tables
from export.parquet_sink import (
    REPORTS,
    RunInfo,
    document_tables,
    partition_dir,
    run_report_ids,
)
from ingest.coronary import default_tree
from ingest.document import Document, ReportOutcome
from ingest.env_counts import count_from_env
from ingest.schema import Schema

logger = logging.getLogger(__name__)

# Report nodes may already exist (a report loaded before), and COPY refuses a key that is
# there: they are upserted row-wise even in a bulk load, as the tree is.
_UPSERTED = (gm.REPORT,)

_POOL_FULL = "buffer pool is full"


def buffer_pool_mib_from_env(environ: Mapping[str, str] | None = None) -> int | None:
    """$ANGIOKG_GRAPH_BUFFER_POOL_MIB (MiB; 0 = LadybugDB's own default, ~80% of memory);
    None when it is not set (the pool is then the store's to size)."""
    environ = os.environ if environ is None else environ
    if not environ.get(BUFFER_POOL_ENV, "").strip():
        return None
    return count_from_env(BUFFER_POOL_ENV, DEFAULT_BUFFER_POOL_MIB,
                          "MiB of the graph's buffer pool",
                          "LadybugDB's default (~80% of the machine's memory)", environ)


# What a run's one transaction needs of the pool, per 1,000 reports: 10,000 generated reports
# as the `default` model predicts them (241,171 entities) failed at 160 MiB and loaded at 192
# (2026-12-02), so ~19; a quarter more for reports richer than those.
POOL_MIB_PER_1000_REPORTS = 24
# A report the graph already holds costs more: the transaction also holds the deletes of its
# earlier findings and mentions. The same 10,000 reloaded over themselves (the night after a
# retrain re-extracts the whole archive under the new model) failed at 320 MiB and loaded at
# 336 (2026-12-02, 237,980 entities), so a reload sized for a first load failed: ~14 more per
# 1,000, and a quarter more again. Not more than needed: LadybugDB fills what pool it is given
# (the reload's peak RSS 918 MiB with 384, 1,078 with 512).
POOL_MIB_PER_1000_REPLACED = 18


def pool_mib_for(reports: int, memory_mib: int, replaced: int = 0) -> int:
    """The default pool for a run of `reports`, `replaced` of them already in the graph:
    DEFAULT_BUFFER_POOL_MIB, or what the run needs when more, but never above half of the
    machine's memory."""
    needed = -(-(reports * POOL_MIB_PER_1000_REPORTS + replaced * POOL_MIB_PER_1000_REPLACED)
               // 1000)
    return max(DEFAULT_BUFFER_POOL_MIB, min(needed, memory_mib // 2))


def memory_mib() -> int:
    """The machine's memory in MiB (0 where the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // (1024 * 1024)
    except (ValueError, OSError, AttributeError):
        return 0


class GraphBufferPoolError(RuntimeError):
    """A load needed more than the buffer pool's cap; the message says what to raise."""


class GraphSchemaError(RuntimeError):
    """The database was written by an older graph model; the message says how to rebuild it."""


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


class LadybugStore:
    """One embedded database folder; use as a context manager."""

    def __init__(self, path: str | Path, *, batch_size: int = DEFAULT_BATCH_SIZE,
                 read_only: bool = False, buffer_pool_mib: int | None = None) -> None:
        """buffer_pool_mib: LadybugDB's buffer pool cap (None: `buffer_pool_mib_from_env()`, and
        when that is not set either, DEFAULT_BUFFER_POOL_MIB grown to what a run needs; 0:
        LadybugDB's default, ~80% of the machine's memory)."""
        self.path = Path(path)
        self.batch_size = batch_size
        given = buffer_pool_mib if buffer_pool_mib is not None else buffer_pool_mib_from_env()
        self.buffer_pool_mib = DEFAULT_BUFFER_POOL_MIB if given is None else given
        if self.buffer_pool_mib < 0:
            raise ValueError(f"buffer_pool_mib={self.buffer_pool_mib}: give MiB, or 0")
        # A pool nobody chose grows to what a large run needs (`_fit_pool_to`); one given here
        # or in the environment is a cap, and a load that needs more fails naming it.
        self._pool_by_default = given is None
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._open(read_only)
        if not read_only:
            try:
                self.ensure_schema()
            except RuntimeError as error:
                self.close()
                self._raise_pool_error(error)
                raise

    def __enter__(self) -> LadybugStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()
        self._db.close()

    def _open(self, read_only: bool) -> None:
        self._db = lb.Database(str(self.path), read_only=read_only,
                               buffer_pool_size=self.buffer_pool_mib * 1024 * 1024)
        self._conn = lb.Connection(self._db)

    def _fit_pool_to(self, run: RunInfo, report_ids: Sequence[str]) -> None:
        """Reopen with a larger pool when the default one is too small for the run's reports
        in its one transaction (`pool_mib_for`, counting those the graph already holds); a
        pool that was given stays as it is."""
        if not self._pool_by_default:
            return
        replaced = self._reports_held(report_ids)
        needed = pool_mib_for(len(report_ids), memory_mib(), replaced)
        if needed <= self.buffer_pool_mib:
            return
        logger.info("%s: buffer pool %d -> %d MiB for run %s (%d reports, %d of them replacing "
                    "loaded ones; set %s to cap it)", self.path, self.buffer_pool_mib, needed,
                    run.run_id, len(report_ids), replaced, BUFFER_POOL_ENV)
        self.close()
        self.buffer_pool_mib = needed
        self._open(read_only=False)

    def ensure_schema(self) -> None:
        self._check_model()
        for statement in gm.ladybug_ddl():
            self._conn.execute(statement)

    def _check_model(self) -> None:
        """Refuse a database of the earlier graph model (spelling Vessel nodes, Findings without
        artery/segments): loading into it would fail on the first statement, less clearly."""
        tables = {row[1] for row in self.query("CALL show_tables() RETURN *").rows}
        stale = "Vessel" in tables
        if gm.FINDING.label in tables:
            info = self.query(f"CALL table_info('{gm.FINDING.label}') RETURN *").rows
            have = {row[1] for row in info}
            stale = stale or any(p.name not in have for p in gm.FINDING.props)
        if stale:
            raise GraphSchemaError(
                f"{self.path} holds a graph of an earlier model (Vessel nodes or Findings "
                "without the coronary-tree properties); rebuild it: move the folder aside, "
                "then `angiokg load-graph DATA_ROOT --db PATH` (or, for a nightly run folder, "
                "also delete state/graph_loaded.json so export_flow loads every run again)")

    def query(self, cypher: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        result = self._conn.execute(cypher, dict(parameters or {}))
        columns = tuple(result.get_column_names())
        rows = []
        while result.has_next():
            rows.append(tuple(result.get_next()))
        return QueryResult(columns, tuple(rows))

    def _execute(self, cypher: str, parameters: Mapping[str, Any]) -> None:
        self._conn.execute(cypher, dict(parameters))

    # --- loading -------------------------------------------------------------------------

    def transaction(self, statements: Iterable[Statement]) -> None:
        """All the statements or none (LadybugDB's WAL undoes an uncommitted one after a
        crash). The error raised is the first one: a statement's, not the ROLLBACK's (after
        some errors LadybugDB has already ended the transaction and refuses the ROLLBACK)."""
        self._conn.execute("BEGIN TRANSACTION")
        try:
            for cypher, parameters in statements:
                self._execute(cypher, parameters)
        except BaseException as error:
            try:
                self._conn.execute("ROLLBACK")
            except RuntimeError as rollback_error:
                logger.debug("%s: ROLLBACK after %r: %s", self.path, error, rollback_error)
            self._raise_pool_error(error)
            raise
        try:
            self._conn.execute("COMMIT")
        except RuntimeError as error:
            self._raise_pool_error(error)
            raise

    def _raise_pool_error(self, error: BaseException) -> None:
        """A full buffer pool as what to do about it (LadybugDB's message names no setting)."""
        if isinstance(error, RuntimeError) and _POOL_FULL in str(error).lower():
            cap = f"{self.buffer_pool_mib} MiB" if self.buffer_pool_mib else "its default"
            raise GraphBufferPoolError(
                f"{self.path}: the load needs more memory than LadybugDB's buffer pool "
                f"({cap}) holds; set {BUFFER_POOL_ENV} to a larger size in MiB (for "
                f"`angiokg load-graph`: --buffer-pool-mib), or 0 for LadybugDB's default "
                f"(~80% of the machine's memory), and load again. LadybugDB said: "
                f"{' '.join(str(error).split())}") from error

    def delete_reports(self, report_ids: Sequence[str]) -> None:
        self.transaction(delete_statements(report_ids, self.batch_size))

    def _reports_held(self, report_ids: Sequence[str]) -> int:
        """How many of `report_ids` the graph already holds."""
        held = 0
        for batch in batches(report_ids, self.batch_size):
            held += self.query("UNWIND $ids AS id MATCH (r:Report {id: id}) RETURN count(r)",
                               {"ids": list(batch)}).rows[0][0]
        return held

    def report_ids_of_run(self, run_id: str) -> list[str]:
        """The reports a load of `run_id` wrote (export.graph_sync: a redone run's)."""
        return [row[0] for row in self.query(
            "MATCH (r:Report) WHERE r.run_id = $run RETURN r.id", {"run": run_id}).rows]

    @staticmethod
    def _copy(name: str, table: pa.Table) -> list[Statement]:
        if not table.num_rows:
            return []
        # `name` is a label from graph_model, never data; the rows travel as a parameter.
        # One contiguous chunk: a run read from many shards arrives as many record batches,
        # some empty, and LadybugDB's Arrow scan silently drops rows after an empty batch.
        return [(f"COPY {name} FROM (LOAD FROM $arrow RETURN *)",
                 {"arrow": table.combine_chunks()})]

    def load_graph(self, graph: Mapping[str, pa.Table], *, bulk: bool) -> dict[str, int]:
        """Replace the reports in `graph` (tables from `graph_tables`); returns rows per table.

        bulk: the whole of `graph` in one transaction, its per-report tables by COPY; else
        UNWIND ... MERGE, one transaction per batch of reports."""
        report_ids = graph[gm.REPORT.label].column("id").to_pylist()
        if not bulk:
            counts = merge_load(self, graph, gm.LADYBUG)
        else:
            statements = (tree_statements(graph, gm.LADYBUG, self.batch_size)
                          + delete_statements(report_ids, self.batch_size)
                          + merge_statements(graph, _UPSERTED, gm.LADYBUG, self.batch_size))
            for spec in (*PER_REPORT_NODES, *PER_REPORT_RELS):
                if spec not in _UPSERTED:
                    name = name_of(spec)
                    statements += self._copy(name, graph[name])
            self.transaction(statements)
            counts = {name: t.num_rows for name, t in graph.items()}
        logger.info("%s: loaded %d reports (%s)", self.path, len(report_ids),
                    "bulk COPY" if bulk else "UNWIND MERGE")
        return counts

    def load_run(self, root: str | Path, run: RunInfo) -> dict[str, int]:
        """Load a committed run's Parquet datasets in bulk, in one transaction; returns rows per
        table. Python holds one shard's rows at a time (staged to Parquet files), LadybugDB
        reads each table with one COPY of all the staged files."""
        self._remove_stale_staging()
        self._fit_pool_to(run, run_report_ids(root, run)
                          if partition_dir(root, REPORTS, run).is_dir() else [])
        staging = Path(tempfile.mkdtemp(prefix=self._staging_prefix, dir=self.path.parent))
        try:
            tree = tree_tables(default_tree())
            counts = {name: t.num_rows for name, t in tree.items()}
            self.transaction(self._staged_statements(root, run, tree, staging, counts))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        logger.info("%s: loaded run %s, %d reports (bulk COPY of staged files)", self.path,
                    run.run_id, counts.get(gm.REPORT.label, 0))
        return counts

    def _staged_statements(self, root: str | Path, run: RunInfo, tree: Mapping[str, pa.Table],
                           staging: Path, counts: dict[str, int]) -> Iterator[Statement]:
        """The run's statements, made as the transaction takes them: the tree; per shard the
        deletes of its reports' earlier findings and the upsert of its Report nodes, its other
        tables written to `staging`; then one COPY per table of all its staged files."""
        yield from tree_statements(tree, gm.LADYBUG, self.batch_size)
        files: dict[str, list[Path]] = {}
        for shard, graph in enumerate(run_graph_pieces(root, run)):
            yield from delete_statements(graph[gm.REPORT.label].column("id").to_pylist(),
                                         self.batch_size)
            yield from merge_statements(graph, _UPSERTED, gm.LADYBUG, self.batch_size)
            for spec in (*PER_REPORT_NODES, *PER_REPORT_RELS):
                name = name_of(spec)
                counts[name] = counts.get(name, 0) + graph[name].num_rows
                if spec in _UPSERTED or not graph[name].num_rows:
                    continue
                file = staging / f"{name}-{shard:05d}.parquet"
                pq.write_table(graph[name], file)
                files.setdefault(name, []).append(file)
        for name, paths in files.items():
            yield self._copy_files(name, paths)

    @staticmethod
    def _copy_files(name: str, paths: Sequence[Path]) -> Statement:
        # COPY takes no parameter for a file source, so the paths (ours, made by mkdtemp under
        # the database's folder) are spliced in; refuse what could end the string literal.
        for path in paths:
            if "'" in str(path) or "\\" in str(path):
                raise ValueError(f"{path}: the graph's folder holds a quote or a backslash, "
                                 "which LadybugDB's COPY cannot be given safely; put the graph "
                                 "in a folder without them")
        listed = ", ".join(f"'{path}'" for path in paths)
        return f"COPY {name} FROM [{listed}]", {}

    def _remove_stale_staging(self) -> None:
        """Staging folders a killed load left (LadybugDB lets one writer open the database, so
        none belongs to a load running now)."""
        for folder in self.path.parent.glob(self._staging_prefix + "*"):
            shutil.rmtree(folder, ignore_errors=True)

    @property
    def _staging_prefix(self) -> str:
        return f".{self.path.name}.staging-"

    def load_documents(self, documents: Sequence[Document], schema: Schema, run: RunInfo,
                       outcomes: Sequence[ReportOutcome] | None = None) -> dict[str, int]:
        """Incremental load of a few documents (processed reports, unless outcomes say)."""
        if outcomes is None:
            outcomes = [ReportOutcome(d.doc_id, "ok", None, d.source) for d in documents]
        tables = document_tables(documents, outcomes, schema, run)
        return self.load_graph(graph_tables(tables, run.run_id), bulk=False)
