import re
import unicodedata

import pytest

from ingest import generator_vocab as V
from ingest.corpus import load_corpus
from ingest.document import Document
from ingest.examples import document_examples
from ingest.generator import check_vocabulary, generate_corpus, generate_report
from ingest.schema import NO_RELATION, load_schema, parse_schema

SCHEMA = load_schema()
N = 300


@pytest.fixture(scope="module")
def reports() -> list[Document]:
    return [generate_report(i, seed=7) for i in range(N)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("generated")
    generate_corpus(120, seed=11, out_dir=root / "annotated")
    generate_corpus(30, seed=12, out_dir=root / "archive", annotated=False, prefix="arc")
    return root


def test_generated_corpus_passes_the_validator_with_zero_findings(corpus):
    load = load_corpus(corpus, SCHEMA, policy="strict")
    assert len(load.reports) == 150
    assert load.findings == ()
    assert sum(not d.annotated for d in load.documents) == 30


def test_written_files_read_back_as_the_generated_documents(corpus):
    load = load_corpus(corpus / "annotated", SCHEMA)
    by_id = {d.doc_id: d for d in load.documents}
    original = generate_report(5, seed=11)
    assert by_id[original.doc_id] == original
    assert not list((corpus / "archive").glob("*.ann"))


def test_a_report_depends_on_seed_and_index_only(reports):
    assert generate_report(123, seed=7) == reports[123]
    assert generate_report(123, seed=8) != reports[123]
    assert generate_report(124, seed=7) != reports[123]


def test_every_relation_lies_in_one_sentence_and_reaches_the_examples(reports):
    for doc in reports:
        examples = document_examples(doc, SCHEMA)
        labelled = sum(c.label != NO_RELATION for e in examples for c in e.candidates)
        assert labelled == len(doc.relations), doc.doc_id
        assert sum(len(e.mentions) for e in examples) == len(doc.entities), doc.doc_id


def _texts(reports, entity_type):
    return [e.text for d in reports for e in d.entities if e.type == entity_type]


def test_quantifiers_never_hold_yue_and_negations_are_only_the_cue(reports):
    quantifiers = _texts(reports, "Quantifier")
    assert not [q for q in quantifiers if "约" in q]
    assert set(_texts(reports, "Negation")) <= {"未见", "无", "未", "没有"}
    assert not [d for d in _texts(reports, "Degree") if "明显" in d]


def test_three_hundred_reports_show_every_phenomenon_of_the_guideline(reports):
    text = "\n".join(d.text for d in reports)
    quantifiers = _texts(reports, "Quantifier")
    degrees = set(_texts(reports, "Degree"))
    assert any(re.fullmatch(r"\d+%-\d+%", q) for q in quantifiers)          # 70%-80%
    assert any(re.fullmatch(r"\d+%[~～]\d+%", q) for q in quantifiers)      # 50%~60%
    assert any(q.endswith("以上") for q in quantifiers)                     # 90%以上
    assert "左右" in "".join(quantifiers) and re.search(r"约\d+[%％]左右", text)
    assert any("％" in q for q in quantifiers)
    assert re.search(r"未见明显狭窄", text) and re.search(r"(?<!未)无明显", text)
    assert {"重度狭窄", "完全闭塞", "次全闭塞", "斑块", "钙化", "管壁不规则", "心肌桥",
            "弥漫性病变", "再狭窄"} <= degrees
    for mark in ("：", ":", "，", ",", "；", ";"):
        assert mark in text, mark
    assert re.search(r"^(\d、)?左主干([（(]LM[)）])?[：:]", text, re.M)        # vessel sections
    assert re.search(r"^(结论|诊断|造影结论|造影诊断)[：:]", text, re.M)       # conclusions
    assert "穿刺右桡动脉成功。" in text                                        # no entities
    assert _has_coordination(reports)
    assert _has_finding_without_percentage(reports)
    assert _has_both_percentage_directions(reports)


def _has_coordination(reports):
    """A Degree with Modifier to two vessels, both with a Position to the same Location."""
    for doc in reports:
        modifiers = {}
        positions = {}
        for r in doc.relations:
            if r.type == "Modifier":
                modifiers.setdefault(r.arg1, set()).add(r.arg2)
            if r.type == "Position":
                positions.setdefault(r.arg2, set()).add(r.arg1)
        if any(len(v) >= 2 and any(v <= p for p in positions.values())
               for v in modifiers.values()):
            return True
    return False


def _has_finding_without_percentage(reports):
    return any(
        {r.arg1 for r in d.relations if r.type == "Modifier"}
        - {r.arg1 for r in d.relations if r.type in ("Percentage", "Negative")}
        for d in reports
    )


def _has_both_percentage_directions(reports):
    before = after = False
    for d in reports:
        for r in d.relations:
            if r.type == "Percentage":
                degree, quantifier = d.entity(r.arg1), d.entity(r.arg2)
                before |= quantifier.start < degree.start
                after |= degree.start < quantifier.start
    return before and after


def test_sentences_without_entities_occur(reports):
    empty = sum(not e.mentions for d in reports[:50] for e in document_examples(d, SCHEMA))
    assert empty > 50


def test_a_schema_without_the_generators_types_is_refused():
    conf = "[entities]\nBodyPart\nDegree\n[relations]\nModifier Arg1:Degree, Arg2:BodyPart\n"
    with pytest.raises(ValueError, match="Degree->Negation"):
        check_vocabulary(parse_schema(conf))


def test_bundled_sample_is_valid_and_equals_the_generators_output():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "data" / "sample"
    load = load_corpus(root, SCHEMA, policy="strict")
    assert load.findings == ()
    annotated = [d for d in load.documents if d.annotated]
    assert (len(annotated), len(load.documents) - len(annotated)) == (300, 2000)
    stale = "data/sample is stale: regenerate it as data/sample/README.md says"
    for index in (0, 150, 299):
        expected = generate_report(index, seed=7)
        got = next(d for d in annotated if d.doc_id.endswith(expected.doc_id))
        assert (got.text, got.entities, got.relations) == (
            expected.text, expected.entities, expected.relations
        ), stale
    archived = next(d for d in load.documents if d.doc_id.endswith("arc-001999"))
    assert archived.text == generate_report(1999, 1007, annotated=False, prefix="arc").text, stale


def test_relation_names_come_from_the_schema_by_argument_types():
    conf = ("[entities]\nNegation\nBodyPart\nDegree\nQuantifier\nLocation\n[relations]\n"
            "Neg Arg1:Degree, Arg2:Negation\nMod Arg1:Degree, Arg2:BodyPart\n"
            "Pos Arg1:BodyPart, Arg2:Location\nPct Arg1:Degree, Arg2:Quantifier\n")
    schema = parse_schema(conf)
    renamed = [generate_report(i, seed=7, schema=schema) for i in range(40)]
    assert {r.type for d in renamed for r in d.relations} == {"Neg", "Mod", "Pos", "Pct"}
    original = [generate_report(i, seed=7) for i in range(40)]
    assert [d.text for d in renamed] == [d.text for d in original]


def _folded(text):
    return unicodedata.normalize("NFKC", text)


def test_vessel_and_segment_spellings_are_only_those_of_the_vocabulary(reports):
    """Typos never touch a BodyPart or Location: the records' synonym table maps every one."""
    assert {_folded(t) for t in _texts(reports, "BodyPart")} <= set(V.BODY_PART_SPELLINGS)
    assert {_folded(t) for t in _texts(reports, "Location")} <= set(V.LOCATION_SPELLINGS)


def test_the_sample_writes_what_other_doctors_write(reports):
    text = "\n".join(d.text for d in reports)
    bodies = set(_texts(reports, "BodyPart"))
    locations = set(_texts(reports, "Location"))
    degrees = set(_texts(reports, "Degree"))
    # English abbreviations and the contract's other spellings
    assert {"LAD", "RCA", "LM", "LCX", "D1", "OM1", "PDA", "右冠脉", "后侧支"} <= bodies
    assert bodies & {"PLV", "PL", "PLB"}
    assert re.search(r"(前降支|左主干|回旋支|右冠状动脉)[（(](LAD|LM|LCX|LCx|RCA)[)）]", text)
    assert {"近端", "远端", "开口处", "末端", "体部"} <= locations
    assert {"管状狭窄", "节段性狭窄", "串联病变", "慢性完全闭塞", "瘤样扩张", "CTO"} <= degrees
    # homophone slips in lesion words, never in the guideline's words being lost entirely
    assert degrees & {"狭寨", "狭榨", "班块", "板块", "闭赛"}
    assert re.search("[Ａ-Ｚ]", text) and re.search("[０-９]", text)              # full width
    assert re.search(r"^(1、|1\.|（1）|\(1\)|①|１．)", text, re.M)            # numbered lists
    assert re.search(r"^(左冠状动脉|左冠)[：:]$", text, re.M)                      # headings
    assert re.search(r"分别(见)?\d+[%％]", text) or re.search(r"分别狭窄\d+", text)
    assert re.search(r"约\d+[%％]的", text) and "程度约为" in text
    assert "支架内" in text and "植入" in text and "残余" in text                  # stents
    assert re.search(r"^(CAG|Findings|CAG结果|冠脉造影):", text, re.M)            # terse notes


def test_sentences_that_name_several_vessels_leave_most_allowed_pairs_unrelated(reports):
    """NoRelation must be learnable: many allowed pairs are NOT related (issue 15)."""
    allowed = related = crowded = 0
    for doc in reports:
        for example in document_examples(doc, SCHEMA):
            vessels = sum(m.type == "BodyPart" for m in example.mentions)
            crowded += vessels >= 3
            for c in example.candidates:
                a, b = example.mentions[c.first], example.mentions[c.second]
                if SCHEMA.pair_allowed(a.type, b.type):
                    allowed += 1
                    related += c.label != NO_RELATION
    assert crowded >= 150
    assert related / allowed < 0.5, (related, allowed)
