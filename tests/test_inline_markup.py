from pathlib import Path

import pytest

from ingest.corpus import load_corpus
from ingest.inline_markup import MarkupError, parse_markup_file, parse_report, split_reports
from ingest.schema import load_schema

SCHEMA = load_schema()
ROOT = Path(__file__).resolve().parents[1]
CROSSSTYLE = ROOT / "data" / "crossstyle"


def _one(text: str):
    (report,) = split_reports(text, "x.markup")
    return parse_report(report, SCHEMA)


def test_offsets_point_at_the_marked_text_of_the_plain_report():
    doc = _one("=== r1\n# a comment\n\n{前降支|B1>L1}{近段|L1}{狭窄|D1>B1,Q1}约{70%|Q1}。\n"
               "{右冠|B2}{未见|N1}明显{狭窄|D2>B2,N1}\n\n")
    assert doc.text == "前降支近段狭窄约70%。\n右冠未见明显狭窄\n"
    assert [(e.type, doc.text[e.start:e.end]) for e in doc.entities] == [
        ("BodyPart", "前降支"), ("Location", "近段"), ("Degree", "狭窄"), ("Quantifier", "70%"),
        ("BodyPart", "右冠"), ("Negation", "未见"), ("Degree", "狭窄")]
    assert all(doc.text[e.start:e.end] == e.text for e in doc.entities)


def test_relation_names_come_from_the_schema_by_argument_types_in_either_text_order():
    doc = _one("=== r1\n{70%|Q1}{狭窄|D1>B1,Q1}，{LAD|B1}\n")
    by_id = doc.entities_by_id()
    got = {(r.type, by_id[r.arg1].text, by_id[r.arg2].text) for r in doc.relations}
    assert got == {("Modifier", "狭窄", "LAD"), ("Percentage", "狭窄", "70%")}


@pytest.mark.parametrize(("body", "message"), [
    ("{狭窄|D1>B9}", "B9, which no entity"),
    ("{狭窄|D1}{狭窄|D1}", "used twice"),
    ("{LAD|B1>Q1}{70%|Q1}", "no single relation from BodyPart to Quantifier"),
    ("{LAD|X1}", "letter must be one of"),
    ("{ LAD|B1}", "no edge white space"),
    ("LAD} 狭窄", "stray '}'"),
    ("{LAD|B1} | 狭窄", "stray '|'"),
])
def test_bad_markup_is_refused_with_the_file_line_and_what_to_fix(body, message):
    with pytest.raises(MarkupError, match=message) as caught:
        _one(f"=== r1\n\n{body}\n")
    assert str(caught.value).startswith("x.markup:3:")


def test_text_before_the_first_report_header_is_refused():
    with pytest.raises(MarkupError, match="before the first"):
        list(split_reports("前降支狭窄\n=== r1\n狭窄\n", "x.markup"))


def test_reports_split_on_headers_and_keep_their_comments():
    reports = list(split_reports("# file comment\n=== a\n# style: terse\nLAD\n=== b\nRCA\n"))
    assert [(r.report_id, r.comments, r.body) for r in reports] == [
        ("a", ("style: terse",), "LAD\n"), ("b", (), "RCA\n")]


@pytest.mark.parametrize("part", ["test", "dev"])
def test_the_committed_crossstyle_brat_files_equal_their_markup_and_validate(part):
    expected = parse_markup_file(CROSSSTYLE / "markup" / f"{part}.markup", SCHEMA)
    load = load_corpus(CROSSSTYLE / part, SCHEMA, policy="strict")
    assert load.findings == ()
    got = {d.doc_id: (d.text, d.entities, d.relations) for d in load.documents}
    stale = f"data/crossstyle/{part} is stale: rebuild it as data/crossstyle/README.md says"
    assert got == {d.doc_id: (d.text, d.entities, d.relations) for d in expected}, stale


def test_the_crossstyle_test_part_holds_at_least_forty_reports_apart_from_dev():
    test = parse_markup_file(CROSSSTYLE / "markup" / "test.markup", SCHEMA)
    dev = parse_markup_file(CROSSSTYLE / "markup" / "dev.markup", SCHEMA)
    assert len(test) >= 40 and len(dev) >= 15
    assert not {d.text for d in test} & {d.text for d in dev}


def test_markup_command_writes_brat_pairs(tmp_path, capsys):
    from flows.cli import main

    source = tmp_path / "a.markup"
    source.write_text("=== r1\n{LAD|B1}{狭窄|D1>B1}\n", encoding="utf-8")
    assert main(["markup", str(source), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "r1.txt").read_text(encoding="utf-8") == "LAD狭窄\n"
    assert "R1\tModifier Arg1:T2 Arg2:T1" in (tmp_path / "out" / "r1.ann").read_text("utf-8")
    source.write_text("=== r1\n{LAD|B1>B2}\n", encoding="utf-8")
    assert main(["markup", str(source), "--out", str(tmp_path / "out")]) == 2
    assert "a.markup:2" in capsys.readouterr().err
