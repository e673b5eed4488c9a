"""Records from hand-made documents, one per example sentence of the annotation guideline."""

from __future__ import annotations

import pytest

from ingest.document import Document, Entity, Relation, Span
from ingest.records import records_from_document
from ingest.schema import load_schema

SCHEMA = load_schema()


def doc(text, entities, relations, doc_id="r1"):
    """entities: (id, type, surface, occurrence); relations: (id, type, arg1, arg2, conf)."""
    ents = []
    for eid, etype, surface, nth in entities:
        start = -1
        for _ in range(nth + 1):
            start = text.index(surface, start + 1)
        ents.append(Entity(eid, etype, (Span(start, start + len(surface)),), surface))
    rels = [Relation(rid, rtype, a1, a2, conf) for rid, rtype, a1, a2, conf in relations]
    return Document(doc_id, text, tuple(ents), tuple(rels))


def kv(records):
    return [
        (r.vessel, r.segment, r.finding, r.percentage_text, r.percentage_low,
         r.percentage_high, r.negated)
        for r in records
    ]


def test_negated_finding_on_left_main_is_a_record():
    d = doc(
        "左主干未见明显狭窄。",
        [("T1", "BodyPart", "左主干", 0), ("T2", "Negation", "未见", 0),
         ("T3", "Degree", "狭窄", 0)],
        [("R1", "Modifier", "T3", "T1", None), ("R2", "Negative", "T3", "T2", None)],
    )
    [r] = records_from_document(d, SCHEMA, model_version=None, run_id=None)
    assert kv([r]) == [("左主干", None, "狭窄", None, None, None, True)]
    assert (r.degree_start, r.degree_end, r.vessel_start, r.vessel_end) == (7, 9, 0, 3)
    assert r.segment_start is None and r.confidence is None
    assert r.sentence == "左主干未见明显狭窄。"


def test_vessel_segment_finding():
    d = doc(
        "前降支近段狭窄",
        [("T1", "BodyPart", "前降支", 0), ("T2", "Location", "近段", 0),
         ("T3", "Degree", "狭窄", 0)],
        [("R1", "Modifier", "T3", "T1", None), ("R2", "Position", "T1", "T2", None)],
    )
    [r] = records_from_document(d, SCHEMA, model_version="m1", run_id="run1")
    assert kv([r]) == [("前降支", "近段", "狭窄", None, None, None, False)]
    assert (r.segment_start, r.segment_end) == (3, 5)
    assert (r.model_version, r.run_id) == ("m1", "run1")


@pytest.mark.parametrize("text", ["回旋支狭窄70%", "回旋支70%狭窄"])
def test_percentage_either_side_of_the_degree(text):
    d = doc(
        text,
        [("T1", "BodyPart", "回旋支", 0), ("T2", "Degree", "狭窄", 0),
         ("T3", "Quantifier", "70%", 0)],
        [("R1", "Modifier", "T2", "T1", None), ("R2", "Percentage", "T2", "T3", None)],
    )
    [r] = records_from_document(d, SCHEMA, model_version=None, run_id=None)
    assert kv([r]) == [("回旋支", None, "狭窄", "70%", 70.0, 70.0, False)]


def test_coordination_gives_one_record_per_vessel():
    d = doc(
        "前降支及回旋支近段狭窄50%",
        [("T1", "BodyPart", "前降支", 0), ("T2", "BodyPart", "回旋支", 0),
         ("T3", "Location", "近段", 0), ("T4", "Degree", "狭窄", 0),
         ("T5", "Quantifier", "50%", 0)],
        [("R1", "Modifier", "T4", "T1", 0.9), ("R2", "Modifier", "T4", "T2", 0.8),
         ("R3", "Position", "T1", "T3", 0.7), ("R4", "Position", "T2", "T3", 0.95),
         ("R5", "Percentage", "T4", "T5", 0.99)],
    )
    records = records_from_document(d, SCHEMA, model_version="m", run_id="x")
    assert kv(records) == [
        ("前降支", "近段", "狭窄", "50%", 50.0, 50.0, False),
        ("回旋支", "近段", "狭窄", "50%", 50.0, 50.0, False),
    ]
    assert [r.confidence for r in records] == [0.7, 0.8]
    assert len({r.finding_id for r in records}) == 2


def test_a_vessel_with_several_locations_is_no_cross_product():
    # The sentence: six records before (every finding at every location), three now.
    text = "右冠状动脉:开口狭窄50%，近段、中段重度狭窄。"
    d = doc(
        text,
        [("T1", "BodyPart", "右冠状动脉", 0), ("T2", "Location", "开口", 0),
         ("T3", "Degree", "狭窄", 0), ("T4", "Quantifier", "50%", 0),
         ("T5", "Location", "近段", 0), ("T6", "Location", "中段", 0),
         ("T7", "Degree", "重度狭窄", 0)],
        [("R1", "Modifier", "T3", "T1", None), ("R2", "Position", "T1", "T2", None),
         ("R3", "Percentage", "T3", "T4", None), ("R4", "Position", "T1", "T5", None),
         ("R5", "Position", "T1", "T6", None), ("R6", "Modifier", "T7", "T1", None)],
    )
    records = records_from_document(d, SCHEMA, model_version=None, run_id=None)
    assert [(r.segment, r.finding, r.percentage_text) for r in records] == [
        ("开口", "狭窄", "50%"), ("近段", "重度狭窄", None), ("中段", "重度狭窄", None)
    ]
    assert {r.sentence for r in records} == {text}


def test_sentence_is_the_one_holding_the_degree():
    text = "左主干未见狭窄。\n前降支中段狭窄70%-80%。"
    d = doc(
        text,
        [("T1", "BodyPart", "前降支", 0), ("T2", "Location", "中段", 0),
         ("T3", "Degree", "狭窄", 1), ("T4", "Quantifier", "70%-80%", 0)],
        [("R1", "Modifier", "T3", "T1", None), ("R2", "Position", "T1", "T2", None),
         ("R3", "Percentage", "T3", "T4", None)],
    )
    [r] = records_from_document(d, SCHEMA, model_version=None, run_id=None)
    assert r.sentence == "前降支中段狭窄70%-80%。"
    assert text[r.sentence_start:r.sentence_start + len(r.sentence)] == r.sentence
    assert text[r.degree_start:r.degree_end] == "狭窄" and r.degree_start == 14
    assert (r.percentage_low, r.percentage_high) == (70.0, 80.0)


def test_degree_without_modifier_gives_no_record_and_bad_relation_is_skipped():
    d = doc(
        "钙化",
        [("T1", "Degree", "钙化", 0)],
        [("R1", "Modifier", "T1", "T9", None)],
    )
    assert records_from_document(d, SCHEMA, model_version=None, run_id=None) == []


def test_relation_names_come_from_the_schema():
    from ingest.schema import parse_schema

    renamed = load_schema().source_text.replace("Modifier", "Affects")
    schema = parse_schema(renamed)
    d = doc(
        "前降支狭窄",
        [("T1", "BodyPart", "前降支", 0), ("T2", "Degree", "狭窄", 0)],
        [("R1", "Affects", "T2", "T1", None)],
    )
    assert kv(records_from_document(d, schema, model_version=None, run_id=None)) == [
        ("前降支", None, "狭窄", None, None, None, False)
    ]


def test_schema_without_a_modifier_relation_is_refused_with_what_to_fix():
    from ingest.roles import roles_from_schema
    from ingest.schema import parse_schema

    broken = parse_schema(load_schema().source_text.replace(
        "Modifier\tArg1:Degree, Arg2:BodyPart", "Modifier\tArg1:Degree, Arg2:Location"))
    with pytest.raises(ValueError, match="Arg1:Degree, Arg2:BodyPart"):
        roles_from_schema(broken)
