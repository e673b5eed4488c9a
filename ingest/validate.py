"""Check one read document against the annotation schema and the annotation guideline.

Types come from `annotation.conf` through `ingest.schema` (entity and relation types, relation
argument types) and from its `[events]`/`[attributes]` sections; nothing is hard-coded here.
Sentence boundaries come from `ingest.sentences`, the same function the example builder uses.

Errors quarantine a report; warnings are reported and the report is used. Codes:
  error   unknown-entity-type, unknown-relation-type, unknown-event-type,
          unknown-attribute-type, empty-span, offset-out-of-range, text-mismatch,
          discontinuous-span, overlapping-entities, entity-crosses-sentence,
          cross-sentence-relation, wrong-argument-type, missing-argument,
          argument-not-entity, duplicate-id, missing-reference
  warning span-boundary (leading/trailing white space or punctuation)
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from ingest.brat_reader import references
from ingest.document import Document, Entity, OtherAnnotation
from ingest.findings import Finding, error, warning
from ingest.schema import Schema
from ingest.sentences import sentence_boundaries

__all__ = ["Finding", "AnnLines", "validate_document"]


@dataclass(frozen=True)
class AnnLines:
    """1-based `.ann` line numbers of a document's entities, relations and others (parallel to
    the document's tuples), so findings can point at a line. Empty tuples: lines unknown."""

    entities: tuple[int, ...] = ()
    relations: tuple[int, ...] = ()
    others: tuple[int, ...] = ()


def validate_document(document: Document, schema: Schema, path: str,
                      lines: AnnLines | None = None) -> tuple[Finding, ...]:
    """All findings for `document` read from `path` (the `.ann` file), in line order."""
    lines = lines or AnnLines()
    at = _LineOf(lines)
    findings: list[Finding] = []
    findings += _duplicate_ids(document, path, at)
    findings += _entity_findings(document, schema, path, at)
    findings += _relation_findings(document, schema, path, at)
    findings += _other_findings(document, schema, path, at)
    return tuple(sorted(findings, key=lambda f: (f.line is None, f.line or 0)))


class _LineOf:
    def __init__(self, lines: AnnLines) -> None:
        self._lines = lines

    @staticmethod
    def _get(seq: Sequence[int], i: int) -> int | None:
        return seq[i] if i < len(seq) else None

    def entity(self, i: int) -> int | None:
        return self._get(self._lines.entities, i)

    def relation(self, i: int) -> int | None:
        return self._get(self._lines.relations, i)

    def other(self, i: int) -> int | None:
        return self._get(self._lines.others, i)


def _duplicate_ids(document: Document, path: str, at: _LineOf) -> list[Finding]:
    seen: dict[str, int | None] = {}
    found = []
    items = [(e.id, at.entity(i)) for i, e in enumerate(document.entities)]
    items += [(r.id, at.relation(i)) for i, r in enumerate(document.relations)]
    items += [(o.id, at.other(i)) for i, o in enumerate(document.others) if o.kind != "*"]
    for id_, line in items:
        if id_ in seen:
            first = f"line {seen[id_]}" if seen[id_] is not None else "another line"
            found.append(error(path, line, "duplicate-id",
                               f"id {id_} is already used on {first}; give one of them a new id"))
        else:
            seen[id_] = line
    return found


# Percent signs are punctuation to Unicode but part of a Quantifier ("70%") to the guideline.
_KEEP_AT_EDGE = frozenset("%％‰")


def _is_edge_noise(ch: str) -> bool:
    return ch.isspace() or (unicodedata.category(ch).startswith("P") and ch not in _KEEP_AT_EDGE)


def _entity_findings(document: Document, schema: Schema, path: str,
                     at: _LineOf) -> list[Finding]:
    text = document.text
    sentences = sentence_boundaries(text)
    starts = [s for s, _ in sentences]
    known = set(schema.entity_types)
    found: list[Finding] = []
    in_bounds: list[tuple[Entity, int | None]] = []
    for i, e in enumerate(document.entities):
        line = at.entity(i)
        if e.type not in known:
            found.append(error(path, line, "unknown-entity-type",
                               f"{e.id}: type {e.type!r} is not in annotation.conf "
                               f"(known: {', '.join(schema.entity_types)}); fix the type"))
        if not e.is_contiguous:
            found.append(error(path, line, "discontinuous-span",
                               f"{e.id} has {len(e.spans)} fragments; the guideline wants one "
                               "contiguous span: split it into separate entities"))
        if any(s.start == s.end for s in e.spans):
            found.append(error(path, line, "empty-span",
                               f"{e.id} has an empty fragment; give it the characters it marks "
                               "or delete it"))
        last = max(s.end for s in e.spans)
        if last > len(text):
            found.append(error(path, line, "offset-out-of-range",
                               f"{e.id}: offset {last} is beyond the end of the text "
                               f"({len(text)} characters); fix the offsets against the .txt"))
            continue
        in_bounds.append((e, line))
        expected = " ".join(text[s.start:s.end] for s in e.spans)
        if e.text != expected:
            found.append(error(path, line, "text-mismatch",
                               f"{e.id}: recorded text {e.text!r} differs from the text at "
                               f"{e.start}-{e.end}, {expected!r}; fix the offsets or the text"))
        for s in e.spans:
            piece = text[s.start:s.end]
            if piece and (_is_edge_noise(piece[0]) or _is_edge_noise(piece[-1])):
                found.append(warning(path, line, "span-boundary",
                                     f"{e.id}: span {piece!r} starts or ends with white space "
                                     "or punctuation; trim the span"))
                break
        if e.is_contiguous and e.end > e.start and not _inside_one(starts, sentences, e):
            found.append(error(path, line, "entity-crosses-sentence",
                               f"{e.id} ({e.text!r}) runs across a sentence end (。；; or a line "
                               "break); an entity lies inside one sentence: fix the span"))
    found += _overlaps(in_bounds, path)
    return found


def _sentence_index(starts: list[int], offset: int) -> int:
    return bisect_right(starts, offset) - 1


def _inside_one(starts: list[int], sentences: list[tuple[int, int]], e: Entity) -> bool:
    i = _sentence_index(starts, e.start)
    return i >= 0 and e.end <= sentences[i][1]


def _overlaps(entities: list[tuple[Entity, int | None]], path: str) -> list[Finding]:
    fragments = sorted(((s.start, s.end, e.id, line) for e, line in entities for s in e.spans),
                       key=lambda f: (f[0], f[1]))
    found = []
    reported: set[tuple[str, str]] = set()
    open_: list[tuple[int, int, str, int | None]] = []  # fragments that may still overlap
    for start, end, id_, line in fragments:
        open_ = [f for f in open_ if f[1] > start]
        for _, _, other_id, other_line in open_:
            pair = tuple(sorted((id_, other_id)))
            if other_id != id_ and pair not in reported and end > start:
                reported.add(pair)  # type: ignore[arg-type]
                later = line if (line or 0) >= (other_line or 0) else other_line
                found.append(error(path, later, "overlapping-entities",
                                   f"{other_id} and {id_} overlap; the guideline wants "
                                   "non-overlapping spans: shorten or delete one"))
        if end > start:
            open_.append((start, end, id_, line))
    return found


def _relation_findings(document: Document, schema: Schema, path: str,
                       at: _LineOf) -> list[Finding]:
    entities = document.entities_by_id()
    # what a non-entity id is, so a wrong argument is named for what it is
    kinds = {o.id: _KIND_NAMES.get(o.kind, f"a {o.kind} annotation") for o in document.others}
    kinds.update({r.id: "a relation (R line)" for r in document.relations})
    starts = [s for s, _ in sentence_boundaries(document.text)]
    found = []
    for i, r in enumerate(document.relations):
        line = at.relation(i)
        rel_type = schema.relation(r.type)
        if rel_type is None:
            found.append(error(path, line, "unknown-relation-type",
                               f"{r.id}: relation {r.type!r} is not in annotation.conf "
                               f"(known: {', '.join(schema.relation_names)}); fix the type"))
        args = []
        for role, arg in (("Arg1", r.arg1), ("Arg2", r.arg2)):
            if arg in entities:
                args.append(entities[arg])
            elif arg in kinds:
                found.append(error(path, line, "argument-not-entity",
                                   f"{r.id}: {role} {arg} is {kinds[arg]}, not a text-bound (T) "
                                   "annotation; relations link entities: point it at a T id"))
            else:
                found.append(error(path, line, "missing-argument",
                                   f"{r.id}: {role} {arg} does not exist in this file; "
                                   "add the entity or fix the id"))
        if len(args) != 2:
            continue
        a1, a2 = args
        if rel_type is not None and not rel_type.allows(a1.type, a2.type):
            found.append(error(
                path, line, "wrong-argument-type",
                f"{r.id}: {r.type} goes from {'|'.join(sorted(rel_type.arg1_types))} to "
                f"{'|'.join(sorted(rel_type.arg2_types))}, not from {a1.type} ({a1.id}) to "
                f"{a2.type} ({a2.id}); swap the arguments or fix the type"))
        if _sentence_index(starts, a1.start) != _sentence_index(starts, a2.start):
            found.append(error(path, line, "cross-sentence-relation",
                               f"{r.id}: {a1.id} and {a2.id} are in different sentences "
                               "(。；; and line breaks end a sentence); relations never cross "
                               "sentences: delete the relation or fix the text"))
    return found


_KIND_NAMES = {"E": "an event (E line)", "A": "an attribute (A line)",
               "M": "an attribute (M line)", "N": "a normalization (N line)",
               "#": "an annotator note (# line)"}


def _other_findings(document: Document, schema: Schema, path: str,
                    at: _LineOf) -> list[Finding]:
    ids = {e.id for e in document.entities} | {r.id for r in document.relations}
    ids |= {o.id for o in document.others}
    events = schema.declared_names("events")
    attributes = schema.declared_names("attributes")
    found = []
    for i, o in enumerate(document.others):
        line = at.other(i)
        for target in _targets(o):
            if target not in ids:
                found.append(error(path, line, "missing-reference",
                                   f"{o.id}: refers to {target}, which does not exist in this "
                                   "file; fix the id or delete the line"))
        name = o.fields[0].split()[0] if o.fields and o.fields[0].split() else ""
        if o.kind == "E" and name.partition(":")[0] not in events:
            found.append(error(path, line, "unknown-event-type",
                               f"{o.id}: event type {name.partition(':')[0]!r} is not declared "
                               "under [events] in annotation.conf; fix the type or the schema"))
        if o.kind in "AM" and name not in attributes:
            found.append(error(path, line, "unknown-attribute-type",
                               f"{o.id}: attribute {name!r} is not declared under [attributes] "
                               "in annotation.conf; fix the name or the schema"))
    return found


def _targets(other: OtherAnnotation) -> tuple[str, ...]:
    try:
        return references(other)
    except ValueError:  # malformed lines were reported by the reader
        return ()
