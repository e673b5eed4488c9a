import json

from extraction.evaluate import (
    EvaluationReport,
    Prf,
    evaluate_documents,
    format_report,
    rc_confusion,
    score_items,
    score_ner,
    score_rc,
)
from ingest.document import Document, Entity, Relation, Span
from ingest.schema import load_schema

SCHEMA = load_schema()
TEXT = "前降支近段狭窄70%。"


def ent(i, t, s, e):
    return Entity(f"T{i}", t, (Span(s, e),), TEXT[s:e])


GOLD = Document(
    "d1", TEXT,
    entities=(ent(1, "BodyPart", 0, 3), ent(2, "Location", 3, 5), ent(3, "Degree", 5, 7),
              ent(4, "Quantifier", 7, 10)),
    relations=(Relation("R1", "Position", "T1", "T2"), Relation("R2", "Modifier", "T3", "T1"),
               Relation("R3", "Percentage", "T3", "T4")),
)


def test_prf_hand_computed():
    prf = Prf(tp=3, fp=1, fn=2)
    assert prf.precision == 0.75
    assert prf.recall == 0.6
    assert abs(prf.f1 - 2 * 0.75 * 0.6 / 1.35) < 1e-12
    assert Prf().f1 == 0.0


def test_score_items_counts_per_type_and_micro():
    gold = {("d", "A", 0, 1), ("d", "A", 2, 3), ("d", "B", 4, 5)}
    pred = {("d", "A", 0, 1), ("d", "B", 2, 3), ("d", "B", 4, 5)}
    scores = score_items(gold, pred, ["A", "B"])
    assert (scores.overall.tp, scores.overall.fp, scores.overall.fn) == (2, 1, 1)
    per = dict(scores.per_type)
    assert (per["A"].tp, per["A"].fp, per["A"].fn) == (1, 0, 1)
    assert (per["B"].tp, per["B"].fp, per["B"].fn) == (1, 1, 0)


def test_ner_needs_exact_type_start_and_end():
    pred = Document("d1", TEXT, entities=(
        ent(1, "BodyPart", 0, 3),  # exact
        ent(2, "Location", 3, 4),  # span too short
        ent(3, "Quantifier", 5, 7),  # wrong type
        ent(4, "Quantifier", 7, 10),  # exact
    ))
    scores = score_ner([GOLD], [pred], SCHEMA)
    assert (scores.overall.tp, scores.overall.fp, scores.overall.fn) == (2, 2, 2)
    assert scores.f1 == 0.5


def test_rc_with_predicted_entities_needs_both_spans_types_and_relation():
    pred = Document(
        "d1", TEXT,
        entities=(ent(1, "BodyPart", 0, 3), ent(2, "Location", 3, 4), ent(3, "Degree", 5, 7),
                  ent(4, "Quantifier", 7, 10)),
        relations=(Relation("R1", "Position", "T1", "T2"),  # arg2 span wrong -> miss
                   Relation("R2", "Modifier", "T3", "T1"),  # right
                   Relation("R3", "Negative", "T3", "T4")),  # wrong relation type
    )
    scores = score_rc([GOLD], [pred], SCHEMA)
    assert (scores.overall.tp, scores.overall.fp, scores.overall.fn) == (1, 2, 2)
    per = dict(scores.per_type)
    assert per["Modifier"].f1 == 1.0
    assert per["Negative"].fp == 1 and per["Percentage"].fn == 1


def test_confusion_counts_every_allowed_gold_pair_once():
    on_gold = Document("d1", TEXT, entities=GOLD.entities,
                       relations=(Relation("R1", "Position", "T1", "T2"),
                                  Relation("R2", "Percentage", "T3", "T4")))
    matrix = rc_confusion([GOLD], [on_gold], SCHEMA)
    # allowed pairs: BodyPart-Location, BodyPart-Degree, Degree-Quantifier (3 pairs)
    assert sum(sum(row.values()) for row in matrix.values()) == 3
    assert matrix["Position"]["Position"] == 1
    assert matrix["Modifier"]["NoRelation"] == 1
    assert matrix["Percentage"]["Percentage"] == 1


def test_report_has_the_papers_three_scores():
    report = evaluate_documents([GOLD], [GOLD], [GOLD], SCHEMA)
    data = report.to_dict()
    for key in ("ner", "rc_gold", "rc_predicted"):
        assert data[key]["f1"] == 1.0
        assert {"precision", "recall", "f1", "per_type"} <= set(data[key])
    assert "RC with predicted entities" in format_report(report)


def test_a_report_read_back_from_its_json_is_the_same_report():
    partial = Document("d1", TEXT, entities=GOLD.entities[:2], relations=())
    report = evaluate_documents([GOLD], [partial], [GOLD], SCHEMA)
    again = EvaluationReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report
    assert again.ner.recall == 0.5 and again.rc_predicted.f1 == 0.0


def test_a_report_written_before_a_score_existed_still_reads():
    old = EvaluationReport.from_dict({"documents": 3, "ner": {"tp": 2, "fp": 0, "fn": 2},
                                      "a_later_score": {"f1": 1.0}})
    assert old.documents == 3 and old.ner.recall == 0.5
    assert old.rc_gold.f1 == 0.0 and old.rc_gold.per_type == ()


def test_record_scores_match_on_the_analysts_key_and_align_pairs_by_mentions():
    from annotate import report

    first = "{v1:右冠状动脉}:{l1:开口}{d1:狭窄}{q1:50%}，{l2:近段}、{l3:中段}{d2:重度狭窄}。"
    second = "{v1:前降支}{l1:近段}{d1:狭窄}{q1:80%}"
    gold = [report(first, "d1>v1 d2>v1 v1>l1 v1>l2 v1>l3 d1>q1", "a"),
            report(second, "d1>v1 v1>l1 d1>q1", "b")]
    # The model misses one Position in each report: every entity right, 7 of 9 triples right.
    predicted = [report(first, "d1>v1 d2>v1 v1>l1 v1>l2 d1>q1", "a"),
                 report(second, "d1>v1 d1>q1", "b")]
    result = evaluate_documents(gold, predicted, predicted, SCHEMA)
    records = result.records
    # gold: RCA1 狭窄, RCA1 重度, RCA2 重度, LAD6 狭窄; predicted: RCA1 狭窄, RCA1 重度, LAD- 狭窄
    assert (records.overall.tp, records.overall.fp, records.overall.fn) == (2, 1, 2)
    assert result.ner.f1 == 1.0 and result.rc_predicted.f1 > 0.85 > records.f1
    assert records.aligned == 3  # RCA2 重度 has no predicted record left to pair with
    accuracy = dict(records.field_accuracy)
    assert accuracy["segments"] == 2 / 3 and accuracy["artery"] == 1.0
    assert accuracy["stenosis"] == 1.0 and accuracy["location_text"] == 2 / 3
    data = result.to_dict()["records"]
    assert data["matched_on"] == ["report_id", "artery", "segments", "finding", "stenosis",
                                  "negated"]
    assert data["field_accuracy"]["segments"] == 2 / 3 and data["fn"] == 2
    assert result.summary()["records_f1"] == records.f1
    assert "Records (matched on report_id, artery, segments" in format_report(result)
    # and the records' scores read back from the JSON with the rest
    assert EvaluationReport.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def _doc(doc_id, text, marks, relations):
    """marks: (type, surface) in text order; relations: (type, arg1 number, arg2 number)."""
    entities, at = [], 0
    for i, (kind, surface) in enumerate(marks, start=1):
        start = text.index(surface, at)
        at = start + len(surface)
        entities.append(Entity(f"T{i}", kind, (Span(start, at),), surface))
    return Document(doc_id, text, tuple(entities), tuple(
        Relation(f"R{k}", kind, f"T{a}", f"T{b}") for k, (kind, a, b) in enumerate(relations, 1)))


def test_type_only_baseline_relates_every_allowed_pair_and_pays_for_it_in_precision():
    from extraction.evaluate import type_only_baseline

    gold = _doc("d", "前降支狭窄，回旋支未见狭窄。无", [
        ("BodyPart", "前降支"), ("Degree", "狭窄"), ("BodyPart", "回旋支"), ("Negation", "未见"),
        ("Degree", "狭窄"), ("Negation", "无")],
        [("Modifier", 2, 1), ("Modifier", 5, 3), ("Negative", 5, 4)])
    scores = type_only_baseline([gold], SCHEMA)
    # six allowed pairs in the first sentence; the lone 无 of the second has none
    assert (scores.overall.tp, scores.overall.fp, scores.overall.fn) == (3, 3, 0)
    assert dict(scores.per_type)["Negative"] == Prf(1, 1, 0)
    report = evaluate_documents([gold], [gold], [gold], SCHEMA)
    assert report.rc_gold.f1 == 1.0 and report.rc_type_only.f1 == scores.f1
    assert report.to_dict()["rc_type_only"]["fp"] == 3
    assert "RC type-only baseline" in format_report(report)
    assert EvaluationReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_type_only_baseline_picks_the_most_frequent_relation_of_a_type_pair():
    from extraction.evaluate import type_only_baseline
    from ingest.schema import parse_schema

    schema = parse_schema("[entities]\nDegree\nBodyPart\n[relations]\n"
                          "Near Arg1:Degree, Arg2:BodyPart\nModifier Arg1:Degree, Arg2:BodyPart\n")
    marks = [("BodyPart", "前降支"), ("Degree", "狭窄")]
    gold = [_doc("a", "前降支狭窄", marks, [("Modifier", 2, 1)]),
            _doc("b", "前降支狭窄", marks, [("Modifier", 2, 1)]),
            _doc("c", "前降支狭窄", marks, [("Near", 2, 1)])]
    scores = type_only_baseline(gold, schema)
    assert dict(scores.per_type)["Modifier"] == Prf(2, 1, 0)
    assert dict(scores.per_type)["Near"] == Prf(0, 0, 1)
