"""A run's predictions back from its published tables, as the `Document`s it wrote: the inverse
of `entity_rows`, `triple_rows` and `report_rows` (export.parquet_sink).

For readers that need what the model predicted without running it again: the nightly's
annotation queue scores tonight's new reports and writes the chosen ones' `.ann` files from
here (pipeline.run_queue). Entities and relations come back in the order they were written, with
their confidences; `doubt` from the `reports` row (None for annotations, and for runs written
before the doubt columns existed). The tables hold no report text: pass `texts` to get it back,
else each document's text is empty (enough to score it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping

import pyarrow as pa

from export.parquet_sink import ENTITIES, REPORTS, TRIPLES
from ingest.document import Document, Doubt, Entity, Relation, ReportStatus, Span

DATASETS_READ = (REPORTS, ENTITIES, TRIPLES)


def parse_spans(spans: str) -> tuple[Span, ...]:
    """brat's "s e;s e" as written by `entity_rows`."""
    pieces = (piece.split() for piece in spans.split(";"))
    return tuple(Span(int(start), int(end)) for start, end in pieces)


def _doubt(row: Mapping[str, object]) -> Doubt | None:
    values = (row.get("doubt_missed_entities"), row.get("doubt_missed_relations"),
              row.get("doubt_entropy"))
    if any(v is None for v in values):
        return None
    return Doubt(*(float(v) for v in values))  # type: ignore[arg-type]


def _by_report(table: pa.Table, columns: tuple[str, ...]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for row in table.select(list(columns)).to_pylist():
        grouped[row["report_id"]].append(row)
    return grouped


def predictions(tables: Mapping[str, pa.Table], texts: Mapping[str, str] | None = None,
                ids: set[str] | None = None) -> Iterator[Document]:
    """One Document per processed (`ok`) report of `tables` (a shard's or a run's), in the
    order of its `reports` rows; `ids`: only these reports."""
    reports = [row for row in tables[REPORTS].to_pylist()
               if row["status"] == ReportStatus.OK and (ids is None or row["report_id"] in ids)]
    entities = _by_report(tables[ENTITIES], ("report_id", "entity_id", "type", "text", "spans",
                                              "confidence"))
    relations = _by_report(tables[TRIPLES], ("report_id", "relation_id", "relation", "head_id",
                                              "tail_id", "probability"))
    seen: set[str] = set()
    for row in reports:
        report_id = row["report_id"]
        if report_id in seen:  # an archive's duplicate id: one processed row
            continue
        seen.add(report_id)
        yield Document(
            report_id, texts.get(report_id, "") if texts is not None else "",
            entities=tuple(Entity(e["entity_id"], e["type"], parse_spans(e["spans"]), e["text"],
                                  e["confidence"]) for e in entities.get(report_id, ())),
            relations=tuple(Relation(r["relation_id"], r["relation"], r["head_id"],
                                     r["tail_id"], r["probability"])
                            for r in relations.get(report_id, ())),
            annotated=False, source=row["source"], doubt=_doubt(row))
