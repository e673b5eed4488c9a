"""The graph model and the Cypher that writes it, shared by the Neo4j and LadybugDB stores.

    (:Artery {id, name, name_zh})                        the coronary tree's arteries
    (:Segment {id, name, name_zh, artery, rank})-[:PART_OF]->(:Artery)   SYNTAX segments
    (:Report {id, status, ..., dominance, max_stenosis_*, diseased_vessels, ...})
      -[:HAS_FINDING]->(:Finding {id, artery, segments, stenosis, negated, vessel_text, ...})
    (:Finding)-[:IN_ARTERY]->(:Artery)                   when the vessel's spelling is mapped
    (:Finding)-[:AT_SEGMENT]->(:Segment)                 one edge per segment of the record
    (:Finding)-[:DERIVED_FROM]->(:Mention)               the Degree the finding was read from
    (:Report)-[:MENTIONS]->(:Mention {id, type, text, offsets, confidence, provenance})
    (:Mention)-[:RELATED {relation_id, relation, probability, provenance}]->(:Mention)

Artery and Segment are the canonical nodes of `ingest.coronary` (the analysts' contract), shared
by every report and written whole on every load; the spellings stay as Finding properties.
Everything else belongs to one report and carries `report_id`, `model_version` and `run_id`.
Relation types of the schema are a property of RELATED, not edge types, so a new relation in
annotation.conf needs no new table (LadybugDB fixes the endpoints of each edge table); RELATED
is merged on its relation id, so two triples between the same mentions stay two edges.

Every statement takes its data as parameters (`$rows`, `$report_ids`): report text never
becomes part of a query string. The label, property and edge names spliced into statements come
from the constants below only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

STRING, DOUBLE, INT64, BOOLEAN = "STRING", "DOUBLE", "INT64", "BOOLEAN"
STRING_LIST = "STRING[]"


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
    """An edge type between two labels. Rows give `src` and `dst` keys and the props.

    `key`: the property that tells two edges between the same nodes apart (MERGE matches on
    it); None for an edge that exists once per pair of nodes."""

    type: str
    start: NodeSpec
    end: NodeSpec
    props: tuple[Prop, ...] = ()
    key: str | None = None


_PROVENANCE = (Prop("model_version"), Prop("run_id"))
_SUMMARY = (
    Prop("dominance"), Prop("dominance_assumed", BOOLEAN),
    *[prop for territory in ("lm", "lad", "lcx", "rca") for prop in (
        Prop(f"max_stenosis_{territory}", DOUBLE),
        Prop(f"max_stenosis_{territory}_segments", STRING_LIST))],
    Prop("total_occlusions", INT64), Prop("diseased_vessels", INT64),
    Prop("left_main_disease", BOOLEAN),
)

ARTERY = NodeSpec("Artery", (Prop("id"), Prop("name"), Prop("name_zh")))
SEGMENT = NodeSpec("Segment", (Prop("id"), Prop("name"), Prop("name_zh"), Prop("artery"),
                               Prop("rank", INT64)))
REPORT = NodeSpec("Report", (
    Prop("id"), Prop("status"), Prop("reason"), Prop("source"), *_SUMMARY, *_PROVENANCE,
))
FINDING = NodeSpec("Finding", (
    Prop("id"), Prop("report_id"), Prop("vessel"), Prop("segment"), Prop("finding"),
    Prop("percentage_text"), Prop("percentage_low", DOUBLE), Prop("percentage_high", DOUBLE),
    Prop("negated", BOOLEAN), Prop("sentence"), Prop("sentence_start", INT64),
    Prop("degree_start", INT64), Prop("degree_end", INT64),
    Prop("vessel_start", INT64), Prop("vessel_end", INT64),
    Prop("segment_start", INT64), Prop("segment_end", INT64),
    Prop("artery"), Prop("segments", STRING_LIST), Prop("stenosis", DOUBLE),
    Prop("vessel_text"), Prop("location_text"), Prop("dominance"),
    Prop("dominance_assumed", BOOLEAN),
    Prop("confidence", DOUBLE), *_PROVENANCE,
))
MENTION = NodeSpec("Mention", (
    Prop("id"), Prop("report_id"), Prop("entity_id"), Prop("type"), Prop("text"),
    Prop("start_offset", INT64), Prop("end_offset", INT64), Prop("confidence", DOUBLE),
    *_PROVENANCE,
))

PART_OF = RelSpec("PART_OF", SEGMENT, ARTERY)
HAS_FINDING = RelSpec("HAS_FINDING", REPORT, FINDING)
IN_ARTERY = RelSpec("IN_ARTERY", FINDING, ARTERY)
AT_SEGMENT = RelSpec("AT_SEGMENT", FINDING, SEGMENT)
DERIVED_FROM = RelSpec("DERIVED_FROM", FINDING, MENTION)
MENTIONS = RelSpec("MENTIONS", REPORT, MENTION)
RELATED = RelSpec("RELATED", MENTION, MENTION, (
    Prop("relation_id"), Prop("relation"), Prop("probability", DOUBLE), *_PROVENANCE,
), key="relation_id")

NODES = (ARTERY, SEGMENT, REPORT, FINDING, MENTION)  # load order: endpoints before edges
RELS = (PART_OF, HAS_FINDING, IN_ARTERY, AT_SEGMENT, DERIVED_FROM, MENTIONS, RELATED)
# The coronary tree: the same for every report, merged whole on every load, never deleted.
TREE_NODES = (ARTERY, SEGMENT)
TREE_RELS = (PART_OF,)
# Labels whose nodes belong to one report (`report_id`): what a reload of the report replaces.
PER_REPORT = (FINDING, MENTION)


# --- writing (both dialects) -----------------------------------------------------------------

DEFAULT_BATCH_SIZE = 1000  # rows per UNWIND: big enough to amortise a round trip, small
# enough that one transaction stays well inside a server's default memory limits

# LadybugDB's buffer pool cap in MiB (export.ladybug_store; uncapped it may take ~80% of the
# machine's memory). A whole 10,000-report run loads in 128 MiB (64 is too few); twice that
# leaves room for larger nights.
DEFAULT_BUFFER_POOL_MIB = 256
BUFFER_POOL_ENV = "ANGIOKG_GRAPH_BUFFER_POOL_MIB"


def batches(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """`rows` in consecutive slices of at most `size` (one UNWIND each)."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    for i in range(0, len(rows), size):
        yield rows[i : i + size]



NEO4J, LADYBUG = "neo4j", "ladybug"


def _value(prop: Prop, dialect: str) -> str:
    """`row.<prop>`, typed for LadybugDB: it infers a parameter's type from the values, and a
    batch whose numbers (or lists) are all null or empty arrives untyped, which it will not
    cast implicitly."""
    if dialect == LADYBUG and prop.type != STRING:
        return f"CAST(row.{prop.name} AS {prop.type})"
    return f"row.{prop.name}"


def merge_node_statement(spec: NodeSpec, dialect: str = NEO4J) -> str:
    """Create or update nodes from `$rows` (maps with every property of the spec)."""
    sets = ", ".join(f"n.{p.name} = {_value(p, dialect)}" for p in spec.props[1:])
    return (f"UNWIND $rows AS row MERGE (n:{spec.label} {{{spec.key}: row.{spec.key}}})"
            + (f" SET {sets}" if sets else ""))


def merge_rel_statement(spec: RelSpec, dialect: str = NEO4J) -> str:
    """Create or update edges from `$rows` (maps with `src`, `dst` and the spec's props),
    matched on the spec's key when it has one."""
    sets = ", ".join(f"r.{p.name} = {_value(p, dialect)}" for p in spec.props
                     if p.name != spec.key)
    key = f" {{{spec.key}: row.{spec.key}}}" if spec.key else ""
    return (
        f"UNWIND $rows AS row "
        f"MATCH (a:{spec.start.label} {{{spec.start.key}: row.src}}), "
        f"(b:{spec.end.label} {{{spec.end.key}: row.dst}}) "
        f"MERGE (a)-[r:{spec.type}{key}]->(b)" + (f" SET {sets}" if sets else "")
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
NEO4J_INDEXES = ((FINDING, "report_id"), (FINDING, "stenosis"), (FINDING, "artery"),
                 (MENTION, "report_id"), (REPORT, "diseased_vessels"))


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
        "MATCH (r:Report)-[:HAS_FINDING]->(f:Finding)-[:AT_SEGMENT]->(:Segment {id: $segment})"
        " WHERE f.stenosis >= $min_stenosis AND NOT f.negated"
        " RETURN DISTINCT r.id AS report_id ORDER BY report_id"
    ),
    "three-vessel-or-left-main": (
        "MATCH (r:Report) WHERE r.diseased_vessels = 3 OR r.left_main_disease"
        " RETURN r.id AS report_id, r.diseased_vessels AS diseased_vessels,"
        " r.left_main_disease AS left_main_disease ORDER BY report_id"
    ),
    "max-stenosis-per-territory": (
        "MATCH (r:Report) WHERE r.dominance IS NOT NULL"
        " RETURN r.id AS report_id, r.dominance AS dominance, r.max_stenosis_lm AS lm,"
        " r.max_stenosis_lad AS lad, r.max_stenosis_lcx AS lcx, r.max_stenosis_rca AS rca,"
        " r.diseased_vessels AS diseased_vessels ORDER BY report_id"
    ),
    "findings-per-syntax-segment": (
        "MATCH (s:Segment)-[:PART_OF]->(a:Artery)"
        " OPTIONAL MATCH (f:Finding)-[:AT_SEGMENT]->(s)"
        " WITH s, a, count(f) AS findings, count(DISTINCT f.report_id) AS reports"
        " RETURN s.id AS segment, s.name AS name, a.id AS artery, findings, reports"
        " ORDER BY s.rank"
    ),
    "findings-per-vessel-segment": (
        "MATCH (f:Finding)-[:IN_ARTERY]->(a:Artery)"
        " OPTIONAL MATCH (f)-[:AT_SEGMENT]->(s:Segment)"
        " RETURN a.id AS artery, s.id AS segment, count(f) AS findings"
        " ORDER BY findings DESC, artery, segment"
    ),
    "negated-per-report": (
        "MATCH (r:Report)-[:HAS_FINDING]->(f:Finding) WHERE f.negated"
        " RETURN r.id AS report_id, count(f) AS negated_findings,"
        " collect(coalesce(f.artery, f.vessel_text)) AS arteries ORDER BY report_id"
    ),
}
QUERY_DEFAULTS = {
    "severe-proximal-lad": {"segment": "6", "min_stenosis": 70.0},
}
