"""Validation against annotation.conf and the guideline: one test per rule."""

import pytest

from ingest.brat_reader import parse_ann
from ingest.document import Document
from ingest.schema import load_schema, parse_schema
from ingest.validate import AnnLines, validate_document

SCHEMA = load_schema()
TEXT = "前降支近段狭窄70%。回旋支未见狭窄；\n右冠中段闭塞。"
GOOD_ANN = (
    "T1\tBodyPart 0 3\t前降支\n"
    "T2\tLocation 3 5\t近段\n"
    "T3\tDegree 5 7\t狭窄\n"
    "T4\tQuantifier 7 10\t70%\n"
    "R1\tPosition Arg1:T1 Arg2:T2\n"
    "R2\tModifier Arg1:T3 Arg2:T1\n"
    "R3\tPercentage Arg1:T3 Arg2:T4\n"
    "#1\tAnnotatorNotes T3\tchecked\n"
)


def check(ann: str, text: str = TEXT, schema=SCHEMA):
    parsed = parse_ann(ann, "r.ann")
    doc = Document("r", text, parsed.entities, parsed.relations, parsed.others)
    lines = AnnLines(parsed.entity_lines, parsed.relation_lines, parsed.other_lines)
    return parsed.findings + validate_document(doc, schema, "r.ann", lines)


def codes(findings):
    return [(f.line, f.code, f.severity) for f in findings]


def test_a_document_that_follows_the_guideline_has_no_findings():
    assert check(GOOD_ANN) == ()


@pytest.mark.parametrize(("extra", "expected"), [
    ("T9\tVessel 11 14\t回旋支", (9, "unknown-entity-type", "error")),
    ("R9\tCauses Arg1:T3 Arg2:T1", (9, "unknown-relation-type", "error")),
    ("T9\tLocation 40 42\t段闭", (9, "offset-out-of-range", "error")),
    ("T9\tBodyPart 11 14\t前降支", (9, "text-mismatch", "error")),
    ("T9\tBodyPart 11 13;14 15\t回旋 未", (9, "discontinuous-span", "error")),
    ("T9\tDegree 10 13\t。回旋", (9, "span-boundary", "warning")),
    ("R9\tModifier Arg1:T1 Arg2:T3", (9, "wrong-argument-type", "error")),
    ("R9\tModifier Arg1:T3 Arg2:T7", (9, "missing-argument", "error")),
    ("R9\tModifier Arg1:T3 Arg2:#1", (9, "argument-not-entity", "error")),
    ("T1\tBodyPart 11 14\t回旋支", (9, "duplicate-id", "error")),
    ("A9\tUncertain T3", (9, "unknown-attribute-type", "error")),
    ("E9\tProcess:T3", (9, "unknown-event-type", "error")),
    ("T9\tDegree 14 14\t", (9, "empty-span", "error")),
])
def test_each_rule_gives_one_finding_on_the_offending_line(extra, expected):
    findings = check(GOOD_ANN + extra + "\n")
    assert expected in codes(findings)
    assert all(f.path == "r.ann" and f.message for f in findings)


def test_overlapping_entities_are_reported_on_the_later_line():
    findings = check(GOOD_ANN + "T9\tDegree 6 8\t窄7\n")
    assert (9, "overlapping-entities", "error") in codes(findings)
    assert "T3 and T9" in next(f.message for f in findings if f.code == "overlapping-entities")


def test_relation_across_a_sentence_end_is_an_error():
    ann = GOOD_ANN + "T5\tDegree 16 18\t狭窄\nR4\tModifier Arg1:T5 Arg2:T1\n"
    assert codes(check(ann)) == [(10, "cross-sentence-relation", "error")]


def test_line_break_ends_a_sentence_for_relations_too():
    ann = "T1\tBodyPart 20 22\t右冠\nT2\tDegree 15 17\t未见\nR1\tModifier Arg1:T2 Arg2:T1\n"
    found = codes(check(ann))
    assert (3, "cross-sentence-relation", "error") in found


def test_entity_running_across_a_sentence_end_is_an_error():
    assert codes(check("T1\tDegree 8 12\t0%。回\n")) == [(1, "entity-crosses-sentence", "error")]


@pytest.mark.parametrize(("line", "target"), [
    ("A1\tNegated T8", "T8"), ("#1\tAnnotatorNotes R7\tx", "R7"),
    ("N1\tReference T8 UMLS:C1\tx", "T8"), ("E1\tProcess:T1 Theme:T8", "T8"),
    ("*\tEquiv T1 T8", "T8"),
])
def test_references_to_missing_ids_are_errors(line, target):
    schema = parse_schema(SCHEMA.source_text + "\nProcess Theme:BodyPart\n[attributes]\nNegated\n")
    missing = [f for f in check(GOOD_ANN.replace("#1\tAnnotatorNotes T3\tchecked\n", "")
                                + line + "\n", schema=schema) if f.code == "missing-reference"]
    assert [(f.line, target in f.message) for f in missing] == [(8, True)]


def test_event_and_attribute_names_come_from_the_schema_file():
    schema = parse_schema(SCHEMA.source_text.replace("[attributes]", "[attributes]\nUncertain"))
    assert schema.declared_names("attributes") == {"Uncertain"}
    assert check(GOOD_ANN + "A1\tUncertain T3\n", schema=schema) == ()


def test_percent_sign_at_a_span_edge_is_not_punctuation_noise():
    assert "span-boundary" not in [f.code for f in check(GOOD_ANN)]


@pytest.mark.parametrize(("argument", "named"), [
    ("R1", "R1 is a relation (R line)"), ("#1", "#1 is an annotator note (# line)"),
])
def test_a_relation_pointing_at_another_annotation_says_what_that_annotation_is(argument, named):
    findings = check(GOOD_ANN + f"R9\tModifier Arg1:T3 Arg2:{argument}\n")
    (wrong,) = [f for f in findings if f.line == 9]
    assert wrong.code == "argument-not-entity" and named in wrong.message
    assert "does not exist" not in wrong.message and "point it at a T id" in wrong.message


@pytest.mark.parametrize("newline", ["\r", "\r\n", "\n"])
def test_a_cr_only_ann_is_read_line_by_line_like_lf_and_crlf(newline):
    findings = check(GOOD_ANN.replace("\n", newline) + "T9\tBodyPart 11 14\t前降支" + newline)
    assert codes(findings) == [(9, "text-mismatch", "error")]
    assert "前降支" in findings[0].message and "R1" not in findings[0].message
