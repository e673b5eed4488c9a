"""Hand-made documents shared by the export tests (no model needed)."""

from __future__ import annotations

import datetime as dt

from ingest.document import Document, Entity, Relation, ReportOutcome, Span


def make_doc(doc_id, text, entities, relations):
    """entities: (id, type, surface, occurrence); relations: (id, type, arg1, arg2, conf)."""
    ents = []
    for eid, etype, surface, nth in entities:
        start = -1
        for _ in range(nth + 1):
            start = text.index(surface, start + 1)
        ents.append(Entity(eid, etype, (Span(start, start + len(surface)),), surface, 0.9))
    rels = [Relation(rid, rtype, a1, a2, conf) for rid, rtype, a1, a2, conf in relations]
    return Document(doc_id, text, tuple(ents), tuple(rels), source=f"{doc_id}.txt")


def lad_doc(doc_id="r1", pct="80%"):
    """前降支近段狭窄<pct>；左主干未见明显狭窄。  (one finding, one negated finding)"""
    text = f"前降支近段狭窄{pct}；左主干未见明显狭窄。"
    return make_doc(
        doc_id, text,
        [("T1", "BodyPart", "前降支", 0), ("T2", "Location", "近段", 0),
         ("T3", "Degree", "狭窄", 0), ("T4", "Quantifier", pct, 0),
         ("T5", "BodyPart", "左主干", 0), ("T6", "Negation", "未见", 0),
         ("T7", "Degree", "狭窄", 1)],
        [("R1", "Modifier", "T3", "T1", 0.9), ("R2", "Position", "T1", "T2", 0.8),
         ("R3", "Percentage", "T3", "T4", 0.95), ("R4", "Modifier", "T7", "T5", 0.7),
         ("R5", "Negative", "T7", "T6", 0.6)],
    )


def coordination_doc(doc_id="r2"):
    text = "前降支及回旋支近段狭窄50%"
    return make_doc(
        doc_id, text,
        [("T1", "BodyPart", "前降支", 0), ("T2", "BodyPart", "回旋支", 0),
         ("T3", "Location", "近段", 0), ("T4", "Degree", "狭窄", 0),
         ("T5", "Quantifier", "50%", 0)],
        [("R1", "Modifier", "T4", "T1", 0.9), ("R2", "Modifier", "T4", "T2", 0.8),
         ("R3", "Position", "T1", "T3", 0.7), ("R4", "Position", "T2", "T3", 0.95),
         ("R5", "Percentage", "T4", "T5", 0.99)],
    )


NASTY_SENTENCE = (
    "=cmd|' /C calc'!A0 前降支狭窄 MATCH (n) DETACH DELETE n RETURN '\\\"}) // a,b\tc"
)


def nasty_doc(doc_id="r3"):
    """Report text holding Cypher, quotes, a backslash, a comma, a tab and formula starters."""
    text = NASTY_SENTENCE + "\n-1+2\t@x。"
    return make_doc(
        doc_id, text,
        [("T1", "BodyPart", "前降支", 0), ("T2", "Degree", "狭窄", 0)],
        [("R1", "Modifier", "T2", "T1", 0.5)],
    )


def outcomes_for(docs, extra=()):
    return [ReportOutcome(d.doc_id, "ok", None, d.source) for d in docs] + list(extra)


RUN_DATE = dt.date(2024, 5, 1)
