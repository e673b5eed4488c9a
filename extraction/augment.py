"""Training-time augmentation: more ways of writing the same annotated report.

A hospital's first model learns from a few hundred reports by a few doctors, then reads an
archive written by many. Each augmented copy of a training report keeps its annotation (the
same entities, types and relations) and changes how it is written:

- **mention substitution**: an entity's text is replaced by another text of the same type seen
  in the training corpus (前降支 -> LAD, 近段 -> 近端, 狭窄 -> 管状狭窄, 70% -> 50%~60%), so the
  model reads types from context and from more spellings than each context showed it; vessels
  coordinated in one sentence keep distinct texts;
- **punctuation and spacing variants**: a clause comma becomes another separator (、 or a
  half-width comma with spaces), a colon is written with a space, and now and then a space
  goes between an entity and its neighbour (`前降支 近段 狭窄`), as some doctors type.

- **longer sentences**: a sentence that starts with a vessel is now and then joined to the one
  before it (its 。 or ； becomes ，), as narrative reports run clauses on: the model sees
  entities at positions short sentences never reach, and pairs across the old boundary are
  NoRelation, as the guideline makes them (each clause's findings belong to its own vessel).

No sentence end is added and line breaks are never touched, so every relation stays inside one
sentence; offsets are recomputed as the new text is written. A copy of report `r` depends only
on the seed, its copy number and `r` itself.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ingest.document import Document, Entity, Span
from ingest.sentences import LINE_BREAKS, SENTENCE_END, sentence_boundaries

# A joined sentence starts with a vessel: the vessel type of the records' roles (export/roles.py
# VESSEL_TYPE; extraction cannot import export).
BODY_PART = "BodyPart"

# Separators a clause comma may become (full- and half-width read alike after normalization).
COMMA_VARIANTS = ("，", "、", ", ", " , ", "，")
COLON_VARIANTS = ("：", ": ", " : ", "：")
_COMMAS, _COLONS = frozenset("，,"), frozenset("：:")


@dataclass(frozen=True)
class AugmentConfig:
    copies: int = 0  # augmented copies of each training report (0: no augmentation)
    swap_rate: float = 0.35  # chance that an entity's text is substituted
    punct_rate: float = 0.3  # chance that a comma or colon is written another way
    space_rate: float = 0.05  # chance of a space before an entity (spaced-out reports)
    merge_rate: float = 0.0  # chance that a sentence starting with a vessel joins the last one
    max_merged_chars: int = 110  # a joined sentence stays within the model's sentence length
    seed: int = 13

    def __post_init__(self) -> None:
        for name in ("swap_rate", "punct_rate", "space_rate", "merge_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"augmentation {name} must be in [0, 1], got {value}")
        if self.copies < 0:
            raise ValueError(f"augmentation copies must not be negative, got {self.copies}")


def surfaces_by_type(documents: Iterable[Document]) -> dict[str, tuple[str, ...]]:
    """The distinct texts of each entity type, in first-seen order (repeatable draws)."""
    seen: dict[str, dict[str, None]] = {}
    for document in documents:
        for entity in document.entities:
            if entity.is_contiguous:
                seen.setdefault(entity.type, {})[entity.text] = None
    return {kind: tuple(texts) for kind, texts in seen.items()}


def _rng(seed: int, copy: int, doc_id: str) -> random.Random:
    digest = hashlib.blake2b(f"{seed}\x00{copy}\x00{doc_id}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _joins(document: Document, rng: random.Random, config: AugmentConfig) -> frozenset[int]:
    """Offsets of the sentence ends (。；;) that become commas: each ends a sentence directly
    followed (no line break) by one whose first entity is a BodyPart, while the joined
    sentence stays within `max_merged_chars`."""
    if not config.merge_rate:
        return frozenset()
    text = document.text
    bounds = sentence_boundaries(text)
    starts = sorted((e.start, e.type) for e in document.entities)
    joins = set()
    length = bounds[0][1] - bounds[0][0] if bounds else 0
    for (_, end), (start, next_end) in zip(bounds, bounds[1:], strict=False):
        first = next(((s, t) for s, t in starts if start <= s < next_end), None)
        if (start == end and text[end - 1] in SENTENCE_END and first is not None
                and first[1] == BODY_PART and length + next_end - start <= config.max_merged_chars
                and rng.random() < config.merge_rate):
            joins.add(end - 1)
            length += next_end - start
        else:
            length = next_end - start
    return frozenset(joins)


def _plain(text: str, rng: random.Random, config: AugmentConfig, offset: int = 0,
           joins: frozenset[int] = frozenset()) -> str:
    out = []
    for i, ch in enumerate(text):
        if offset + i in joins:
            out.append(rng.choice(("，", "，", ",")))
        elif ch in _COMMAS and rng.random() < config.punct_rate:
            out.append(rng.choice(COMMA_VARIANTS))
        elif ch in _COLONS and rng.random() < config.punct_rate:
            out.append(rng.choice(COLON_VARIANTS))
        else:
            out.append(ch)
    return "".join(out)


def augment_document(document: Document, surfaces: dict[str, Sequence[str]], copy: int,
                     config: AugmentConfig) -> Document:
    """Copy `copy` of `document`: same annotation, other spellings, punctuation and spacing."""
    rng = _rng(config.seed, copy, document.doc_id)
    joins = _joins(document, rng, config)
    entities = sorted((e for e in document.entities if e.is_contiguous), key=lambda e: e.start)
    kept_ids = {e.id for e in entities}
    text = document.text
    parts: list[str] = []
    length = 0
    new_entities: list[Entity] = []
    used_in_sentence: set[str] = set()
    at = 0
    for entity in entities:
        plain = _plain(text[at:entity.start], rng, config, at, joins)
        if any(ch in LINE_BREAKS or (ch in SENTENCE_END and at + i not in joins)
               for i, ch in enumerate(text[at:entity.start])):
            used_in_sentence = set()
        if (config.space_rate and plain and not plain[-1].isspace()
                and rng.random() < config.space_rate):
            plain += " "
        parts.append(plain)
        length += len(plain)
        surface = entity.text
        options = [s for s in surfaces.get(entity.type, ()) if s not in used_in_sentence]
        if options and rng.random() < config.swap_rate:
            surface = rng.choice(options)
        used_in_sentence.add(surface)
        new_entities.append(Entity(entity.id, entity.type, (Span(length, length + len(surface)),),
                                   surface))
        parts.append(surface)
        length += len(surface)
        at = entity.end
    parts.append(_plain(text[at:], rng, config, at, joins))
    relations = tuple(r for r in document.relations if r.arg1 in kept_ids and r.arg2 in kept_ids)
    return Document(f"{document.doc_id}~aug{copy}", "".join(parts), tuple(new_entities),
                    relations, annotated=True, source=document.source)


def augment_corpus(documents: Sequence[Document], config: AugmentConfig) -> list[Document]:
    """`config.copies` augmented copies of every document (not the documents themselves)."""
    if not config.copies:
        return []
    surfaces = surfaces_by_type(documents)
    return [augment_document(d, surfaces, copy, config)
            for copy in range(1, config.copies + 1) for d in documents]
