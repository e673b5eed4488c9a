"""Counts that describe a corpus: reports, sentences, lengths, entities and relations by type.

These are the numbers of Table I of the paper (entities and relations per type), plus what the
model's configuration depends on (sentence lengths against the 126-character limit, and how many
relation candidates are NoRelation before down-sampling).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from ingest.document import Document
from ingest.examples import DEFAULT_MAX_CHARS, candidate_pairs, document_examples
from ingest.schema import NO_RELATION, Schema


@dataclass(frozen=True)
class CorpusStats:
    reports: int
    annotated_reports: int
    sentences: int  # after cutting sentences longer than max_chars
    characters: int
    longest_sentence: int
    entities: tuple[tuple[str, int], ...]  # (type, count) in schema order
    relations: tuple[tuple[str, int], ...]  # (type, count) in schema order, NoRelation last
    candidates: int  # every pair of mentions in a sentence: n(n-1)/2 per sentence
    schema_candidates: int  # the pairs whose types the schema allows a relation between
    characters_in_sentences: int = 0

    @property
    def avg_report_chars(self) -> float:
        return self.characters / self.reports if self.reports else 0.0

    @property
    def avg_sentence_chars(self) -> float:
        return self.characters_in_sentences / self.sentences if self.sentences else 0.0

    def entity_count(self, entity_type: str) -> int:
        return dict(self.entities).get(entity_type, 0)

    def relation_count(self, relation_type: str) -> int:
        return dict(self.relations).get(relation_type, 0)


def corpus_stats(
    documents: Iterable[Document], schema: Schema, max_chars: int = DEFAULT_MAX_CHARS
) -> CorpusStats:
    """Count one pass over `documents` (a generator is fine: nothing is kept)."""
    reports = annotated = sentences = characters = in_sentences = longest = 0
    candidates = schema_candidates = 0
    entities: Counter[str] = Counter()
    relations: Counter[str] = Counter()
    for doc in documents:
        reports += 1
        annotated += doc.annotated
        characters += len(doc.text)
        entities.update(e.type for e in doc.entities)
        for example in document_examples(doc, schema, max_chars):
            sentences += 1
            in_sentences += len(example.sentence.text)
            longest = max(longest, len(example.sentence.text))
            candidates += len(example.candidates)
            schema_candidates += len(candidate_pairs(example.mentions, schema))
            relations.update(c.label for c in example.candidates)
    entity_types = (*schema.entity_types, *sorted(set(entities) - set(schema.entity_types)))
    relation_types = (*schema.relation_names, NO_RELATION)
    return CorpusStats(
        reports=reports,
        annotated_reports=annotated,
        sentences=sentences,
        characters=characters,
        longest_sentence=longest,
        entities=tuple((t, entities.get(t, 0)) for t in entity_types),
        relations=tuple((t, relations.get(t, 0)) for t in relation_types),
        candidates=candidates,
        schema_candidates=schema_candidates,
        characters_in_sentences=in_sentences,
    )


def _share(count: int, total: int) -> str:
    return f"{100 * count / total:5.1f}%" if total else "    -"


def format_stats(stats: CorpusStats) -> str:
    """A plain-text table (also valid Markdown) of the counts."""
    lines = [
        "| quantity | value |",
        "|---|---:|",
        f"| reports | {stats.reports} |",
        f"| annotated reports | {stats.annotated_reports} |",
        f"| sentences | {stats.sentences} |",
        f"| avg characters per report | {stats.avg_report_chars:.1f} |",
        f"| avg characters per sentence | {stats.avg_sentence_chars:.1f} |",
        f"| longest sentence (characters) | {stats.longest_sentence} |",
        "",
        "| entity type | count | share |",
        "|---|---:|---:|",
    ]
    total_entities = sum(n for _, n in stats.entities)
    lines += [f"| {t} | {n} | {_share(n, total_entities)} |" for t, n in stats.entities]
    lines += [f"| total | {total_entities} | |", "",
              "| relation type | count | share of candidates |", "|---|---:|---:|"]
    lines += [f"| {t} | {n} | {_share(n, stats.candidates)} |" for t, n in stats.relations]
    lines += [
        f"| candidates (all pairs in a sentence) | {stats.candidates} | |",
        f"| candidates the schema allows | {stats.schema_candidates} | |",
    ]
    return "\n".join(lines)
