"""report_summary of hand-annotated reports against summaries written by hand from the contract."""

from __future__ import annotations

from annotate import report

from ingest.records import records_from_document
from ingest.report_summary import ReportSummary, report_summary
from ingest.schema import load_schema

SCHEMA = load_schema()


def summarize(marked, relations, doc_id="r1"):
    doc = report(marked, relations, doc_id)
    records = records_from_document(doc, SCHEMA, model_version="m", run_id=None)
    return report_summary(doc, records, model_version="m")


def summary(report_id="r1", dominance="right", assumed=False, lm=(None, ()), lad=(None, ()),
            lcx=(None, ()), rca=(None, ()), occlusions=0, diseased=0, left_main=False):
    return ReportSummary(report_id, dominance, assumed, lm[0], lm[1], lad[0], lad[1], lcx[0],
                         lcx[1], rca[0], rca[1], occlusions, diseased, left_main, "m")


def test_three_vessel_disease_with_right_dominance():
    got = summarize(
        "冠脉分布呈右优势型。{v1:左主干}{n1:未见}明显{d1:狭窄}。"
        "{v2:前降支}{l1:近段}{d2:狭窄}{q1:80%}，{l2:中段}{d3:狭窄}{q2:50%}。"
        "{v3:回旋支}{l3:中段}{d4:狭窄}{q3:90%}。"
        "{v4:右冠状动脉}{l4:全程}{d5:弥漫性病变}，最重处{d6:狭窄}{q4:70%-80%}；{v5:后降支}{d7:闭塞}。",
        "d1>v1 d1>n1 d2>v2 v2>l1 d2>q1 d3>v2 v2>l2 d3>q2 d4>v3 v3>l3 d4>q3 "
        "d5>v4 d6>v4 v4>l4 d6>q4 d7>v5")
    # PDA counts for the RCA under right dominance: its occlusion is the RCA's maximum.
    assert got == summary(lm=(0.0, ("5",)), lad=(80.0, ("6",)), lcx=(90.0, ("13",)),
                          rca=(100.0, ("4",)), occlusions=1, diseased=3)


def test_left_dominance_moves_the_pda_to_the_lcx_and_left_main_disease():
    got = summarize(
        "左优势型。{v1:左主干}{d1:狭窄}{q1:60%}。{v2:后降支}{d2:次全闭塞}。{v3:右冠}{n1:未见}{d3:狭窄}。",
        "d1>v1 d1>q1 d2>v2 d3>v3 d3>n1")
    assert got == summary(dominance="left", lm=(60.0, ("5",)), lcx=(99.0, ("15",)),
                          rca=(0.0, ()), occlusions=0, diseased=1, left_main=True)


def test_a_report_without_findings_has_nulls_and_assumed_dominance():
    assert summarize("术后安返病房。", "") == summary(assumed=True)


def test_a_lesion_repeated_in_the_conclusion_is_one_occlusion():
    got = summarize(
        "{v1:前降支}{l1:近段}{d1:闭塞}。结论：{v2:前降支}{l2:近段}{d2:闭塞}，"
        "{v3:回旋支}{d3:闭塞}，{v4:右冠状动脉}{d4:完全闭塞}。",
        "d1>v1 v1>l1 d2>v2 v2>l2 d3>v3 d4>v4")
    assert got == summary(assumed=True, lad=(100.0, ("6",)), lcx=(100.0, ()),
                          rca=(100.0, ()), occlusions=3, diseased=3)


def test_thresholds_are_inclusive():
    got = summarize("{v1:左主干}{d1:狭窄}{q1:50%}，{v2:前降支}{d2:狭窄}{q2:70%}，"
                    "{v3:回旋支}{d3:狭窄}{q3:69%}",
                    "d1>v1 d1>q1 d2>v2 d2>q2 d3>v3 d3>q3")
    assert (got.diseased_vessels, got.left_main_disease) == (1, True)
    assert (got.max_stenosis_lm, got.max_stenosis_lad, got.max_stenosis_lcx) == (50.0, 70.0, 69.0)


def test_findings_without_a_stenosis_leave_the_territory_null():
    got = summarize("{v1:回旋支}{d1:斑块}；{v2:前降支}{l1:近段}{d2:重度狭窄}；"
                    "{v3:左冠状动脉}{n1:未见}{d3:狭窄}；{v4:右冠}{l2:中段}{d4:心肌桥}",
                    "d1>v1 d2>v2 v2>l1 d3>v3 d3>n1 d4>v4 v4>l2")
    # 斑块 and 重度狭窄 without a percentage state no number; LCA is no territory; a bridge never
    # counts: nothing is known about any territory's stenosis.
    assert got == summary(assumed=True)


def test_branches_count_for_their_territory():
    got = summarize("{v1:第二对角支}{d1:狭窄}{q1:75%}；{v2:前降支}{l1:中段}{d2:狭窄}{q2:40%}；"
                    "{v3:钝缘支}{d3:狭窄}{q3:30%}；{v4:锐缘支}{d4:狭窄}{q4:95%}",
                    "d1>v1 d1>q1 d2>v2 v2>l1 d2>q2 d3>v3 d3>q3 d4>v4 d4>q4")
    assert got == summary(assumed=True, lad=(75.0, ("10",)), lcx=(30.0, ("12a",)),
                          rca=(95.0, ()), diseased=2)
