"""Documents -> sentences -> per-character BIEOS tags and relation candidates (training examples).

Data types are fixed here (the model code depends on them); the functions are filled in below.
"""

from __future__ import annotations

from dataclasses import dataclass


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
