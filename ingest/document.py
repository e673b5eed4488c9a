"""The one document type that crosses every door of the pipeline.

An annotated report read from brat and a report the model has structured are the same kind of
object: a `Document` with entities and relations. Predictions carry a `confidence`; annotations
leave it `None`. Offsets are character offsets into `Document.text` exactly as brat counts them
(the file's characters as decoded, `\\r` included).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, order=True)
class Span:
    start: int
    end: int

    def __post_init__(self) -> None:
        if self.start < 0 or self.end < self.start:
            raise ValueError(f"bad span {self.start}-{self.end}")

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True)
class Entity:
    """A brat `T` line: a typed text-bound annotation, possibly discontinuous."""

    id: str
    type: str
    spans: tuple[Span, ...]
    text: str
    confidence: float | None = None

    @property
    def start(self) -> int:
        return self.spans[0].start

    @property
    def end(self) -> int:
        return self.spans[-1].end

    @property
    def is_contiguous(self) -> bool:
        return len(self.spans) == 1


@dataclass(frozen=True)
class Relation:
    """A brat `R` line: `type` from `arg1` to `arg2` (entity ids)."""

    id: str
    type: str
    arg1: str
    arg2: str
    confidence: float | None = None


@dataclass(frozen=True)
class OtherAnnotation:
    """Any other brat line (E, A, M, N, #, *): kept verbatim so nothing is dropped silently.

    `kind` is the id's first character (`*` for equivalences, whose id is `*`), `fields` the
    line's tab-separated fields after the id.
    """

    kind: str
    id: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class Doubt:
    """The model's doubt that a prediction's entity and relation lines do not show (predictions
    only: `Document.doubt` is None for annotations). Expected counts, from the CRF marginals and
    the relation probabilities:

    missed_entities: entities the model may have missed, p(a B- or S- tag) summed over the
        characters it tagged O (the expected number of entity starts it did not output);
    missed_relations: relations it may have missed, 1 - p(NoRelation) summed over the
        schema-allowed pairs it judged NoRelation;
    entropy: the entropy (nats) of every character's tag marginals and of every candidate
        pair's label distribution, summed.
    """

    missed_entities: float = 0.0
    missed_relations: float = 0.0
    entropy: float = 0.0

    def __add__(self, other: Doubt) -> Doubt:
        return Doubt(self.missed_entities + other.missed_entities,
                     self.missed_relations + other.missed_relations,
                     self.entropy + other.entropy)


@dataclass(frozen=True)
class Document:
    doc_id: str
    text: str
    entities: tuple[Entity, ...] = ()
    relations: tuple[Relation, ...] = ()
    others: tuple[OtherAnnotation, ...] = ()
    annotated: bool = True
    source: str | None = field(default=None, compare=False)
    doubt: Doubt | None = field(default=None, compare=False)

    def entity(self, entity_id: str) -> Entity | None:
        return next((e for e in self.entities if e.id == entity_id), None)

    def entities_by_id(self) -> dict[str, Entity]:
        return {e.id: e for e in self.entities}


class ReportStatus(StrEnum):
    """What became of one input report. A StrEnum: it is written to Parquet as its value and
    compares equal to it (`status == "ok"`)."""

    OK = "ok"  # processed
    QUARANTINED = "quarantined"  # bad input, kept aside with the reason
    FAILED = "failed"  # good input the pipeline could not process (may be transient)


@dataclass(frozen=True)
class ReportOutcome:
    """What became of one input report in a run: every input gets exactly one."""

    report_id: str
    status: ReportStatus
    reason: str | None = None
    source: str | None = None

    STATUSES = tuple(s.value for s in ReportStatus)
