"""Hand-annotated reports in one line each, for the record, summary and graph tests.

Not a test module. A report is written with its entities in braces and its relations listed by
entity name, as an annotator would mark them by the guideline:

    report("{v1:前降支}{l1:近段}{d1:狭窄}{q1:70%}", "d1>v1 v1>l1 d1>q1")

The name's letter gives the entity type (v BodyPart, l Location, d Degree, q Quantifier,
n Negation); a relation's type follows from its argument types, as the schema has exactly one
relation per pair (Degree>BodyPart Modifier, BodyPart>Location Position, Degree>Quantifier
Percentage, Degree>Negation Negative). Expected records are written as the contract's table
writes them: "RCA 1 狭窄 50", "LAD 6+7 弥漫性病变 -", "LM 5 狭窄 0 neg", "- - 闭塞 100".
"""

from __future__ import annotations

import re

from ingest.document import Document, Entity, Relation, Span

TYPES = {"v": "BodyPart", "l": "Location", "d": "Degree", "q": "Quantifier", "n": "Negation"}
RELATIONS = {("d", "v"): "Modifier", ("v", "l"): "Position", ("d", "q"): "Percentage",
             ("d", "n"): "Negative"}
_ENTITY = re.compile(r"\{([vldqn]\d+):([^{}]+)\}")


def report(marked: str, relations: str = "", doc_id: str = "r1") -> Document:
    """A gold Document from marked text and `a>b` relations (space-separated)."""
    parts, entities, ids = [], [], {}
    length, last = 0, 0
    for m in _ENTITY.finditer(marked):
        plain = marked[last:m.start()]
        parts.append(plain)
        length += len(plain)
        name, surface = m.group(1), m.group(2)
        entity_id = f"T{len(entities) + 1}"
        ids[name] = entity_id
        entities.append(Entity(entity_id, TYPES[name[0]], (Span(length, length + len(surface)),),
                               surface))
        parts.append(surface)
        length += len(surface)
        last = m.end()
    parts.append(marked[last:])
    rels = []
    for k, pair in enumerate(relations.split(), start=1):
        a, b = pair.split(">")
        rels.append(Relation(f"R{k}", RELATIONS[(a[0], b[0])], ids[a], ids[b]))
    return Document(doc_id, "".join(parts), tuple(entities), tuple(rels))


def expected(line: str) -> tuple:
    """"RCA 1 狭窄 50" -> ("RCA", ("1",), "狭窄", 50.0, False); "-" is empty or null."""
    fields = line.split()
    artery, segments, finding, stenosis = fields[:4]
    return (None if artery == "-" else artery,
            () if segments == "-" else tuple(segments.split("+")),
            finding,
            None if stenosis == "-" else float(stenosis),
            fields[4:] == ["neg"])


def as_expected(record) -> tuple:
    return (record.artery, record.segments, record.finding, record.stenosis, record.negated)
