"""The .ann parser: every line kind kept in file order; malformed lines become findings."""

import pytest

from ingest.brat_reader import parse_ann
from ingest.document import OtherAnnotation, Span

ANN = (
    "T1\tBodyPart 0 3\t前降支\n"
    "T2\tSegmentMention 0 3;7 9\t前降支 近段\n"
    "R1\tModifier Arg1:T4 Arg2:T1\n"
    "R2\tPosition Arg2:T3 Arg1:T1\t\n"
    "E1\tGene_expression:T1 Theme:T2 \n"
    "A1\tUncertain T4\n"
    "M1\tSeverity T4 Moderate\n"
    "N1\tReference T1 UMLS:C0226032\t前降支\n"
    "#1\tAnnotatorNotes R2\tcoordination  \n"
    "*\tEquiv T1 T2\n"
)


def test_entities_relations_and_others_are_read_in_file_order():
    parsed = parse_ann(ANN, "x.ann")
    assert parsed.findings == ()
    assert [e.id for e in parsed.entities] == ["T1", "T2"]
    assert parsed.entities[1].spans == (Span(0, 3), Span(7, 9))
    assert parsed.entities[1].text == "前降支 近段"
    assert [(r.id, r.arg1, r.arg2) for r in parsed.relations] == [
        ("R1", "T4", "T1"), ("R2", "T1", "T3")]
    assert [o.kind for o in parsed.others] == ["E", "A", "M", "N", "#", "*"]
    assert parsed.entity_lines == (1, 2) and parsed.relation_lines == (3, 4)
    assert parsed.other_lines == (5, 6, 7, 8, 9, 10)


def test_other_lines_keep_their_fields_verbatim():
    others = parse_ann(ANN).others
    assert others[4] == OtherAnnotation("#", "#1", ("AnnotatorNotes R2", "coordination  "))
    assert others[0].fields == ("Gene_expression:T1 Theme:T2 ",)
    assert others[5] == OtherAnnotation("*", "*", ("Equiv T1 T2",))


def test_crlf_ann_and_blank_lines_parse_like_lf():
    crlf = parse_ann(ANN.replace("\n", "\r\n") + "\r\n\n")
    lf = parse_ann(ANN)
    assert (crlf.entities, crlf.relations, crlf.others) == (lf.entities, lf.relations, lf.others)


def test_entity_text_may_contain_a_tab():
    entity = parse_ann("T1\tDegree 0 3\ta\tb\n").entities[0]
    assert entity.text == "a\tb"


MALFORMED = [
    ("T1 BodyPart 0 3 前降支", "missing-tab"),
    ("T1\tBodyPart 0 3", "missing-text-field"),
    ("T1\t 0 3\tx", "missing-type"),
    ("T1\tBodyPart 0 x\tx", "bad-offsets"),
    ("T1\tBodyPart 0 3;5\tx", "bad-offsets"),
    ("T1\tBodyPart 5 3\tx", "bad-offsets"),
    ("T1\tBodyPart -1 3\tx", "bad-offsets"),
    ("R1\tModifier Arg1:T1", "bad-relation"),
    ("R1\tModifier Arg1:T1 Arg3:T2", "bad-relation"),
    ("R1\tModifier Arg1:T1 Arg1:T2", "bad-relation"),
    ("R1\tModifier T1 T2", "bad-relation"),
    ("E1\tProcess", "bad-event"),
    ("A1\tUncertain", "bad-attribute"),
    ("M1\tA B C D", "bad-attribute"),
    ("N1\tReference T1\tx", "bad-normalization"),
    ("#1\tAnnotatorNotes\tnote", "bad-note"),
    ("*\tEquiv T1", "bad-equivalence"),
    ("*1\tEquiv T1 T2", "bad-id"),
    ("T:1\tBodyPart 0 3\t前降支", "bad-id"),
    ("X1\tSomething", "unknown-line-kind"),
]


@pytest.mark.parametrize(("line", "code"), MALFORMED)
def test_malformed_line_is_a_finding_with_file_and_line_and_the_rest_is_kept(line, code):
    text = "T9\tBodyPart 0 3\t前降支\n\n" + line + "\nR9\tModifier Arg1:T8 Arg2:T9\n"
    parsed = parse_ann(text, "dir/r1.ann")
    assert [(f.path, f.line, f.code, f.severity) for f in parsed.findings] == [
        ("dir/r1.ann", 3, code, "error")]
    assert "fix or delete the line" in parsed.findings[0].message
    assert [e.id for e in parsed.entities] == ["T9"]
    assert [r.id for r in parsed.relations] == ["R9"]


def test_a_tab_inside_a_note_stays_in_the_note():
    parsed = parse_ann("T1\tDegree 0 2\t狭窄\n#1\tAnnotatorNotes T1\tsee\tcol 2\n"
                       "N1\tReference T1 UMLS:C1\tstenosis\t(narrowing)\n")
    assert parsed.findings == ()
    assert [o.fields for o in parsed.others] == [
        ("AnnotatorNotes T1", "see\tcol 2"), ("Reference T1 UMLS:C1", "stenosis\t(narrowing)")]
