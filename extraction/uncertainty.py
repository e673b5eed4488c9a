"""How much the model would learn from a report's annotation: a score per predicted report.

`expected-errors` (the default) is the number of corrections the annotator is expected to make:
for every entity and relation the model wrote, the probability it is wrong (1 - confidence);
plus the entities and relations it may have missed (`Document.doubt`: B/S marginals on
characters it tagged O, 1 - p(NoRelation) on pairs it judged NoRelation). Its unit is
"corrections", it is additive over sentences, and with calibrated confidences (temperature
scaling, extraction/calibration.py) it is an honest count: summed over dev it matches the errors
made (docs/annotation-loop.md). Other scores, compared with it in the active-learning
simulation: `triple-errors` (expected wrong or missed triples, the unit of the simulation's RC
F1 on predicted entities: a relation's doubt includes its two entities'), `entropy` (summed
entropy of every tag marginal and pair distribution, the classic uncertainty sampling),
`least-confidence` (1 - the lowest confidence among the written annotations: one doubtful item
is enough) and `random` (a seeded hash of the report id: the baseline an annotation lead has
today).

All of them are pure functions of the predicted `Document`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from ingest.document import Document

DEFAULT_STRATEGY = "expected-errors"


def shown_errors(document: Document) -> float:
    """Expected wrong entities and relations among those the model wrote."""
    items = (*document.entities, *document.relations)
    return sum(1.0 - item.confidence for item in items if item.confidence is not None)


def expected_errors(document: Document, seed: int = 0) -> float:
    doubt = document.doubt
    hidden = doubt.missed_entities + doubt.missed_relations if doubt is not None else 0.0
    return shown_errors(document) + hidden


def triple_errors(document: Document, seed: int = 0) -> float:
    """Expected wrong or missed triples, the unit of RC F1 on predicted entities: a written
    relation is a right triple only when both its entities are right too (p_rel * p_arg1 *
    p_arg2, the confidences taken as independent), a missed relation is a missed triple, and a
    missed entity is counted as one missed triple (nearly every entity here takes part in one).
    A doubtful entity in no relation costs nothing: RC does not see it."""
    confidence = {e.id: e.confidence for e in document.entities if e.confidence is not None}
    written = 0.0
    for r in document.relations:
        if r.confidence is not None:
            right = r.confidence * confidence.get(r.arg1, 1.0) * confidence.get(r.arg2, 1.0)
            written += 1.0 - right
    doubt = document.doubt
    hidden = doubt.missed_entities + doubt.missed_relations if doubt is not None else 0.0
    return written + hidden


def entropy(document: Document, seed: int = 0) -> float:
    return document.doubt.entropy if document.doubt is not None else 0.0


def least_confidence(document: Document, seed: int = 0) -> float:
    confidences = [item.confidence for item in (*document.entities, *document.relations)
                   if item.confidence is not None]
    return 1.0 - min(confidences) if confidences else 0.0


def random_score(document: Document, seed: int = 0) -> float:
    digest = hashlib.sha256(f"{seed}\0{document.doc_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


STRATEGIES: dict[str, Callable[[Document, int], float]] = {
    "expected-errors": expected_errors,
    "triple-errors": triple_errors,
    "entropy": entropy,
    "least-confidence": least_confidence,
    "random": random_score,
}


def scorer(strategy: str) -> Callable[[Document, int], float]:
    try:
        return STRATEGIES[strategy]
    except KeyError:
        raise ValueError(f"unknown selection strategy {strategy!r}; choose one of "
                         f"{', '.join(STRATEGIES)}") from None


@dataclass(frozen=True)
class UnsureItem:
    """One written annotation and the model's confidence in it, for queue.csv."""

    id: str
    type: str
    text: str  # an entity's text; a relation's "arg1 -> arg2" texts
    confidence: float

    def format(self) -> str:
        return f"{self.id} {self.type} {self.text} {self.confidence:.2f}"


def least_sure(document: Document, k: int = 3) -> tuple[UnsureItem, ...]:
    """The k written annotations with the lowest confidence, least sure first."""
    by_id = document.entities_by_id()
    items = [UnsureItem(e.id, e.type, e.text, e.confidence)
             for e in document.entities if e.confidence is not None]
    for r in document.relations:
        if r.confidence is None:
            continue
        a, b = by_id.get(r.arg1), by_id.get(r.arg2)
        text = f"{a.text if a else r.arg1}->{b.text if b else r.arg2}"
        items.append(UnsureItem(r.id, r.type, text, r.confidence))
    return tuple(sorted(items, key=lambda i: (i.confidence, i.id))[:k])
