"""Parse brat standoff `.ann` text into `ingest.document` types. Our own small parser: none of
the installable brat libraries reads every feature correctly (docs/brat-library-evaluation.md).

Syntax (https://brat.nlplab.org/standoff.html), one annotation per line, fields split by TAB:
  T<n>  Type START END[;START END...]  text      text-bound; discontinuous fragments joined by ";"
  R<n>  Type Arg1:ID Arg2:ID [TAB]              binary relation (roles in either order)
  E<n>  Type:TRIGGER [Role:ID ...]              event
  A<n>/M<n>  Name TARGET [VALUE]                attribute (M is brat's legacy prefix)
  N<n>  Reference TARGET DB:ID  text            normalisation
  #<n>  AnnotatorNotes TARGET  note             annotator note
  *     Equiv ID ID [ID...]                     equivalence
`T` and `R` become `Entity` and `Relation`; every other kind becomes an `OtherAnnotation` kept
verbatim (fields exactly as written, trailing spaces included), so nothing is dropped.

Choices: a line ends at LF, CRLF or a lone CR, as brat's own reading has it (a `.ann` saved
with CRLF or by an old Mac tool with CR still parses line by line; `.ann` offsets refer to the
`.txt`, never to the `.ann`). Blank lines are skipped.
The text field of a `T` line is everything after the second TAB (a span may cover a TAB).
Parsing never raises: a line that cannot be understood becomes an error `Finding` with the file
and 1-based line number, and is left out of the document (the report is then quarantined with
its original files, so nothing is lost).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.document import Entity, OtherAnnotation, Relation, Span
from ingest.findings import Finding, error

OTHER_KINDS = frozenset("EAMN#*")
_OFFSETS = re.compile(r"\d+ \d+(?:;\d+ \d+)*")
_ID = re.compile(r"[^\s:]+")
# brat's server reads a .ann in Python's text mode: LF, CRLF and a lone CR (old Mac tools) all
# end a line, and nothing else does (str.splitlines would also split at U+2028, FS, VT, ...).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class ParsedAnn:
    """What one `.ann` file holds, in file order, with each item's 1-based line number
    (`entity_lines[i]` is the line of `entities[i]`, and so on) for findings downstream."""

    entities: tuple[Entity, ...]
    relations: tuple[Relation, ...]
    others: tuple[OtherAnnotation, ...]
    findings: tuple[Finding, ...]
    entity_lines: tuple[int, ...] = ()
    relation_lines: tuple[int, ...] = ()
    other_lines: tuple[int, ...] = ()


class _Malformed(ValueError):
    """Internal: a line that is not brat syntax; the message says what is expected."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_ann(text: str, path: str = "<ann>") -> ParsedAnn:
    """Parse the whole text of a `.ann` file. Never raises on bad content."""
    entities: list[Entity] = []
    relations: list[Relation] = []
    others: list[OtherAnnotation] = []
    lines: tuple[list[int], list[int], list[int]] = ([], [], [])
    findings: list[Finding] = []
    for number, line in enumerate(_LINE_BREAK.split(text), start=1):
        if not line.strip():
            continue
        try:
            item = parse_line(line)
        except _Malformed as exc:
            findings.append(error(path, number, exc.code,
                                  f"{exc}; fix or delete the line: {_shorten(line)}"))
            continue
        if isinstance(item, Entity):
            entities.append(item)
            lines[0].append(number)
        elif isinstance(item, Relation):
            relations.append(item)
            lines[1].append(number)
        else:
            others.append(item)
            lines[2].append(number)
    return ParsedAnn(tuple(entities), tuple(relations), tuple(others), tuple(findings),
                     tuple(lines[0]), tuple(lines[1]), tuple(lines[2]))


def parse_line(line: str) -> Entity | Relation | OtherAnnotation:
    """One non-blank `.ann` line (without its line ending). Raises `_Malformed`."""
    kind = line[0]
    if kind == "T":
        return _parse_entity(line)
    if kind == "R":
        return _parse_relation(line)
    if kind in OTHER_KINDS:
        return _parse_other(line)
    raise _Malformed(
        "unknown-line-kind",
        f"a brat line starts with T, R, E, A, M, N, # or *, not {kind!r}",
    )


def _split_id(line: str, expected: str) -> tuple[str, list[str]]:
    id_, *fields = line.split("\t")
    if not fields:
        raise _Malformed("missing-tab", f"expected {expected}, separated by TABs; found no TAB")
    if not _ID.fullmatch(id_):
        raise _Malformed("bad-id", f"id {id_!r} must be one word without ':'")
    return id_, fields


def _parse_entity(line: str) -> Entity:
    expected = "'T<n> TAB Type START END TAB text'"
    id_, _ = _split_id(line, expected)
    parts = line.split("\t", 2)
    if len(parts) < 3:
        raise _Malformed("missing-text-field", f"expected {expected}; the text field is missing")
    type_, _, offsets = parts[1].partition(" ")
    if not type_:
        raise _Malformed("missing-type", f"expected {expected}; the type is missing")
    if not _OFFSETS.fullmatch(offsets):
        raise _Malformed(
            "bad-offsets",
            f"offsets {offsets!r} must be 'START END' pairs of integers joined by ';'",
        )
    spans = []
    for fragment in offsets.split(";"):
        start, end = (int(x) for x in fragment.split(" "))
        if end < start:
            raise _Malformed("bad-offsets", f"fragment {fragment!r} ends before it starts")
        spans.append(Span(start, end))
    return Entity(id=id_, type=type_, spans=tuple(spans), text=parts[2])


def _parse_relation(line: str) -> Relation:
    expected = "'R<n> TAB Type Arg1:ID Arg2:ID'"
    id_, fields = _split_id(line, expected)
    # a trailing TAB (brat writes one) and anything after it is ignored, as brat does
    words = fields[0].split()
    if len(words) != 3:
        raise _Malformed("bad-relation", f"expected {expected}; found {len(words)} words")
    args: dict[str, str] = {}
    for word in words[1:]:
        role, sep, target = word.partition(":")
        if not sep or role not in ("Arg1", "Arg2") or not _ID.fullmatch(target) or role in args:
            raise _Malformed("bad-relation", f"expected {expected}; argument {word!r} is not "
                             "Arg1:ID or Arg2:ID")
        args[role] = target
    return Relation(id=id_, type=words[0], arg1=args["Arg1"], arg2=args["Arg2"])


TEXT_FIELD_KINDS = "#N"  # lines whose last field is free text


def _parse_other(line: str) -> OtherAnnotation:
    kind = line[0]
    id_, fields = _split_id(line, f"'{kind}... TAB ...'")
    if kind in TEXT_FIELD_KINDS:
        # The note (# and N lines) is everything after the second TAB, TABs included, as an
        # entity's text is: split there only, or a TAB in the note splits it into fields.
        fields = line.split("\t", 2)[1:]
    if kind == "*" and id_ != "*":
        raise _Malformed("bad-id", "an equivalence line's id is exactly '*'")
    other = OtherAnnotation(kind=kind, id=id_, fields=tuple(fields))
    references(other)  # raises _Malformed when the line's structure is wrong
    return other


def references(other: OtherAnnotation) -> tuple[str, ...]:
    """The annotation ids an E, A, M, N, # or * line points to (raises `_Malformed` if the
    line does not have its kind's shape)."""
    # whitespace-split as brat does: real files carry trailing spaces ("E3<TAB>Process:T20 ")
    words = other.fields[0].split() if other.fields else []
    kind = other.kind
    if kind == "E":
        pairs = [w.partition(":") for w in words]
        if not words or any(not sep or not a or not _ID.fullmatch(b) for a, sep, b in pairs):
            raise _Malformed("bad-event", "expected 'E<n> TAB Type:TRIGGER [Role:ID ...]'")
        return tuple(b for _, _, b in pairs)
    if kind in "AM":
        if len(words) not in (2, 3) or not all(words[:2]):
            raise _Malformed("bad-attribute", f"expected '{kind}<n> TAB Name TARGET [VALUE]'")
        return (words[1],)
    if kind == "N":
        if len(words) != 3 or not all(words) or ":" not in words[2]:
            raise _Malformed("bad-normalization",
                             "expected 'N<n> TAB Reference TARGET DB:ID TAB text'")
        return (words[1],)
    if kind == "#":
        if len(words) != 2 or not all(words):
            raise _Malformed("bad-note", "expected '#<n> TAB AnnotatorNotes TARGET TAB note'")
        return (words[1],)
    if kind == "*":
        if len(words) < 3 or not all(words):
            raise _Malformed("bad-equivalence", "expected '* TAB Equiv ID ID [ID ...]'")
        return tuple(words[1:])
    raise _Malformed("unknown-line-kind", f"no reference rule for {kind!r}")


def _shorten(line: str, limit: int = 80) -> str:
    return repr(line if len(line) <= limit else line[:limit] + "...")
