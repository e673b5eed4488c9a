"""Per-character BIEOS tags: spans -> tags, tags -> spans, and the tag grammar for a CRF.

A span is `(type, start, end)` with `end` exclusive. One tag per character (a character is a
token in this project): `B-x` begins a multi-character entity of type x, `I-x` is inside it,
`E-x` ends it, `S-x` is a one-character entity, `O` is outside every entity.

Decoding rule for ill-formed sequences (a model may emit them): only a complete `B-x I-x* E-x`
run or an `S-x` yields a span. An `I-x` or `E-x` with no open `B-x` of the same type starts
nothing; an open `B-x` that is interrupted (by `O`, a `B`/`S`, another type, or the end of the
sentence) is dropped. The rule never guesses: a half-tagged entity is no entity.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

OUTSIDE = "O"
PREFIXES = ("B", "I", "E", "S")


def tag_set(entity_types: Iterable[str]) -> tuple[str, ...]:
    """`O` first, then `B-`, `I-`, `E-`, `S-` for each type in schema order."""
    return (OUTSIDE, *(f"{p}-{t}" for t in entity_types for p in PREFIXES))


def split_tag(tag: str) -> tuple[str, str | None]:
    """`"B-Degree"` -> `("B", "Degree")`; `"O"` -> `("O", None)`."""
    if tag == OUTSIDE:
        return OUTSIDE, None
    prefix, sep, entity_type = tag.partition("-")
    if not sep or prefix not in PREFIXES or not entity_type:
        raise ValueError(f"bad BIEOS tag {tag!r}: expected O or B-/I-/E-/S-<type>")
    return prefix, entity_type


def encode(length: int, spans: Iterable[tuple[str, int, int]]) -> tuple[str, ...]:
    """Tags for a sequence of `length` characters holding `spans` (non-overlapping)."""
    tags = [OUTSIDE] * length
    for entity_type, start, end in spans:
        if not 0 <= start < end <= length:
            raise ValueError(f"span {entity_type} {start}-{end} is empty or outside 0-{length}")
        if any(t != OUTSIDE for t in tags[start:end]):
            raise ValueError(f"span {entity_type} {start}-{end} overlaps another span")
        if end - start == 1:
            tags[start] = f"S-{entity_type}"
            continue
        tags[start] = f"B-{entity_type}"
        for i in range(start + 1, end - 1):
            tags[i] = f"I-{entity_type}"
        tags[end - 1] = f"E-{entity_type}"
    return tuple(tags)


def decode(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Spans of a tag sequence, in text order; see the module docstring for ill-formed input."""
    spans: list[tuple[str, int, int]] = []
    open_type: str | None = None
    open_start = 0
    for i, tag in enumerate(tags):
        prefix, entity_type = split_tag(tag)
        continues = open_type is not None and entity_type == open_type
        if prefix == "I" and continues:
            continue
        if prefix == "E" and continues:
            spans.append((entity_type, open_start, i + 1))
        elif prefix == "S":
            spans.append((entity_type, i, i + 1))
        open_type = None  # anything but a continuing I closes (or drops) the open entity
        if prefix == "B":
            open_type, open_start = entity_type, i
    return spans


def _is_open(tag: str) -> bool:
    return split_tag(tag)[0] in ("B", "I")


def allowed_transitions(tags: Sequence[str]) -> set[tuple[str, str]]:
    """Pairs (from, to) a well-formed sequence can contain, for masking a CRF.

    After `B-x`/`I-x` only `I-x`/`E-x` may follow; after `O`/`E-x`/`S-x` only `O`/`B-y`/`S-y`.
    So `O -> I-x`, `B-x -> B-y`, `B-x -> I-y` and the like are forbidden.
    """
    allowed = set()
    for a in tags:
        for b in tags:
            _, ta = split_tag(a)
            pb, tb = split_tag(b)
            closes_or_continues = pb in ("I", "E") and tb == ta
            if closes_or_continues if _is_open(a) else pb in (OUTSIDE, "B", "S"):
                allowed.add((a, b))
    return allowed


def allowed_start(tags: Sequence[str]) -> set[str]:
    """Tags a sequence may start with: `O`, `B-x`, `S-x`."""
    return {t for t in tags if split_tag(t)[0] in (OUTSIDE, "B", "S")}


def allowed_end(tags: Sequence[str]) -> set[str]:
    """Tags a sequence may end with: `O`, `E-x`, `S-x`."""
    return {t for t in tags if split_tag(t)[0] in (OUTSIDE, "E", "S")}
