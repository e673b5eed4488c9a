"""The embedded graph: the graph model in LadybugDB (a Kùzu fork; `import ladybug`).

A whole run is loaded with `COPY ... FROM (LOAD FROM $arrow RETURN *)` from the run's Parquet
tables (bulk, tens of times faster than row-wise writes), in one transaction with the deletes
of the reports' earlier findings and mentions; small incremental loads run the plan shared with
the Neo4j writer (`export.graph_load`: one transaction per batch of reports). Either way
reloading a report replaces it, and no reader sees it half loaded.

The Arrow table is passed as a query parameter rather than a file path in the query text: no
data, not even a path, is spliced into a statement.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ladybug as lb
import pyarrow as pa

from export import graph_model as gm
from export.graph_load import (
    PER_REPORT_NODES,
    PER_REPORT_RELS,
    Statement,
    delete_statements,
    merge_load,
    merge_statements,
    tree_statements,
)
from export.graph_model import DEFAULT_BATCH_SIZE
from export.graph_tables import graph_tables
from export.parquet_sink import RunInfo, document_tables, read_run
from ingest.document import Document, ReportOutcome
from ingest.schema import Schema

logger = logging.getLogger(__name__)

# Report nodes may already exist (a report loaded before), and COPY refuses a key that is
# there: they are upserted row-wise even in a bulk load, as the tree is.
_UPSERTED = (gm.REPORT,)


class GraphSchemaError(RuntimeError):
    """The database was written by an older graph model; the message says how to rebuild it."""


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


class LadybugStore:
    """One embedded database folder; use as a context manager."""

    def __init__(self, path: str | Path, *, batch_size: int = DEFAULT_BATCH_SIZE,
                 read_only: bool = False) -> None:
        self.path = Path(path)
        self.batch_size = batch_size
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = lb.Database(str(self.path), read_only=read_only)
        self._conn = lb.Connection(self._db)
        if not read_only:
            self.ensure_schema()

    def __enter__(self) -> LadybugStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()
        self._db.close()

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
        crash)."""
        self._conn.execute("BEGIN TRANSACTION")
        try:
            for cypher, parameters in statements:
                self._execute(cypher, parameters)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def delete_reports(self, report_ids: Sequence[str]) -> None:
        self.transaction(delete_statements(report_ids, self.batch_size))

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
                    name = spec.label if isinstance(spec, gm.NodeSpec) else spec.type
                    statements += self._copy(name, graph[name])
            self.transaction(statements)
            counts = {name: t.num_rows for name, t in graph.items()}
        logger.info("%s: loaded %d reports (%s)", self.path, len(report_ids),
                    "bulk COPY" if bulk else "UNWIND MERGE")
        return counts

    def load_run(self, root: str | Path, run: RunInfo) -> dict[str, int]:
        """Load a committed run's Parquet datasets in bulk, in one transaction.

        Not shard by shard as Neo4jWriter.load_run: each COPY into a table that already holds
        rows leaves LadybugDB holding more memory (its own, not Arrow's: about 65 MiB per
        256-report shard, measured), so pieces cost more, not less: 4,000 gold reports in 16
        shards peaked at 1,412 MiB against 681 MiB loaded whole (1,000: 602 vs 469)."""
        return self.load_graph(graph_tables(read_run(root, run), run.run_id), bulk=True)

    def load_documents(self, documents: Sequence[Document], schema: Schema, run: RunInfo,
                       outcomes: Sequence[ReportOutcome] | None = None) -> dict[str, int]:
        """Incremental load of a few documents (processed reports, unless outcomes say)."""
        if outcomes is None:
            outcomes = [ReportOutcome(d.doc_id, "ok", None, d.source) for d in documents]
        tables = document_tables(documents, outcomes, schema, run)
        return self.load_graph(graph_tables(tables, run.run_id), bulk=False)
