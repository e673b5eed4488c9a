"""Reports annotated by hand as inline markup, turned into brat documents by computing offsets.

Hand-counted brat offsets are wrong sooner or later; an annotator writing reports from scratch
marks entities in the text instead and lets this module count. The format, one file holding
many reports:

    === cs-test-001
    # free comment lines (who wrote it, the style); not part of the text
    {前降支|B1>L1}{近段|L1}{狭窄|D1>B1,Q1}{70%|Q1}，{回旋支|B2}{未见|N1}明显{狭窄|D2>B2,N1}。

- `{TEXT|LABEL}` marks TEXT as an entity. LABEL is a type letter and a number, unique in the
  report: the letter says the type (`TYPE_LETTERS`, checked against the schema).
- `{TEXT|LABEL>A,B}` also relates the entity (Arg1) to the entities labelled A and B (Arg2,
  anywhere in the report). The relation's name is the one the schema allows between the two
  types in that direction, so markup never spells a relation name and cannot contradict the
  schema; a pair the schema allows no relation for, or two relations for, is an error.
- The report's text is everything after the header and comment lines up to the next `===`,
  blank lines at either end removed, ending with one line break. `{`, `}` and `|` cannot occur
  in report text.

Errors name the file and line and say what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.document import Document, Entity, Relation, Span
from ingest.schema import Schema

TYPE_LETTERS = {"B": "BodyPart", "L": "Location", "D": "Degree", "Q": "Quantifier",
                "N": "Negation"}
REPORT_HEADER = "=== "
_MARK = re.compile(r"\{([^{}|]*)\|([A-Z]\d+)(?:>([A-Z]\d+(?:,[A-Z]\d+)*))?\}")
_LABEL = re.compile(r"[A-Z]\d+")


class MarkupError(ValueError):
    """The markup cannot be turned into a valid document."""


@dataclass(frozen=True)
class MarkedReport:
    """One report of a markup file: its id, its comment lines and the marked-up body."""

    report_id: str
    comments: tuple[str, ...]
    body: str
    path: str
    first_line: int  # line number of the body's first line in the file


def split_reports(text: str, path: str = "<markup>") -> Iterator[MarkedReport]:
    """The reports of a markup file, in file order."""
    lines = text.splitlines()
    header_at = [i for i, line in enumerate(lines) if line.startswith(REPORT_HEADER)]
    leading = [line for line in lines[: header_at[0] if header_at else len(lines)]
               if line.strip() and not line.startswith("#")]
    if leading:
        raise MarkupError(f"{path}:1: text before the first '{REPORT_HEADER}ID' line; "
                          "start each report with one")
    for k, at in enumerate(header_at):
        report_id = lines[at][len(REPORT_HEADER):].strip()
        if not re.fullmatch(r"[A-Za-z0-9._-]+", report_id):
            raise MarkupError(f"{path}:{at + 1}: report id {report_id!r} must be letters, digits,"
                              " '.', '_' or '-'")
        end = header_at[k + 1] if k + 1 < len(header_at) else len(lines)
        body_at = at + 1
        comments = []
        while body_at < end and (lines[body_at].startswith("#") or not lines[body_at].strip()):
            if lines[body_at].startswith("#"):
                comments.append(lines[body_at][1:].strip())
            body_at += 1
        body = lines[body_at:end]
        while body and not body[-1].strip():
            body.pop()
        yield MarkedReport(report_id, tuple(comments), "\n".join(body) + "\n", path, body_at + 1)


def parse_report(report: MarkedReport, schema: Schema) -> Document:
    """The brat document a marked-up report stands for (offsets into the plain text)."""
    text_parts: list[str] = []
    length = 0
    entities: list[Entity] = []
    links: list[tuple[str, str, int]] = []  # arg1 label, arg2 label, line
    by_label: dict[str, Entity] = {}
    body = report.body
    at = 0

    def where(offset: int) -> str:
        return f"{report.path}:{report.first_line + body.count(chr(10), 0, offset)}"

    for match in _MARK.finditer(body):
        plain = body[at:match.start()]
        stray = next((ch for ch in "{}|" if ch in plain), None)
        if stray:
            raise MarkupError(f"{where(at + plain.index(stray))}: {report.report_id}: stray "
                              f"{stray!r}; an entity is written {{TEXT|B1}}")
        text_parts.append(plain)
        length += len(plain)
        surface, label, targets = match.group(1), match.group(2), match.group(3)
        entity_type = TYPE_LETTERS.get(label[0])
        if entity_type is None or entity_type not in schema.entity_types:
            raise MarkupError(f"{where(match.start())}: {report.report_id}: label {label}: the "
                              f"letter must be one of {sorted(TYPE_LETTERS)} for a schema type")
        if label in by_label:
            raise MarkupError(f"{where(match.start())}: {report.report_id}: label {label} is "
                              "used twice; number entities uniquely within a report")
        if not surface or surface != surface.strip():
            raise MarkupError(f"{where(match.start())}: {report.report_id}: {label} "
                              f"{surface!r}: an entity has text and no edge white space")
        entity = Entity(f"T{len(entities) + 1}", entity_type,
                        (Span(length, length + len(surface)),), surface)
        entities.append(entity)
        by_label[label] = entity
        for target in (targets.split(",") if targets else ()):
            links.append((label, target, match.start()))
        text_parts.append(surface)
        length += len(surface)
        at = match.end()
    rest = body[at:]
    stray = next((ch for ch in "{}|" if ch in rest), None)
    if stray:
        raise MarkupError(f"{where(at + rest.index(stray))}: {report.report_id}: stray "
                          f"{stray!r}; an entity is written {{TEXT|B1}}")
    text_parts.append(rest)
    relations: list[Relation] = []
    seen: set[tuple[str, str]] = set()
    for head, tail, offset in links:
        if tail not in by_label:
            raise MarkupError(f"{where(offset)}: {report.report_id}: {head} relates to {tail}, "
                              "which no entity of the report is labelled")
        if (head, tail) in seen:
            raise MarkupError(f"{where(offset)}: {report.report_id}: {head}>{tail} twice")
        seen.add((head, tail))
        arg1, arg2 = by_label[head], by_label[tail]
        name = schema.relation_from(arg1.type, arg2.type)
        if name is None:
            raise MarkupError(
                f"{where(offset)}: {report.report_id}: {head}>{tail}: the schema has no single "
                f"relation from {arg1.type} to {arg2.type}; Arg1 carries the '>' (a Degree to "
                "its Negation, BodyPart, Quantifier; a BodyPart to its Location)"
            )
        relations.append(Relation(f"R{len(relations) + 1}", name, arg1.id, arg2.id))
    return Document(report.report_id, "".join(text_parts), tuple(entities), tuple(relations))


def parse_markup_file(path: str | Path, schema: Schema) -> list[Document]:
    source = Path(path)
    reports = [parse_report(r, schema)
               for r in split_reports(source.read_text(encoding="utf-8"), str(source))]
    ids = [d.doc_id for d in reports]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise MarkupError(f"{source}: report ids used twice: {duplicates}")
    return reports
