"""Do the model's confidences mean what they say? Reliability tables, expected calibration
error (ECE), and temperature scaling fitted on dev.

An item is an annotation the model wrote (an entity, a relation on its own entities) with its
confidence and whether it is right (the evaluation's exact match: type and offsets; relation
type and both arguments). Reliability: items binned by confidence (10 equal bins), each bin's
mean confidence against its accuracy. ECE = sum over bins of (items in bin / items) *
|accuracy - mean confidence|: 0 when a confidence of 0.8 is right 80% of the time.

Temperature scaling (extraction/temperature.py): for each head the temperature on a grid of
0.5 ... 5.7 (steps of 2^(1/4)) that minimises the log loss of "this annotation is right" on dev.
Decisions do not change with temperature, only confidences, so the fit is one extraction of dev
per grid point. A head with fewer than MIN_ERRORS wrong items on dev keeps temperature 1: there
is nothing to fit, and a fit to no errors would only make it more confident.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from extraction.evaluate import entity_items, relation_items
from extraction.temperature import Temperatures
from extraction.uncertainty import expected_errors
from ingest.document import Document

BINS = 10
GRID = tuple(2 ** (k / 4) for k in range(-4, 11))  # 0.5 ... 5.66
MIN_ERRORS = 5
HEADS = ("ner", "rc")


@dataclass(frozen=True)
class Item:
    confidence: float
    correct: bool


def confidence_items(gold: Sequence[Document], predicted: Sequence[Document]
                     ) -> dict[str, list[Item]]:
    """{"ner": entity items, "rc": relation items} of the predictions, judged against gold."""
    items: dict[str, list[Item]] = {"ner": [], "rc": []}
    for g, p in zip(gold, predicted, strict=True):
        gold_entities, gold_relations = entity_items(g), relation_items(g)
        for e in p.entities:
            if e.confidence is not None:
                items["ner"].append(Item(e.confidence,
                                         (p.doc_id, e.type, e.start, e.end) in gold_entities))
        by_id = p.entities_by_id()
        for r in p.relations:
            a, b = by_id.get(r.arg1), by_id.get(r.arg2)
            if r.confidence is None or a is None or b is None:
                continue
            key = (p.doc_id, r.type, (a.type, a.start, a.end), (b.type, b.start, b.end))
            items["rc"].append(Item(r.confidence, key in gold_relations))
    return items


@dataclass(frozen=True)
class Bin:
    low: float
    high: float
    count: int
    confidence: float  # mean confidence of the bin's items
    accuracy: float


def reliability(items: Sequence[Item], bins: int = BINS) -> tuple[Bin, ...]:
    """The non-empty bins, lowest confidence first (a confidence of 1.0 is in the last bin)."""
    grouped: dict[int, list[Item]] = {}
    for item in items:
        grouped.setdefault(min(int(item.confidence * bins), bins - 1), []).append(item)
    return tuple(Bin(k / bins, (k + 1) / bins, len(g), sum(i.confidence for i in g) / len(g),
                     sum(i.correct for i in g) / len(g)) for k, g in sorted(grouped.items()))


def expected_calibration_error(items: Sequence[Item], bins: int = BINS) -> float:
    total = len(items)
    if not total:
        return 0.0
    return sum(b.count / total * abs(b.accuracy - b.confidence) for b in reliability(items, bins))


def log_loss(items: Sequence[Item]) -> float:
    """Mean binary log loss of the confidences as probabilities of being right."""
    if not items:
        return 0.0
    eps = 1e-6
    return -sum(math.log(min(max(i.confidence if i.correct else 1 - i.confidence, eps), 1.0))
                for i in items) / len(items)


@dataclass(frozen=True)
class HeadCalibration:
    """One head's items before (temperature 1) and after (its fitted temperature)."""

    temperature: float
    raw: tuple[Item, ...]
    calibrated: tuple[Item, ...]

    @property
    def errors(self) -> int:
        return sum(not i.correct for i in self.raw)

    def summary(self) -> dict[str, float | int]:
        return {"temperature": self.temperature, "items": len(self.raw), "errors": self.errors,
                "ece_before": expected_calibration_error(self.raw),
                "ece_after": expected_calibration_error(self.calibrated),
                "log_loss_before": log_loss(self.raw), "log_loss_after": log_loss(self.calibrated)}


def _bare(documents: Sequence[Document]) -> list[Document]:
    return [replace(d, entities=(), relations=(), others=(), doubt=None) for d in documents]


def _predict_at(extractor, documents: Sequence[Document], temperatures: Temperatures
                ) -> list[Document]:
    saved = extractor.temperatures
    extractor.temperatures = temperatures
    try:
        return list(extractor.extract(_bare(documents)))
    finally:
        extractor.temperatures = saved


def fit_temperatures(extractor, dev: Sequence[Document], grid: Sequence[float] = GRID
                     ) -> Temperatures:
    """The temperatures minimising each head's dev log loss (1.0 for a head with fewer than
    MIN_ERRORS wrong items); `fit` records items, errors, ECE and log loss before and after."""
    if not dev:
        return Temperatures(fit={"note": "no dev reports: confidences left raw"})
    by_t = {t: confidence_items(dev, _predict_at(extractor, dev, Temperatures(t, t)))
            for t in sorted({1.0, *grid})}
    chosen, fit = {}, {}
    for head in HEADS:
        raw = by_t[1.0][head]
        errors = sum(not i.correct for i in raw)
        if errors < MIN_ERRORS:
            best = 1.0
        else:
            best = min(by_t, key=lambda t, h=head: (log_loss(by_t[t][h]), abs(math.log(t))))
        chosen[head] = best
        fit[head] = HeadCalibration(best, tuple(raw), tuple(by_t[best][head])).summary()
        if errors < MIN_ERRORS:
            fit[head]["note"] = (f"{errors} wrong items on dev (fewer than {MIN_ERRORS}): "
                                 "nothing to fit, temperature 1")
    fit["dev_reports"] = len(dev)
    return Temperatures(chosen["ner"], chosen["rc"], fit)


def corrections_made(gold: Document, predicted: Document) -> int:
    """What an annotator correcting the prediction into the gold has to change: entities and
    relations to delete (wrong) plus those to add (missed)."""
    entities = len(entity_items(gold) ^ entity_items(predicted))
    relations = len(relation_items(gold) ^ relation_items(predicted))
    return entities + relations


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2  # ties share their mean rank
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Rank correlation; None when either side is constant (or has under two values)."""
    if len(a) < 2:
        return None
    ra, rb = _ranks(a), _ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    va, vb = sum((x - ma) ** 2 for x in ra), sum((y - mb) ** 2 for y in rb)
    return cov / math.sqrt(va * vb) if va and vb else None


@dataclass(frozen=True)
class CorrectionsCheck:
    """`select`'s score against what annotators would really have to correct, per report."""

    expected: float  # summed over the reports
    made: int
    spearman: float | None  # between each report's expected and made corrections

    @classmethod
    def of(cls, gold: Sequence[Document], predicted: Sequence[Document]) -> CorrectionsCheck:
        expected = [expected_errors(p) for p in predicted]
        made = [corrections_made(g, p) for g, p in zip(gold, predicted, strict=True)]
        return cls(sum(expected), sum(made), spearman(expected, [float(m) for m in made]))


@dataclass(frozen=True)
class CalibrationReport:
    """How the confidences of a model directory match accuracy on a split: raw and with the
    directory's temperatures; and the expected corrections against those really needed."""

    heads: dict[str, HeadCalibration]
    documents: int
    corrections: CorrectionsCheck | None = None

    def to_dict(self) -> dict[str, object]:
        def bins(items: Sequence[Item]) -> list[dict[str, float]]:
            return [b.__dict__.copy() for b in reliability(items)]

        checked = None if self.corrections is None else self.corrections.__dict__.copy()
        return {"documents": self.documents, "corrections": checked, **{
            head: {**c.summary(), "reliability_before": bins(c.raw),
                   "reliability_after": bins(c.calibrated)} for head, c in self.heads.items()}}


def calibration_report(extractor, documents: Sequence[Document]) -> CalibrationReport:
    raw = confidence_items(documents, _predict_at(extractor, documents, Temperatures()))
    stored = extractor.temperatures
    predicted = _predict_at(extractor, documents, stored)
    calibrated = confidence_items(documents, predicted)
    temperatures = {"ner": stored.ner, "rc": stored.rc}
    return CalibrationReport({h: HeadCalibration(temperatures[h], tuple(raw[h]),
                                                 tuple(calibrated[h])) for h in HEADS},
                             len(documents), CorrectionsCheck.of(documents, predicted))


HEAD_TITLES = {"ner": "entities", "rc": "relations (on predicted entities)"}


def format_reliability(report: CalibrationReport) -> str:
    lines = ["Calibration: does a confidence of p mean right p of the time? (reliability "
             "tables; ECE = weighted mean |accuracy - confidence| over the bins)"]
    for head, c in report.heads.items():
        s = c.summary()
        lines.append(f"\n{HEAD_TITLES[head]}: {s['items']} items, {s['errors']} wrong; "
                     f"temperature {c.temperature:.2f}; ECE {s['ece_before']:.4f} raw -> "
                     f"{s['ece_after']:.4f} calibrated")
        lines.append(f"{'confidence':<12}{'raw n':>8}{'conf':>8}{'acc':>8}"
                     f"{'calib n':>10}{'conf':>8}{'acc':>8}")
        before = {b.low: b for b in reliability(c.raw)}
        after = {b.low: b for b in reliability(c.calibrated)}
        for low in sorted(set(before) | set(after)):
            cells = []
            for table, width in ((before, 8), (after, 10)):
                b = table.get(low)
                cells.append(f"{b.count:>{width}d}{b.confidence:8.3f}{b.accuracy:8.3f}" if b
                             else f"{'':>{width}}{'':>8}{'':>8}")
            lines.append(f"{low:.1f}-{low + 0.1:.1f}".ljust(12) + "".join(cells))
    check = report.corrections
    if check is not None:
        rho = "n/a" if check.spearman is None else f"{check.spearman:.3f}"
        lines.append(f"\nselect's score (expected corrections, calibrated) over "
                     f"{report.documents} reports: {check.expected:.1f} expected, {check.made} "
                     f"made; Spearman per report {rho}")
    return "\n".join(lines)
