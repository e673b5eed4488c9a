"""Key-value records: one per finding, keyed by vessel and segment (the guideline's structure).

The BodyPart is the central word. For each Degree with a Modifier relation to a BodyPart there
is one record per (vessel, segment): the segment is each Location the vessel has a Position
relation to, or None when it has none. Coordination ("前降支及回旋支近段狭窄50%") is annotated
as one Modifier per vessel, so it yields one record per vessel. A gold document and a
prediction give records the same way; predictions add a confidence.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass

from ingest.document import Document, Entity, Relation
from ingest.percentages import parse_percentage
from ingest.roles import Roles, roles_from_schema
from ingest.schema import Schema
from ingest.sentences import sentence_boundaries

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyValueRecord:
    """One finding. Offsets are character offsets into the report text (brat's)."""

    report_id: str
    vessel: str
    segment: str | None
    finding: str
    percentage_text: str | None
    percentage_low: float | None
    percentage_high: float | None
    negated: bool
    sentence: str
    sentence_start: int
    degree_id: str
    degree_start: int
    degree_end: int
    vessel_id: str
    vessel_start: int
    vessel_end: int
    segment_id: str | None
    segment_start: int | None
    segment_end: int | None
    confidence: float | None  # min of the relations' confidences; None for gold annotations
    model_version: str | None
    run_id: str | None

    @property
    def finding_id(self) -> str:
        """Stable key of the record: the same report and entities give the same id on reload."""
        return f"{self.report_id}/{self.degree_id}/{self.vessel_id}/{self.segment_id or '-'}"


def _min_confidence(relations: list[Relation]) -> float | None:
    values = [r.confidence for r in relations if r.confidence is not None]
    return min(values) if values else None


def _sentence_of(text: str, bounds: list[tuple[int, int]], offset: int) -> tuple[int, str]:
    """Start and text of the sentence holding `offset` (the whole text if none does)."""
    k = bisect_right([s for s, _ in bounds], offset) - 1
    if k >= 0 and offset < bounds[k][1]:
        start, end = bounds[k]
        return start, text[start:end]
    return 0, text


def _pick_quantifier(links: list[tuple[Relation, Entity]]) -> tuple[Relation, Entity] | None:
    """One Quantifier per finding: the most confident, then the first in the text."""
    if not links:
        return None
    return min(links, key=lambda x: (-(x[0].confidence or 0.0), x[1].start))


def records_from_document(
    document: Document,
    schema: Schema,
    *,
    model_version: str | None,
    run_id: str | None,
    roles: Roles | None = None,
) -> list[KeyValueRecord]:
    """The document's key-value records, ordered by degree, vessel and segment offsets."""
    roles = roles or roles_from_schema(schema)
    entities = document.entities_by_id()
    outgoing: dict[tuple[str, str], list[tuple[Relation, Entity]]] = defaultdict(list)
    for rel in document.relations:
        if rel.arg1 not in entities or rel.arg2 not in entities:
            logger.warning(
                "%s: relation %s names an unknown entity (%s -> %s); skipped",
                document.doc_id, rel.id, rel.arg1, rel.arg2,
            )
            continue
        outgoing[(rel.type, rel.arg1)].append((rel, entities[rel.arg2]))

    bounds = sentence_boundaries(document.text)
    records: list[KeyValueRecord] = []
    for degree in document.entities:
        modifiers = outgoing.get((roles.modifier, degree.id), [])
        if not modifiers:
            continue
        quantifier = _pick_quantifier(outgoing.get((roles.percentage, degree.id), []))
        negations = [r for r, _ in outgoing.get((roles.negative, degree.id), [])]
        pct_text = quantifier[1].text if quantifier else None
        pct = parse_percentage(pct_text)
        sentence_start, sentence = _sentence_of(document.text, bounds, degree.start)
        degree_links = negations + ([quantifier[0]] if quantifier else [])
        for modifier, vessel in modifiers:
            positions = outgoing.get((roles.position, vessel.id), [])
            for position, segment in positions or [(None, None)]:
                used = [modifier, *degree_links] + ([position] if position else [])
                records.append(
                    KeyValueRecord(
                        report_id=document.doc_id,
                        vessel=vessel.text,
                        segment=segment.text if segment else None,
                        finding=degree.text,
                        percentage_text=pct_text,
                        percentage_low=pct.low,
                        percentage_high=pct.high,
                        negated=bool(negations),
                        sentence=sentence,
                        sentence_start=sentence_start,
                        degree_id=degree.id,
                        degree_start=degree.start,
                        degree_end=degree.end,
                        vessel_id=vessel.id,
                        vessel_start=vessel.start,
                        vessel_end=vessel.end,
                        segment_id=segment.id if segment else None,
                        segment_start=segment.start if segment else None,
                        segment_end=segment.end if segment else None,
                        confidence=_min_confidence(used),
                        model_version=model_version,
                        run_id=run_id,
                    )
                )
    records.sort(key=lambda r: (r.degree_start, r.vessel_start, r.segment_start or -1))
    return records
