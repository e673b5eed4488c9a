"""The embedded graph: the graph model in LadybugDB (a Kùzu fork; `import ladybug`).

A whole run is loaded with `COPY ... FROM (LOAD FROM $arrow RETURN *)` from the run's Parquet
tables (bulk, tens of times faster than row-wise writes); small incremental loads use the
`UNWIND $rows ... MERGE` statements shared with the Neo4j writer. Either way a report's earlier
findings and mentions are deleted first, so reloading a report replaces it.

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
from export.graph_model import DEFAULT_BATCH_SIZE, batches
from export.graph_tables import graph_tables
from export.parquet_sink import RunInfo, document_tables, read_run
from ingest.document import Document, ReportOutcome
from ingest.schema import Schema

logger = logging.getLogger(__name__)

# Nodes shared across reports (or whose ids may already exist) are upserted row-wise even in a
# bulk load: COPY refuses a key that is already there.
_UPSERTED = (gm.REPORT, gm.VESSEL, gm.SEGMENT)


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
        for statement in gm.ladybug_ddl():
            self._conn.execute(statement)

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

    def delete_reports(self, report_ids: Sequence[str]) -> None:
        for statement in gm.delete_report_statements():
            for batch in batches(list(report_ids), self.batch_size):
                self._execute(statement, {"report_ids": list(batch)})

    def merge_rows(self, graph: Mapping[str, pa.Table],
                   specs: Iterable[gm.NodeSpec | gm.RelSpec]) -> None:
        for spec in specs:
            name = spec.label if isinstance(spec, gm.NodeSpec) else spec.type
            statement = (gm.merge_node_statement(spec, gm.LADYBUG)
                         if isinstance(spec, gm.NodeSpec)
                         else gm.merge_rel_statement(spec, gm.LADYBUG))
            rows = graph[name].to_pylist()
            for batch in batches(rows, self.batch_size):
                self._execute(statement, {"rows": list(batch)})

    def _copy(self, name: str, table: pa.Table) -> None:
        if table.num_rows:
            # `name` is a label from graph_model, never data; the rows travel as a parameter.
            # One contiguous chunk: a run read from many shards arrives as many record batches,
            # some empty, and LadybugDB's Arrow scan silently drops rows after an empty batch.
            self._execute(f"COPY {name} FROM (LOAD FROM $arrow RETURN *)",
                          {"arrow": table.combine_chunks()})

    def load_graph(self, graph: Mapping[str, pa.Table], *, bulk: bool) -> dict[str, int]:
        """Replace the reports in `graph` (tables from `graph_tables`); returns rows per table."""
        report_ids = graph[gm.REPORT.label].column("id").to_pylist()
        self.delete_reports(report_ids)
        if not bulk:
            self.merge_rows(graph, (*gm.NODES, *gm.RELS))
        else:
            self.merge_rows(graph, _UPSERTED)
            for spec in gm.NODES:
                if spec not in _UPSERTED:
                    self._copy(spec.label, graph[spec.label])
            for rel in gm.RELS:
                self._copy(rel.type, graph[rel.type])
        counts = {name: t.num_rows for name, t in graph.items()}
        logger.info("%s: loaded %d reports (%s)", self.path, len(report_ids),
                    "bulk COPY" if bulk else "UNWIND MERGE")
        return counts

    def load_run(self, root: str | Path, run: RunInfo) -> dict[str, int]:
        """Load a committed run's Parquet datasets in bulk."""
        return self.load_graph(graph_tables(read_run(root, run), run.run_id), bulk=True)

    def load_documents(self, documents: Sequence[Document], schema: Schema, run: RunInfo,
                       outcomes: Sequence[ReportOutcome] | None = None) -> dict[str, int]:
        """Incremental load of a few documents (processed reports, unless outcomes say)."""
        if outcomes is None:
            outcomes = [ReportOutcome(d.doc_id, "ok", None, d.source) for d in documents]
        tables = document_tables(documents, outcomes, schema, run)
        return self.load_graph(graph_tables(tables, run.run_id), bulk=False)
