"""Documents -> sentences -> per-character BIEOS tags and relation candidates (training examples).

Data types are fixed here (the model code depends on them); the functions are filled in below.
"""

from __future__ import annotations

import hashlib
import logging
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from ingest.bieos import encode
from ingest.document import Document
from ingest.schema import NO_RELATION, Schema
from ingest.sentences import sentence_boundaries

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SentenceSpan:
    """A sentence of a report: `text == document.text[start:end]`."""

    doc_id: str
    index: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Mention:
    """An entity inside a sentence, offsets relative to the sentence (character = token)."""

    entity_id: str
    type: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Candidate:
    """A pair of mentions of one sentence, `first` before `second` in text order.

    `label` is the relation's name or NoRelation. `first_is_arg1` says which mention is brat's
    Arg1 when there is a relation (the schema fixes direction by argument types).
    """

    first: int
    second: int
    label: str
    first_is_arg1: bool = True


@dataclass(frozen=True)
class SentenceExample:
    sentence: SentenceSpan
    tags: tuple[str, ...]  # one BIEOS tag per character of sentence.text
    mentions: tuple[Mention, ...]  # in text order
    candidates: tuple[Candidate, ...]


# --- sentences -------------------------------------------------------------------------------

DEFAULT_MAX_CHARS = 126  # 128 model positions minus [CLS] and [SEP]; one token per character
# Cut a long sentence after one of these when it can: the pieces then read as clauses.
_PREFERRED_CUT_AFTER = frozenset("，,、：: \t")


def _cut_table(text: str, offset: int, entity_spans: Iterable[tuple[int, int]]
               ) -> tuple[list[int], list[int], list[int]]:
    """For each position q of `text`: the last allowed cut <= q, the last allowed cut <= q after
    a preferred character, and the first allowed cut >= q (-1 / len(text) when none).

    A cut at p (0 < p < len) is allowed unless it falls strictly inside an entity. One pass over
    the text and one over the spans (a running count of the entities open at p), so cutting a
    sentence is linear in its length; the window search then costs O(1) per piece.
    """
    n = len(text)
    opened = [0] * (n + 1)  # +1 where an entity starts to cover a cut, -1 where it stops
    for start, end in entity_spans:
        first, stop = max(start - offset + 1, 1), min(end - offset, n)
        if first < stop:
            opened[first] += 1
            opened[stop] -= 1
    last_allowed, last_preferred = [-1] * (n + 1), [-1] * (n + 1)
    inside, allowed, preferred = 0, -1, -1
    for p in range(1, n + 1):
        inside += opened[p]
        if p < n and not inside:
            allowed = p
            if text[p - 1] in _PREFERRED_CUT_AFTER:
                preferred = p
        last_allowed[p], last_preferred[p] = allowed, preferred
    next_allowed, following = [n] * (n + 1), n
    for p in range(n - 1, 0, -1):
        if last_allowed[p] == p:
            following = p
        next_allowed[p] = following
    return last_allowed, last_preferred, next_allowed


def split_long(
    sentence: SentenceSpan, max_chars: int, entity_spans: Iterable[tuple[int, int]]
) -> list[SentenceSpan]:
    """Cut `sentence` into pieces of at most `max_chars` characters, never inside an entity.

    `entity_spans` are document offsets `(start, end)`; spans outside the sentence are ignored.
    Each cut is the last allowed point in the window, after a comma, 、, colon or space when the
    window has one. An entity longer than `max_chars` cannot fit: its piece is left longer than
    the limit (with a warning) rather than cutting the entity. Whitespace-only pieces are
    dropped. Pieces keep `sentence.index`; `sentences_of` numbers them. Linear in the length of
    the sentence (plus the number of spans).
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    text = sentence.text
    if len(text) <= max_chars:
        return [sentence]
    last_allowed, last_preferred, next_allowed = _cut_table(text, sentence.start, entity_spans)
    pieces: list[SentenceSpan] = []
    begin = 0
    while len(text) - begin > max_chars:
        edge = begin + max_chars
        if last_preferred[edge] > begin:
            cut = last_preferred[edge]
        elif last_allowed[edge] > begin:
            cut = last_allowed[edge]
        else:
            cut = next_allowed[begin + 1]
            if cut >= len(text):
                break
            logger.warning(
                "%s: sentence at %d: an entity spans more than max_chars=%d; piece kept at %d",
                sentence.doc_id, sentence.start, max_chars, cut - begin,
            )
        pieces.append(_piece(sentence, begin, cut))
        begin = cut
    pieces.append(_piece(sentence, begin, len(text)))
    return [p for p in pieces if p.text.strip()]


def _piece(sentence: SentenceSpan, begin: int, end: int) -> SentenceSpan:
    return SentenceSpan(
        doc_id=sentence.doc_id,
        index=sentence.index,
        start=sentence.start + begin,
        end=sentence.start + end,
        text=sentence.text[begin:end],
    )


def sentences_of(document: Document, max_chars: int = DEFAULT_MAX_CHARS) -> list[SentenceSpan]:
    """The document's sentences (guideline boundaries), long ones cut, numbered from 0."""
    bounds = sentence_boundaries(document.text)
    spans = _spans_per_sentence(bounds, [(e.start, e.end) for e in document.entities if e.spans])
    result: list[SentenceSpan] = []
    for (start, end), extents in zip(bounds, spans, strict=True):
        whole = SentenceSpan(document.doc_id, 0, start, end, document.text[start:end])
        for piece in split_long(whole, max_chars, extents):
            result.append(replace(piece, index=len(result)))
    return result


def _spans_per_sentence(bounds: Sequence[tuple[int, int]], extents: Iterable[tuple[int, int]]
                        ) -> list[list[tuple[int, int]]]:
    """The entity extents overlapping each sentence (an extent crossing sentences goes to each),
    found by bisection rather than handing every sentence every entity of the report."""
    per_sentence: list[list[tuple[int, int]]] = [[] for _ in bounds]
    ends = [end for _, end in bounds]
    for start, end in extents:
        k = bisect_right(ends, start)  # the first sentence ending after the extent starts
        while k < len(bounds) and bounds[k][0] < end:
            per_sentence[k].append((start, end))
            k += 1
    return per_sentence


# --- mentions, tags and candidates ------------------------------------------------------------


def candidate_pairs(
    mentions: Sequence[Mention], schema: Schema | None = None
) -> list[tuple[int, int]]:
    """Index pairs (i, j), i < j, of mentions in text order.

    Without a schema: every pair (training, n(n-1)/2 per sentence). With one: only pairs whose
    types the schema allows some relation between (inference); the others are NoRelation by the
    schema and need no classifier.
    """
    pairs = []
    for j in range(len(mentions)):
        for i in range(j):
            if schema is None or schema.pair_allowed(mentions[i].type, mentions[j].type):
                pairs.append((i, j))
    pairs.sort()
    return pairs


def _default_direction(schema: Schema, first: Mention, second: Mention) -> bool:
    """For a NoRelation pair: is `first` Arg1 of the relation its types would allow?"""
    possible = schema.relations_between(first.type, second.type)
    return possible[0][1] if possible else True


def _sentence_mentions(
    document: Document, sentences: Sequence[SentenceSpan]
) -> list[list[Mention]]:
    """Mentions of each sentence, in text order; skips what cannot be one (with a warning)."""
    per_sentence: list[list[Mention]] = [[] for _ in sentences]
    starts = [s.start for s in sentences]
    for entity in document.entities:
        if not entity.is_contiguous:
            logger.warning("%s: %s is discontinuous; skipped", document.doc_id, entity.id)
            continue
        k = bisect_right(starts, entity.start) - 1
        if k < 0 or entity.end > sentences[k].end:
            logger.warning(
                "%s: %s (%d-%d) is not inside one sentence; skipped",
                document.doc_id, entity.id, entity.start, entity.end,
            )
            continue
        s = sentences[k]
        mention = Mention(
            entity_id=entity.id,
            type=entity.type,
            start=entity.start - s.start,
            end=entity.end - s.start,
            text=s.text[entity.start - s.start : entity.end - s.start],
        )
        per_sentence[k].append(mention)
    result = []
    for s, mentions in zip(sentences, per_sentence, strict=True):
        mentions.sort(key=lambda m: (m.start, m.end))
        kept: list[Mention] = []
        for m in mentions:
            if kept and m.start < kept[-1].end:
                logger.warning(
                    "%s: %s overlaps %s; skipped", s.doc_id, m.entity_id, kept[-1].entity_id
                )
                continue
            kept.append(m)
        result.append(kept)
    return result


def document_examples(
    document: Document, schema: Schema, max_chars: int = DEFAULT_MAX_CHARS
) -> list[SentenceExample]:
    """One example per sentence: BIEOS tags, mentions, and every pair of mentions labelled."""
    sentences = sentences_of(document, max_chars)
    per_sentence = _sentence_mentions(document, sentences)
    relations = {(r.arg1, r.arg2): r.type for r in document.relations}
    seen: set[tuple[str, str]] = set()
    examples = []
    for sentence, mentions in zip(sentences, per_sentence, strict=True):
        tags = encode(len(sentence.text), [(m.type, m.start, m.end) for m in mentions])
        candidates = []
        for i, j in candidate_pairs(mentions):
            a, b = mentions[i], mentions[j]
            if (a.entity_id, b.entity_id) in relations:
                label, first_is_arg1 = relations[(a.entity_id, b.entity_id)], True
                seen.add((a.entity_id, b.entity_id))
            elif (b.entity_id, a.entity_id) in relations:
                label, first_is_arg1 = relations[(b.entity_id, a.entity_id)], False
                seen.add((b.entity_id, a.entity_id))
            else:
                label, first_is_arg1 = NO_RELATION, _default_direction(schema, a, b)
            candidates.append(Candidate(i, j, label, first_is_arg1))
        examples.append(SentenceExample(sentence, tags, tuple(mentions), tuple(candidates)))
    for key in relations.keys() - seen:
        logger.warning(
            "%s: relation %s %s->%s is not between mentions of one sentence; skipped",
            document.doc_id, relations[key], *key,
        )
    return examples


def _keep_draw(seed: int, sentence: SentenceSpan, candidate: Candidate) -> float:
    """A uniform number in [0, 1) fixed by the seed and the candidate's identity, not its order."""
    parts = (seed, sentence.doc_id, sentence.start, candidate.first, candidate.second)
    key = "\x00".join(map(str, parts))
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def downsample_no_relation(
    examples: Iterable[SentenceExample], keep_rate: float, seed: int
) -> list[SentenceExample]:
    """Keep each NoRelation candidate with probability `keep_rate` (the paper kept 0.15).

    Meant for the training split only; dev and test keep every candidate. Relation candidates
    are always kept. The draw for a candidate depends only on the seed and the candidate's
    identity, so the result does not depend on the order of the examples.
    """
    if not 0.0 <= keep_rate <= 1.0:
        raise ValueError(f"keep_rate must be within [0, 1], got {keep_rate}")
    result = []
    for ex in examples:
        kept = tuple(
            c for c in ex.candidates
            if c.label != NO_RELATION or _keep_draw(seed, ex.sentence, c) < keep_rate
        )
        result.append(replace(ex, candidates=kept))
    return result
