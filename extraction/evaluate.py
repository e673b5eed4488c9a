"""The paper's scores: NER, RC with gold entities, RC with predicted entities (micro P/R/F1).

- NER: an entity counts when (type, start, end) matches a gold entity exactly.
- RC: a relation is the triple (relation type, (arg1 type, start, end), (arg2 type, start, end));
  it counts only when all of that matches a gold relation. With gold entities (the model only
  classifies the candidate pairs of gold entities) that is the usual RC score; with predicted
  entities, a wrong span or type also makes the relation wrong. NoRelation is never a positive
  class: it is only the absence of a triple.
- Records (the analysts' metric): the key-value records built from the predictions
  (`ingest.records`, on predicted entities) against those built from the gold annotations of the
  same reports, matched on (report, artery, segments, finding, stenosis, negated) as multisets.
  An entity or triple F1 can be high while records are wrong (a Position to the wrong location
  moves a finding to another segment). Per-field accuracy is measured on aligned pairs: a gold
  and a predicted record about the same Degree span and the same BodyPart span (within one such
  pair of mentions, those with equal segments first, then in text order).
- Type-only baseline (`type_only_baseline`): with gold entities, relate EVERY pair of one
  sentence that the schema allows, with the relation most frequent for that type pair in the
  gold. It knows the schema and nothing about the sentence; RC with gold entities is worth
  what it gains over this (issue 15: a model that relates every allowed pair has learned the
  schema, not which vessel a lesion belongs to).

The metric functions are pure: documents in, counts and scores out. Offsets are the documents'
own character offsets, so gold and predicted documents of one report compare directly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from ingest.document import Document, Relation
from ingest.examples import DEFAULT_MAX_CHARS, candidate_pairs, document_examples
from ingest.records import KeyValueRecord, records_from_document
from ingest.schema import NO_RELATION, Schema

EntityKey = tuple[str, int, int]  # type, start, end
NerItem = tuple[str, str, int, int]  # doc_id, type, start, end
RcItem = tuple[str, str, EntityKey, EntityKey]  # doc_id, relation, arg1, arg2


@dataclass(frozen=True)
class Prf:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> dict[str, float | int]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1,
                "tp": self.tp, "fp": self.fp, "fn": self.fn}

    @classmethod
    def from_dict(cls, values: Mapping[str, object]) -> Prf:
        """From `to_dict()`: the counts (the rates follow from them)."""
        def count(key: str) -> int:
            value = values.get(key, 0)
            return int(value) if isinstance(value, int | float | str) else 0

        return cls(count("tp"), count("fp"), count("fn"))


@dataclass(frozen=True)
class Scores:
    overall: Prf
    per_type: tuple[tuple[str, Prf], ...]  # in the order of the types given

    @property
    def precision(self) -> float:
        return self.overall.precision

    @property
    def recall(self) -> float:
        return self.overall.recall

    @property
    def f1(self) -> float:
        return self.overall.f1

    def to_dict(self) -> dict[str, object]:
        return {**self.overall.to_dict(),
                "per_type": {name: prf.to_dict() for name, prf in self.per_type}}

    @classmethod
    def from_dict(cls, values: Mapping[str, object] | None) -> Scores:
        values = values or {}
        per_type = values.get("per_type") or {}
        assert isinstance(per_type, Mapping)
        return cls(Prf.from_dict(values),
                   tuple((str(name), Prf.from_dict(prf)) for name, prf in per_type.items()))


def score_items(
    gold: Iterable[tuple], predicted: Iterable[tuple], types: Sequence[str], type_at: int = 1
) -> Scores:
    """Micro P/R/F1 of two sets of items; item[type_at] names the item's type."""
    gold_set, pred_set = set(gold), set(predicted)
    hits = gold_set & pred_set

    def count(items: set[tuple]) -> Counter[str]:
        return Counter(item[type_at] for item in items)

    g, p, h = count(gold_set), count(pred_set), count(hits)
    names = list(types) + sorted((set(g) | set(p)) - set(types))
    per_type = tuple((t, Prf(h[t], p[t] - h[t], g[t] - h[t])) for t in names)
    overall = Prf(len(hits), len(pred_set) - len(hits), len(gold_set) - len(hits))
    return Scores(overall, per_type)


def entity_items(document: Document) -> set[NerItem]:
    return {(document.doc_id, e.type, e.start, e.end) for e in document.entities}


def relation_items(document: Document) -> set[RcItem]:
    by_id = document.entities_by_id()
    items = set()
    for r in document.relations:
        a, b = by_id.get(r.arg1), by_id.get(r.arg2)
        if a is None or b is None:
            continue
        items.add((document.doc_id, r.type, (a.type, a.start, a.end), (b.type, b.start, b.end)))
    return items


def score_ner(gold: Iterable[Document], predicted: Iterable[Document], schema: Schema) -> Scores:
    g = set().union(*(entity_items(d) for d in gold))
    p = set().union(*(entity_items(d) for d in predicted))
    return score_items(g, p, schema.entity_types)


def score_rc(gold: Iterable[Document], predicted: Iterable[Document], schema: Schema) -> Scores:
    """Used for both RC scores: pass predictions made on gold or on predicted entities."""
    g = set().union(*(relation_items(d) for d in gold))
    p = set().union(*(relation_items(d) for d in predicted))
    return score_items(g, p, schema.relation_names)


def rc_confusion(
    gold: Iterable[Document], predicted_on_gold: Iterable[Document], schema: Schema,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> dict[str, dict[str, int]]:
    """confusion[gold label][predicted label] over every candidate pair of gold entities.

    Candidates are the pairs of one sentence whose types the schema allows a relation between;
    `predicted_on_gold[i]` carries the relations predicted between `gold[i]`'s entities.
    """
    labels = schema.relation_labels
    matrix = {g: dict.fromkeys(labels, 0) for g in labels}
    for gold_doc, pred_doc in zip(gold, predicted_on_gold, strict=True):
        predicted = {frozenset((r.arg1, r.arg2)): r.type for r in pred_doc.relations}
        for example in document_examples(gold_doc, schema, max_chars):
            allowed = set(candidate_pairs(example.mentions, schema))
            for c in example.candidates:
                if (c.first, c.second) not in allowed:
                    continue
                ids = frozenset((example.mentions[c.first].entity_id,
                                 example.mentions[c.second].entity_id))
                guess = predicted.get(ids, NO_RELATION)
                matrix.setdefault(c.label, dict.fromkeys(labels, 0))
                matrix[c.label][guess] = matrix[c.label].get(guess, 0) + 1
    return matrix


RECORD_KEY = ("report_id", "artery", "segments", "finding", "stenosis", "negated")
RECORD_FIELDS = ("artery", "segments", "finding", "stenosis", "negated", "percentage_text",
                 "location_text", "dominance")


@dataclass(frozen=True)
class RecordScores:
    overall: Prf
    aligned: int  # gold records paired with a predicted one about the same mentions
    field_accuracy: tuple[tuple[str, float], ...]  # in RECORD_FIELDS order

    @property
    def f1(self) -> float:
        return self.overall.f1

    def to_dict(self) -> dict[str, object]:
        return {**self.overall.to_dict(), "matched_on": list(RECORD_KEY),
                "aligned": self.aligned, "field_accuracy": dict(self.field_accuracy)}

    @classmethod
    def from_dict(cls, values: Mapping[str, object] | None) -> RecordScores:
        values = values or {}
        accuracy = values.get("field_accuracy") or {}
        aligned = values.get("aligned") or 0
        return cls(Prf.from_dict(values),
                   int(aligned) if isinstance(aligned, int | float | str) else 0,
                   tuple((str(k), float(v)) for k, v in accuracy.items())
                   if isinstance(accuracy, Mapping) else ())


def _key(record: KeyValueRecord) -> tuple:
    return tuple(getattr(record, name) for name in RECORD_KEY)


def _anchor(record: KeyValueRecord) -> tuple:
    return (record.report_id, record.degree_start, record.degree_end, record.vessel_start,
            record.vessel_end)


def _aligned(gold: Sequence[KeyValueRecord], predicted: Sequence[KeyValueRecord]
             ) -> list[tuple[KeyValueRecord, KeyValueRecord]]:
    by_anchor: dict[tuple, list[KeyValueRecord]] = {}
    for p in predicted:
        by_anchor.setdefault(_anchor(p), []).append(p)
    pairs = []
    for g in gold:
        candidates = by_anchor.get(_anchor(g))
        if not candidates:
            continue
        same = next((p for p in candidates if p.segments == g.segments), candidates[0])
        candidates.remove(same)
        pairs.append((g, same))
    return pairs


def score_records(gold: Iterable[Document], predicted: Iterable[Document], schema: Schema
                  ) -> RecordScores:
    """Record P/R/F1 (multisets of record keys) and per-field accuracy on aligned pairs."""

    def records(documents: Iterable[Document]) -> list[KeyValueRecord]:
        return [r for d in documents
                for r in records_from_document(d, schema, model_version=None, run_id=None)]

    g, p = records(gold), records(predicted)
    g_keys, p_keys = Counter(map(_key, g)), Counter(map(_key, p))
    tp = sum((g_keys & p_keys).values())
    overall = Prf(tp, sum(p_keys.values()) - tp, sum(g_keys.values()) - tp)
    pairs = _aligned(g, p)
    accuracy = tuple(
        (name, sum(getattr(a, name) == getattr(b, name) for a, b in pairs) / len(pairs)
         if pairs else 0.0)
        for name in RECORD_FIELDS)
    return RecordScores(overall, len(pairs), accuracy)


def type_only_relations(gold: Sequence[Document], schema: Schema,
                        max_chars: int = DEFAULT_MAX_CHARS) -> list[Document]:
    """Each gold document with its relations replaced by the type-only baseline's guesses."""
    frequency: Counter[tuple[str, str, str]] = Counter()
    for document in gold:
        by_id = document.entities_by_id()
        for r in document.relations:
            if r.arg1 in by_id and r.arg2 in by_id:
                frequency[(r.type, by_id[r.arg1].type, by_id[r.arg2].type)] += 1

    def guess(first: str, second: str) -> tuple[str, bool]:
        options = schema.relations_between(first, second)  # in schema order: ties go first
        return max(options, key=lambda o: frequency[
            (o[0], first, second) if o[1] else (o[0], second, first)])

    result = []
    for document in gold:
        relations: list[Relation] = []
        for example in document_examples(document, schema, max_chars):
            for i, j in candidate_pairs(example.mentions, schema):
                a, b = example.mentions[i], example.mentions[j]
                name, a_is_arg1 = guess(a.type, b.type)
                arg1, arg2 = (a, b) if a_is_arg1 else (b, a)
                relations.append(Relation(f"R{len(relations) + 1}", name, arg1.entity_id,
                                          arg2.entity_id))
        result.append(replace(document, relations=tuple(relations), others=()))
    return result


def type_only_baseline(gold: Sequence[Document], schema: Schema,
                       max_chars: int = DEFAULT_MAX_CHARS) -> Scores:
    """RC scores (gold entities) of relating every schema-allowed pair by its types alone."""
    return score_rc(gold, type_only_relations(gold, schema, max_chars), schema)


@dataclass(frozen=True)
class EvaluationReport:
    """The paper's scores of one model on one split. A new score is a field with a default;
    `to_dict` writes it (`metrics.json`, `--json`) and `from_dict` reads reports written
    before it existed (the default) and ignores keys it does not know."""

    ner: Scores
    rc_gold: Scores
    rc_predicted: Scores
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    documents: int = 0
    records: RecordScores = field(default_factory=lambda: RecordScores(Prf(), 0, ()))
    # the baseline RC with gold entities is held against (type_only_baseline)
    rc_type_only: Scores | None = None

    TASKS = ("ner", "rc_gold", "rc_predicted")  # the paper's; records are scored apart

    def to_dict(self) -> dict[str, object]:
        result: dict[str, object] = {
            "documents": self.documents, "ner": self.ner.to_dict(),
            "rc_gold": self.rc_gold.to_dict(), "rc_predicted": self.rc_predicted.to_dict(),
            "records": self.records.to_dict(), "rc_confusion": self.confusion}
        if self.rc_type_only is not None:
            result["rc_type_only"] = self.rc_type_only.to_dict()
        return result

    @classmethod
    def from_dict(cls, values: Mapping[str, object]) -> EvaluationReport:
        def scores(task: str) -> Scores:
            given = values.get(task)
            return Scores.from_dict(given if isinstance(given, Mapping) else None)

        confusion = values.get("rc_confusion") or {}
        documents = values.get("documents") or 0
        records = values.get("records")
        type_only = values.get("rc_type_only")
        return cls(scores("ner"), scores("rc_gold"), scores("rc_predicted"),
                   dict(confusion) if isinstance(confusion, Mapping) else {},
                   int(documents) if isinstance(documents, int | float | str) else 0,
                   RecordScores.from_dict(records if isinstance(records, Mapping) else None),
                   scores("rc_type_only") if isinstance(type_only, Mapping) else None)

    def task(self, name: str) -> Scores:
        return getattr(self, name)

    def summary(self) -> dict[str, float]:
        return {"ner_f1": self.ner.f1, "rc_gold_f1": self.rc_gold.f1,
                "rc_predicted_f1": self.rc_predicted.f1, "records_f1": self.records.f1}


def evaluate_documents(
    gold: Sequence[Document],
    predicted: Sequence[Document],
    predicted_on_gold: Sequence[Document],
    schema: Schema,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> EvaluationReport:
    return EvaluationReport(
        ner=score_ner(gold, predicted, schema),
        rc_gold=score_rc(gold, predicted_on_gold, schema),
        rc_predicted=score_rc(gold, predicted, schema),
        confusion=rc_confusion(gold, predicted_on_gold, schema, max_chars),
        documents=len(gold),
        records=score_records(gold, predicted, schema),
        rc_type_only=type_only_baseline(gold, schema, max_chars),
    )


def format_scores(title: str, scores: Scores) -> str:
    lines = [title, f"{'type':<14}{'P':>8}{'R':>8}{'F1':>8}{'gold':>7}{'pred':>7}"]
    rows = [*scores.per_type, ("micro", scores.overall)]
    for name, prf in rows:
        lines.append(f"{name:<14}{100 * prf.precision:8.2f}{100 * prf.recall:8.2f}"
                     f"{100 * prf.f1:8.2f}{prf.tp + prf.fn:7d}{prf.tp + prf.fp:7d}")
    return "\n".join(lines)


def format_confusion(matrix: dict[str, dict[str, int]]) -> str:
    labels = list(matrix)
    width = max(12, *(len(label) + 2 for label in labels))
    lines = ["RC confusion (rows: gold, columns: predicted; gold entities)",
             " " * width + "".join(f"{label:>{width}}" for label in labels)]
    for g in labels:
        lines.append(f"{g:<{width}}" + "".join(f"{matrix[g].get(p, 0):>{width}d}" for p in labels))
    return "\n".join(lines)


def format_records(scores: RecordScores) -> str:
    o = scores.overall
    lines = ["Records (matched on " + ", ".join(RECORD_KEY) + "; predicted entities)",
             f"{'':<14}{'P':>8}{'R':>8}{'F1':>8}{'gold':>7}{'pred':>7}",
             f"{'records':<14}{100 * o.precision:8.2f}{100 * o.recall:8.2f}{100 * o.f1:8.2f}"
             f"{o.tp + o.fn:7d}{o.tp + o.fp:7d}",
             f"per-field accuracy on {scores.aligned} aligned pairs (same Degree and BodyPart "
             "spans): " + ", ".join(f"{n} {100 * a:.2f}" for n, a in scores.field_accuracy)]
    return "\n".join(lines)


def format_report(report: EvaluationReport) -> str:
    return "\n\n".join([
        f"{report.documents} documents",
        format_scores("NER (exact type, start, end)", report.ner),
        format_scores("RC with gold entities", report.rc_gold),
        format_scores("RC with predicted entities", report.rc_predicted),
        *([format_scores("RC type-only baseline (gold entities, every schema-allowed pair "
                         "related by its types)", report.rc_type_only)]
          if report.rc_type_only is not None else []),
        format_records(report.records),
        format_confusion(report.confusion),
    ])


def evaluate_extractor(extractor, documents: Sequence[Document], batch_size: int = 64
                       ) -> EvaluationReport:
    """Score an `extraction.predict.Extractor` (or anything with its two methods) on gold docs."""
    gold = list(documents)
    bare = [replace(d, entities=(), relations=(), others=()) for d in gold]
    predicted = list(extractor.extract(bare, batch_size=batch_size))
    on_gold = [extractor.predict_relations_gold(d) for d in gold]
    return evaluate_documents(gold, predicted, on_gold, extractor.schema, extractor.max_chars)
