"""How a graph store loads the graph tables: the plan both stores run, one transaction per batch
of reports.

A load is a sequence of transactions, each a list of `(statement, parameters)`:

1. the coronary tree (Artery, Segment, PART_OF), merged: the same for every report;
2. per batch of whole reports (as many as fit in `batch_size` per-report rows, at least one):
   delete what an earlier load wrote for them (Findings and Mentions, with their edges), then
   merge their Report, Finding and Mention nodes and their edges.

A report is deleted and reloaded in the same transaction, so a reader never sees it without its
findings, and a load that fails midway leaves each report either as it was or fully replaced.
The stores differ only in how they run a transaction (`GraphWriter.transaction`) and, for
LadybugDB's bulk path, in using COPY instead of MERGE (`export.ladybug_store`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import pyarrow as pa

from export import graph_model as gm
from export.graph_model import batches

Statement = tuple[str, Mapping[str, Any]]


class GraphWriter(Protocol):
    batch_size: int

    def transaction(self, statements: Iterable[Statement]) -> None:
        """Run the statements in one transaction: all of them or none."""


def name_of(spec: gm.NodeSpec | gm.RelSpec) -> str:
    return spec.label if isinstance(spec, gm.NodeSpec) else spec.type


def merge_statements(graph: Mapping[str, pa.Table], specs: Iterable[gm.NodeSpec | gm.RelSpec],
                     dialect: str, batch_size: int) -> list[Statement]:
    """UNWIND ... MERGE of each spec's rows, `batch_size` rows per statement."""
    statements: list[Statement] = []
    for spec in specs:
        statement = (gm.merge_node_statement(spec, dialect) if isinstance(spec, gm.NodeSpec)
                     else gm.merge_rel_statement(spec, dialect))
        for batch in batches(graph[name_of(spec)].to_pylist(), batch_size):
            statements.append((statement, {"rows": list(batch)}))
    return statements


def delete_statements(report_ids: Sequence[str], batch_size: int) -> list[Statement]:
    return [(statement, {"report_ids": list(batch)})
            for statement in gm.delete_report_statements()
            for batch in batches(list(report_ids), batch_size)]


def tree_statements(graph: Mapping[str, pa.Table], dialect: str, batch_size: int
                    ) -> list[Statement]:
    return merge_statements(graph, (*gm.TREE_NODES, *gm.TREE_RELS), dialect, batch_size)


PER_REPORT_RELS = tuple(r for r in gm.RELS if r not in gm.TREE_RELS)
PER_REPORT_NODES = tuple(n for n in gm.NODES if n not in gm.TREE_NODES)


def report_statements(chunk: Mapping[str, pa.Table], dialect: str, batch_size: int
                      ) -> list[Statement]:
    """Replace the reports of `chunk`: delete their earlier findings and mentions, merge anew."""
    report_ids = chunk[gm.REPORT.label].column(gm.REPORT.key).to_pylist()
    return (delete_statements(report_ids, batch_size)
            + merge_statements(chunk, (*PER_REPORT_NODES, *PER_REPORT_RELS), dialect,
                               batch_size))


def _owners(graph: Mapping[str, pa.Table]) -> dict[str, list[str]]:
    """The report each row of every per-report table belongs to."""
    owner = {gm.REPORT.label: graph[gm.REPORT.label].column("id").to_pylist()}
    for spec in gm.PER_REPORT:
        owner[spec.label] = graph[spec.label].column("report_id").to_pylist()
    by_key = {spec.label: dict(zip(graph[spec.label].column(spec.key).to_pylist(),
                                   owner[spec.label], strict=True))
              for spec in (gm.REPORT, *gm.PER_REPORT)}
    for rel in PER_REPORT_RELS:
        keys = by_key[rel.start.label]
        owner[rel.type] = [keys.get(src) for src in graph[rel.type].column("src").to_pylist()]
    return owner


def report_chunks(graph: Mapping[str, pa.Table], max_rows: int
                  ) -> Iterator[dict[str, pa.Table]]:
    """The graph's per-report tables in batches of whole reports, each holding at most
    `max_rows` Finding and Mention rows (a report larger than that is a batch of its own)."""
    owner = _owners(graph)
    sizes: dict[str | None, int] = dict.fromkeys(owner[gm.REPORT.label], 0)
    for spec in gm.PER_REPORT:
        for report_id in owner[spec.label]:
            sizes[report_id] = sizes.get(report_id, 0) + 1
    chunk_of: dict[str | None, int] = {}
    chunk, rows = 0, 0
    for report_id in owner[gm.REPORT.label]:
        if rows and rows + sizes[report_id] > max_rows:
            chunk, rows = chunk + 1, 0
        chunk_of[report_id] = chunk
        rows += sizes[report_id]
    orphans = {r for name, ids in owner.items() for r in ids if r not in chunk_of}
    if orphans:
        raise ValueError(f"graph rows of reports {sorted(map(str, orphans))[:5]} have no Report "
                         "row; build the tables with graph_tables() from one run's datasets")
    rows_of: dict[str, list[list[int]]] = {
        name: [[] for _ in range(chunk + 1)] for name in owner}
    for name, ids in owner.items():
        for row, report_id in enumerate(ids):
            rows_of[name][chunk_of[report_id]].append(row)
    if not owner[gm.REPORT.label]:
        return
    for k in range(chunk + 1):
        yield {name: graph[name].take(pa.array(rows_of[name][k], pa.int64())) for name in owner}


def merge_load(writer: GraphWriter, graph: Mapping[str, pa.Table], dialect: str
               ) -> dict[str, int]:
    """Load `graph` with UNWIND ... MERGE: the tree, then one transaction per report batch."""
    writer.transaction(tree_statements(graph, dialect, writer.batch_size))
    for chunk in report_chunks(graph, writer.batch_size):
        writer.transaction(report_statements(chunk, dialect, writer.batch_size))
    return {name: t.num_rows for name, t in graph.items()}


def add_counts(total: dict[str, int], piece: Mapping[str, int]) -> None:
    """Add one piece's rows per table to a run's `total`: per-report tables sum up; the tree,
    which every piece merges whole, counts once."""
    tree = {name_of(spec) for spec in (*gm.TREE_NODES, *gm.TREE_RELS)}
    for name, rows in piece.items():
        total[name] = max(total.get(name, 0), rows) if name in tree else (
            total.get(name, 0) + rows)
