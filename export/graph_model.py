"""The graph model and the Cypher that writes it, shared by the Neo4j and LadybugDB stores.

    (:Report {id})-[:HAS_FINDING]->(:Finding {id, percentages, negated, provenance})
    (:Finding)-[:IN_VESSEL]->(:Vessel {name})
    (:Finding)-[:AT_SEGMENT]->(:Segment {name})
    (:Finding)-[:DERIVED_FROM]->(:Mention)            the Degree the finding was read from
    (:Report)-[:MENTIONS]->(:Mention {id, type, text, offsets, confidence, provenance})
    (:Mention)-[:RELATED {relation, probability, provenance}]->(:Mention)   every triple

Vessel and Segment nodes are shared by all reports (their name is the key); everything else
belongs to one report and carries `report_id`, `model_version` and `run_id`. Relation types of
the schema are a property of RELATED, not edge types, so a new relation in annotation.conf needs
no new table (LadybugDB fixes the endpoints of each edge table).

Every statement takes its data as parameters (`$rows`, `$report_ids`): report text never
becomes part of a query string. The label, property and edge names spliced into statements come
from the constants below only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

STRING, DOUBLE, INT64, BOOLEAN = "STRING", "DOUBLE", "INT64", "BOOLEAN"


@dataclass(frozen=True)
class Prop:
    name: str
    type: str = STRING


@dataclass(frozen=True)
class NodeSpec:
    """A node label; `props[0]` is its unique key."""

    label: str
    props: tuple[Prop, ...]

    @property
    def key(self) -> str:
        return self.props[0].name


@dataclass(frozen=True)
class RelSpec:
    """An edge type between two labels. Rows give `src` and `dst` keys and the props."""

    type: str
    start: NodeSpec
    end: NodeSpec
    props: tuple[Prop, ...] = ()


_PROVENANCE = (Prop("model_version"), Prop("run_id"))

REPORT = NodeSpec("Report", (
    Prop("id"), Prop("status"), Prop("reason"), Prop("source"), *_PROVENANCE,
))
FINDING = NodeSpec("Finding", (
    Prop("id"), Prop("report_id"), Prop("vessel"), Prop("segment"), Prop("finding"),
    Prop("percentage_text"), Prop("percentage_low", DOUBLE), Prop("percentage_high", DOUBLE),
    Prop("negated", BOOLEAN), Prop("sentence"), Prop("sentence_start", INT64),
    Prop("degree_start", INT64), Prop("degree_end", INT64),
    Prop("vessel_start", INT64), Prop("vessel_end", INT64),
    Prop("segment_start", INT64), Prop("segment_end", INT64),
    Prop("confidence", DOUBLE), *_PROVENANCE,
))
VESSEL = NodeSpec("Vessel", (Prop("name"),))
SEGMENT = NodeSpec("Segment", (Prop("name"),))
MENTION = NodeSpec("Mention", (
    Prop("id"), Prop("report_id"), Prop("entity_id"), Prop("type"), Prop("text"),
    Prop("start_offset", INT64), Prop("end_offset", INT64), Prop("confidence", DOUBLE),
    *_PROVENANCE,
))

HAS_FINDING = RelSpec("HAS_FINDING", REPORT, FINDING)
IN_VESSEL = RelSpec("IN_VESSEL", FINDING, VESSEL)
AT_SEGMENT = RelSpec("AT_SEGMENT", FINDING, SEGMENT)
DERIVED_FROM = RelSpec("DERIVED_FROM", FINDING, MENTION)
MENTIONS = RelSpec("MENTIONS", REPORT, MENTION)
RELATED = RelSpec("RELATED", MENTION, MENTION, (
    Prop("relation"), Prop("relation_id"), Prop("probability", DOUBLE), *_PROVENANCE,
))

NODES = (REPORT, VESSEL, SEGMENT, FINDING, MENTION)  # load order: endpoints before edges
RELS = (HAS_FINDING, IN_VESSEL, AT_SEGMENT, DERIVED_FROM, MENTIONS, RELATED)
# Labels whose nodes belong to one report (`report_id`): what a reload of the report replaces.
PER_REPORT = (FINDING, MENTION)


# --- writing (both dialects) -----------------------------------------------------------------

DEFAULT_BATCH_SIZE = 1000  # rows per UNWIND: big enough to amortise a round trip, small
# enough that one transaction stays well inside a server's default memory limits


def batches(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """`rows` in consecutive slices of at most `size` (one UNWIND each)."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    for i in range(0, len(rows), size):
        yield rows[i : i + size]



NEO4J, LADYBUG = "neo4j", "ladybug"


def _value(prop: Prop, dialect: str) -> str:
    """`row.<prop>`, typed for LadybugDB: it infers a parameter's type from the values, and a
    batch whose numbers are all null arrives as STRING, which it will not cast implicitly."""
    if dialect == LADYBUG and prop.type != STRING:
        return f"CAST(row.{prop.name} AS {prop.type})"
    return f"row.{prop.name}"


def merge_node_statement(spec: NodeSpec, dialect: str = NEO4J) -> str:
    """Create or update nodes from `$rows` (maps with every property of the spec)."""
    sets = ", ".join(f"n.{p.name} = {_value(p, dialect)}" for p in spec.props[1:])
    return (f"UNWIND $rows AS row MERGE (n:{spec.label} {{{spec.key}: row.{spec.key}}})"
            + (f" SET {sets}" if sets else ""))


def merge_rel_statement(spec: RelSpec, dialect: str = NEO4J) -> str:
    """Create or update edges from `$rows` (maps with `src`, `dst` and the spec's props)."""
    sets = ", ".join(f"r.{p.name} = {_value(p, dialect)}" for p in spec.props)
    return (
        f"UNWIND $rows AS row "
        f"MATCH (a:{spec.start.label} {{{spec.start.key}: row.src}}), "
        f"(b:{spec.end.label} {{{spec.end.key}: row.dst}}) "
        f"MERGE (a)-[r:{spec.type}]->(b)" + (f" SET {sets}" if sets else "")
    )


def delete_report_statements() -> tuple[str, ...]:
    """Remove what an earlier load wrote for the reports in `$report_ids` (with their edges)."""
    return tuple(
        f"UNWIND $report_ids AS rid MATCH (n:{spec.label}) WHERE n.report_id = rid "
        "DETACH DELETE n"
        for spec in PER_REPORT
    )


# --- schema ----------------------------------------------------------------------------------


def ladybug_ddl() -> tuple[str, ...]:
    """LadybugDB tables (it needs a schema); `IF NOT EXISTS` makes them idempotent."""
    nodes = tuple(
        f"CREATE NODE TABLE IF NOT EXISTS {s.label}("
        + ", ".join(f"{p.name} {p.type}" for p in s.props)
        + f", PRIMARY KEY({s.key}))"
        for s in NODES
    )
    rels = tuple(
        f"CREATE REL TABLE IF NOT EXISTS {r.type}(FROM {r.start.label} TO {r.end.label}"
        + "".join(f", {p.name} {p.type}" for p in r.props) + ")"
        for r in RELS
    )
    return nodes + rels


# Extra lookups the analysts' queries and the reload make (keys are indexed by their constraint).
NEO4J_INDEXES = ((FINDING, "report_id"), (FINDING, "percentage_low"), (MENTION, "report_id"))


def neo4j_schema_statements() -> tuple[str, ...]:
    """Uniqueness constraints on every key and the indexes above, idempotently."""
    constraints = tuple(
        f"CREATE CONSTRAINT {s.label.lower()}_{s.key}_unique IF NOT EXISTS "
        f"FOR (n:{s.label}) REQUIRE n.{s.key} IS UNIQUE"
        for s in NODES
    )
    indexes = tuple(
        f"CREATE INDEX {s.label.lower()}_{prop} IF NOT EXISTS FOR (n:{s.label}) ON (n.{prop})"
        for s, prop in NEO4J_INDEXES
    )
    return constraints + indexes


# --- the analysts' questions -----------------------------------------------------------------

QUERIES = {
    "severe-proximal-lad": (
        "MATCH (r:Report)-[:HAS_FINDING]->(f:Finding)-[:IN_VESSEL]->(:Vessel {name: $vessel}),"
        " (f)-[:AT_SEGMENT]->(:Segment {name: $segment})"
        " WHERE f.percentage_low >= $min_percent AND NOT f.negated"
        " RETURN DISTINCT r.id AS report_id ORDER BY report_id"
    ),
    "findings-per-vessel-segment": (
        "MATCH (f:Finding)-[:IN_VESSEL]->(v:Vessel)"
        " OPTIONAL MATCH (f)-[:AT_SEGMENT]->(s:Segment)"
        " RETURN v.name AS vessel, s.name AS segment, count(f) AS findings"
        " ORDER BY findings DESC, vessel, segment"
    ),
    "negated-per-report": (
        "MATCH (r:Report)-[:HAS_FINDING]->(f:Finding) WHERE f.negated"
        " RETURN r.id AS report_id, count(f) AS negated_findings,"
        " collect(f.vessel) AS vessels ORDER BY report_id"
    ),
}
QUERY_DEFAULTS = {
    "severe-proximal-lad": {"vessel": "前降支", "segment": "近段", "min_percent": 70.0},
}
