"""A run's Parquet tables projected onto the graph model: one Arrow table per label and edge.

Column order follows the specs in `export.graph_model` (nodes: their props; edges: `src`,
`dst`, then props), so the same tables feed LadybugDB's `COPY`, the `UNWIND ... MERGE` batches
of both stores, and the Neo4j bulk-import CSV files. The coronary tree (Artery, Segment,
PART_OF) comes from `ingest.coronary`, whole, with every run.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from export import graph_model as gm
from export.parquet_sink import (
    ENTITIES,
    RECORDS,
    REPORT_SUMMARY,
    REPORTS,
    TRIPLES,
    RunInfo,
    read_run_shards,
)
from ingest.coronary import CoronaryTree, default_tree

_ARROW_TYPES = {gm.STRING: pa.string(), gm.DOUBLE: pa.float64(), gm.INT64: pa.int64(),
                gm.BOOLEAN: pa.bool_(), gm.STRING_LIST: pa.list_(pa.string())}


def node_schema(spec: gm.NodeSpec) -> pa.Schema:
    return pa.schema([(p.name, _ARROW_TYPES[p.type]) for p in spec.props])


def rel_schema(spec: gm.RelSpec) -> pa.Schema:
    start_type = _ARROW_TYPES[spec.start.props[0].type]
    end_type = _ARROW_TYPES[spec.end.props[0].type]
    return pa.schema([("src", start_type), ("dst", end_type)]
                     + [(p.name, _ARROW_TYPES[p.type]) for p in spec.props])


def _join(a: pa.ChunkedArray, b: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.binary_join_element_wise(a, b, "/")


def _const(value: str | None, n: int) -> pa.Array:
    return pa.array([value] * n, pa.string())


def tree_tables(tree: CoronaryTree) -> dict[str, pa.Table]:
    """The canonical Artery and Segment nodes and their PART_OF edges."""
    arteries = list(tree.arteries.values())
    return {
        gm.ARTERY.label: pa.Table.from_pylist(
            [{"id": a.id, "name": a.name, "name_zh": a.name_zh} for a in arteries],
            schema=node_schema(gm.ARTERY)),
        gm.SEGMENT.label: pa.Table.from_pylist(
            [{"id": s.id, "name": s.name, "name_zh": s.name_zh, "artery": s.artery,
              "rank": s.rank} for s in tree.segments], schema=node_schema(gm.SEGMENT)),
        gm.PART_OF.type: pa.Table.from_pylist(
            [{"src": s.id, "dst": s.artery} for s in tree.segments],
            schema=rel_schema(gm.PART_OF)),
    }


def _report_nodes(reports: pa.Table, summaries: pa.Table, run_id: str) -> pa.Table:
    """Report rows with their summary (null for a report that was not processed)."""
    at = {rid: i for i, rid in enumerate(summaries["report_id"].to_pylist())}
    rows = pc.index_in(reports["report_id"], value_set=pa.array(list(at), pa.string()))
    summary = summaries.take(rows)  # null indices give null rows
    columns = []
    for p in gm.REPORT.props:
        if p.name == "id":
            columns.append(reports["report_id"])
        elif p.name in ("status", "reason", "source", "model_version"):
            columns.append(reports[p.name])
        elif p.name == "run_id":
            columns.append(_const(run_id, reports.num_rows))
        else:
            columns.append(summary[p.name])
    return pa.table(columns, schema=node_schema(gm.REPORT))


def _at_segment(records: pa.Table) -> pa.Table:
    """One edge per segment of each record."""
    segments = records["segments"].combine_chunks()
    owners = pc.list_parent_indices(segments)
    return pa.table([records["finding_id"].take(owners), pc.list_flatten(segments)],
                    schema=rel_schema(gm.AT_SEGMENT))


def _one_row_per_report(reports: pa.Table) -> pa.Table:
    """A report id given twice (a duplicate in the archive) is one node: the processed row wins,
    else the first."""
    best: dict[str, int] = {}
    for i, (rid, status) in enumerate(zip(reports["report_id"].to_pylist(),
                                          reports["status"].to_pylist(), strict=True)):
        if rid not in best or (status == "ok" and reports["status"][best[rid]].as_py() != "ok"):
            best[rid] = i
    return reports.take(sorted(best.values())) if len(best) < reports.num_rows else reports


def graph_tables(tables: Mapping[str, pa.Table], run_id: str,
                 tree: CoronaryTree | None = None) -> dict[str, pa.Table]:
    """Node and edge tables of one run, keyed by label / edge type."""
    reports, entities = _one_row_per_report(tables[REPORTS]), tables[ENTITIES]
    triples, records = tables[TRIPLES], tables[RECORDS]
    rid = lambda t: _const(run_id, t.num_rows)  # noqa: E731
    mention_id = _join(entities["report_id"], entities["entity_id"])
    with_artery = records.filter(pc.is_valid(records["artery"]))
    degree_ids = _join(records["report_id"], records["degree_id"])
    out = {
        **tree_tables(tree or default_tree()),
        gm.REPORT.label: _report_nodes(reports, tables[REPORT_SUMMARY], run_id),
        gm.FINDING.label: pa.table(
            [records["finding_id"]]
            + [records[p.name] for p in gm.FINDING.props[1:-1]]
            + [rid(records)], schema=node_schema(gm.FINDING)),
        gm.MENTION.label: pa.table([
            mention_id, entities["report_id"], entities["entity_id"], entities["type"],
            entities["text"], entities["start"], entities["end"], entities["confidence"],
            entities["model_version"], rid(entities)], schema=node_schema(gm.MENTION)),
        gm.HAS_FINDING.type: pa.table([records["report_id"], records["finding_id"]],
                                      schema=rel_schema(gm.HAS_FINDING)),
        gm.IN_ARTERY.type: pa.table([with_artery["finding_id"], with_artery["artery"]],
                                    schema=rel_schema(gm.IN_ARTERY)),
        gm.AT_SEGMENT.type: _at_segment(records),
        gm.DERIVED_FROM.type: pa.table([records["finding_id"], degree_ids],
                                       schema=rel_schema(gm.DERIVED_FROM)),
        gm.MENTIONS.type: pa.table([entities["report_id"], mention_id],
                                   schema=rel_schema(gm.MENTIONS)),
        gm.RELATED.type: pa.table([
            _join(triples["report_id"], triples["head_id"]),
            _join(triples["report_id"], triples["tail_id"]),
            triples["relation_id"], triples["relation"], triples["probability"],
            triples["model_version"], rid(triples)], schema=rel_schema(gm.RELATED)),
    }
    _check_unique(out)
    return out


def run_graph_pieces(root: str | Path, run: RunInfo,
                     tree: CoronaryTree | None = None) -> Iterator[dict[str, pa.Table]]:
    """`graph_tables` of a committed run, one shard (a batch of whole reports) at a time, so a
    loader holds one shard's rows however large the run.

    A report id given twice in a run (a duplicate quarantined beside the one kept) can sit in
    two shards; it goes with the shard of the row `graph_tables` keeps for the whole run (the
    processed row, else the first) and is left out of the others, so loading the pieces in
    turn ends where loading the whole run would, not with a later shard's refused row."""
    home: dict[str, tuple[int, bool]] = {}  # report id -> (shard, ok)
    for shard, tables in enumerate(read_run_shards(root, run, (REPORTS,))):
        reports = tables[REPORTS]
        for rid, status in zip(reports["report_id"].to_pylist(), reports["status"].to_pylist(),
                               strict=True):
            ok = status == "ok"
            if rid not in home or (ok and not home[rid][1]):
                home[rid] = (shard, ok)
    for shard, tables in enumerate(read_run_shards(root, run)):
        ids = tables[REPORTS]["report_id"].to_pylist()
        elsewhere = {rid for rid in ids if home[rid][0] != shard}
        if elsewhere:
            keep = pa.array(sorted(set(ids) - elsewhere), pa.string())
            tables = {name: t.filter(pc.is_in(t["report_id"], value_set=keep))
                      for name, t in tables.items()}
        yield graph_tables(tables, run.run_id, tree)


def _check_unique(out: Mapping[str, pa.Table]) -> None:
    """Bulk loads refuse duplicate keys; say which, and why it can happen."""
    for spec in gm.NODES:
        keys = out[spec.label].column(spec.key)
        if len(pc.unique(keys)) != len(keys):
            counts = pc.value_counts(keys)
            dup = [c["values"] for c in counts.to_pylist() if c["counts"] > 1][:5]
            raise ValueError(
                f"{spec.label}: duplicate {spec.key} {dup}; the same report appears twice in "
                "the run (quarantine duplicates before export)"
            )

