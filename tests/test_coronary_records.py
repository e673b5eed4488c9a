"""Records of hand-annotated sentences against records written by hand from the contract.

Every expected list below was written from ../shared/schema/coronary-tree.md (its rules, its
worked examples, and docs/records.md where the contract is silent), not from the code's output.
Each line is (artery, segments, finding, stenosis, negated) as the contract's table writes it.
"""

from __future__ import annotations

import pytest
from annotate import as_expected, expected, report

from ingest.records import records_from_document, unmapped_spellings
from ingest.schema import load_schema

SCHEMA = load_schema()

CASES = [
    # --- the contract's worked examples, row by row ---------------------------------------
    ("contract-1-location-list-and-two-findings",
     "{v1:右冠状动脉}:{l1:开口}{d1:狭窄}{q1:50%}，{l2:近段}、{l3:中段}{d2:重度狭窄}。",
     "d1>v1 d2>v1 v1>l1 v1>l2 v1>l3 d1>q1",
     ["RCA 1 狭窄 50", "RCA 1 重度狭窄 -", "RCA 2 重度狭窄 -"]),
    ("contract-2-junction-is-two-segments",
     "{v1:前降支}{l1:近段}{d1:管壁不规则}，{l2:近中段}交界处{d2:局限性狭窄}{q1:75%}",
     "d1>v1 d2>v1 v1>l1 v1>l2 d2>q1",
     ["LAD 6 管壁不规则 -", "LAD 6+7 局限性狭窄 75"]),
    ("contract-3-negated-stenosis-is-zero",
     "{v1:右冠}{l1:中段}见{d1:瘤样扩张}，{l2:远段}{n1:无}{d2:狭窄}。",
     "d1>v1 d2>v1 v1>l1 v1>l2 d2>n1",
     ["RCA 2 瘤样扩张 -", "RCA 3 狭窄 0 neg"]),
    ("contract-4-coordination",
     "{v1:前降支}及{v2:回旋支}{l1:近段}{d1:狭窄}{q1:50%}",
     "d1>v1 d1>v2 v1>l1 v2>l1 d1>q1",
     ["LAD 6 狭窄 50", "LCX 11 狭窄 50"]),
    ("contract-5-left-main-negated",
     "{v1:左主干}{n1:未见}明显{d1:狭窄}",
     "d1>v1 d1>n1",
     ["LM 5 狭窄 0 neg"]),
    ("contract-6-english-abbreviation-and-worst-point",
     "{v1:LAD}{l1:近中段}{d1:弥漫性病变}，最重处{d2:狭窄}{q1:90%}",
     "d1>v1 d2>v1 v1>l1 d2>q1",
     ["LAD 6+7 弥漫性病变 -", "LAD 6+7 狭窄 90"]),
    ("contract-7-range-ostium-to-proximal",
     "{v1:前降支}{l1:开口}至{l2:近段}{d1:狭窄}{q1:80%}",
     "d1>v1 v1>l1 v1>l2 d1>q1",
     ["LAD 6 狭窄 80"]),
    ("contract-8-finding-before-its-location",
     "{v1:左前降支}：{d1:狭窄}约{q1:90%}，{l1:中段}可见{d2:心肌桥}",
     "d1>v1 d2>v1 v1>l1 d1>q1",
     ["LAD - 狭窄 90", "LAD 7 心肌桥 -"]),
    ("contract-9-backward-location-after-a-list",
     "{v1:回旋支}{l1:近段}和{l2:中段}可见{d1:斑块}，{d2:狭窄}约{q1:40%}，位于{l3:远段}",
     "d1>v1 d2>v1 v1>l1 v1>l2 v1>l3 d2>q1",
     ["LCX 11 斑块 -", "LCX 13 斑块 -", "LCX 13 狭窄 40"]),
    # --- the contract's other sentences -----------------------------------------------------
    ("negated-occlusion-before-any-location",
     "{v1:右冠状动脉}{n1:未见}{d1:闭塞}，{l1:远段}{d2:狭窄}约{q1:60%}",
     "d1>v1 d2>v1 v1>l1 d1>n1 d2>q1",
     ["RCA - 闭塞 0 neg", "RCA 3 狭窄 60"]),
    ("two-locations-one-segment-are-one-record",
     "{v1:左主干}{l1:开口}及{l2:体部}{n1:未见}{d1:狭窄}",
     "d1>v1 v1>l1 v1>l2 d1>n1",
     ["LM 5 狭窄 0 neg"]),
    ("respectively-pairs-percentages-with-vessels",
     "{v1:前降支}、{v2:回旋支}分别{d1:狭窄}{q1:50%}和{q2:75%}",
     "d1>v1 d1>v2 d1>q1 d1>q2",
     ["LAD - 狭窄 50", "LCX - 狭窄 75"]),
    ("several-percentages-without-respectively-take-the-highest",
     "{v1:前降支}{l1:中段}两处{d1:狭窄}，分别为{q1:50%}和{q2:70%}",
     "d1>v1 v1>l1 d1>q1 d1>q2",
     ["LAD 7 狭窄 70"]),
    # --- scoping ------------------------------------------------------------------------------
    ("zai-with-no-finding-before-scopes-forward",
     "{v1:右冠}在{l1:近段}可见{d1:狭窄}{q1:70%}",
     "d1>v1 v1>l1 d1>q1",
     ["RCA 1 狭窄 70"]),
    ("leiji-list-takes-the-finding-before-it",
     "{v1:前降支}{d1:弥漫性病变}，累及{l1:近段}和{l2:中段}",
     "d1>v1 v1>l1 v1>l2",
     ["LAD 6 弥漫性病变 -", "LAD 7 弥漫性病变 -"]),
    ("finding-after-a-backward-location-stays-there",
     "{v1:前降支}{d1:狭窄}{q1:70%}，位于{l1:近段}，伴{d2:钙化}",
     "d1>v1 d2>v1 v1>l1 d1>q1",
     ["LAD 6 狭窄 70", "LAD 6 钙化 -"]),
    ("several-findings-per-location",
     "{v1:右冠}{l1:近段}{d1:钙化}，{d2:狭窄}{q1:70%}，{d3:管壁不规则}",
     "d1>v1 d2>v1 d3>v1 v1>l1 d2>q1",
     ["RCA 1 钙化 -", "RCA 1 狭窄 70", "RCA 1 管壁不规则 -"]),
    ("a-comma-does-not-make-a-list",
     "{v1:前降支}{l1:近段}，{l2:中段}{d1:狭窄}{q1:60%}",
     "d1>v1 v1>l1 v1>l2 d1>q1",
     ["LAD 7 狭窄 60"]),
    ("list-then-next-location",
     "{v1:右冠}{l1:近段}、{l2:中段}{d1:斑块}，{l3:远段}{d2:狭窄}{q1:90%}",
     "d1>v1 d2>v1 v1>l1 v1>l2 v1>l3 d2>q1",
     ["RCA 1 斑块 -", "RCA 2 斑块 -", "RCA 3 狭窄 90"]),
    ("list-joined-by-yu",
     "{v1:右冠状动脉}{l1:近段}与{l2:远段}{d1:狭窄}{q1:50%}",
     "d1>v1 v1>l1 v1>l2 d1>q1",
     ["RCA 1 狭窄 50", "RCA 3 狭窄 50"]),
    ("coordination-each-vessel-its-own-location",
     "{v1:前降支}{l1:近段}及{v2:回旋支}{l2:中段}{d1:狭窄}{q1:50%}",
     "d1>v1 d1>v2 v1>l1 v2>l2 d1>q1",
     ["LAD 6 狭窄 50", "LCX 13 狭窄 50"]),
    ("sentences-keep-their-own-vessel-mentions",
     "{v1:前降支}{l1:近段}{d1:狭窄}{q1:70%}。结论：{v2:前降支}{l2:近段}{d2:狭窄}。",
     "d1>v1 v1>l1 d1>q1 d2>v2 v2>l2",
     ["LAD 6 狭窄 70", "LAD 6 狭窄 -"]),
    ("heading-vessel-and-its-branch",
     "{v1:左回旋支}：{l1:开口}{q1:70%-90%}{d1:狭窄}，{v2:钝缘支}{d2:狭窄}{q2:70%}；",
     "d1>v1 v1>l1 d1>q1 d2>v2 d2>q2",
     ["LCX 11 狭窄 90", "OM1 12a 狭窄 70"]),
    ("heading-vessel-with-locations-in-later-clauses",
     "{v1:右冠状动脉}：{n1:未见}{d1:斑块}，{l1:中段}{d2:钙化}，{l2:远段}{d3:狭窄}{q1:85%}",
     "d1>v1 d2>v1 d3>v1 v1>l1 v1>l2 d1>n1 d3>q1",
     ["RCA - 斑块 - neg", "RCA 2 钙化 -", "RCA 3 狭窄 85"]),
    # --- ranges and whole ---------------------------------------------------------------------
    ("range-dao-covers-both",
     "{v1:右冠状动脉}{l1:近段}到{l2:中段}{d1:狭窄}{q1:80%}",
     "d1>v1 v1>l1 v1>l2 d1>q1",
     ["RCA 1+2 狭窄 80"]),
    ("range-with-a-dash",
     "{v1:前降支}{l1:近段}-{l2:远段}{d1:弥漫性病变}",
     "d1>v1 v1>l1 v1>l2",
     ["LAD 6+7+8 弥漫性病变 -"]),
    ("range-covers-what-is-between",
     "{v1:右冠}{l1:开口}至{l2:远段}{d1:弥漫性病变}",
     "d1>v1 v1>l1 v1>l2",
     ["RCA 1+2+3 弥漫性病变 -"]),
    ("range-marked-as-one-location",
     "{v1:前降支}{l1:开口至近段}{d1:狭窄}{q1:80%}",
     "d1>v1 v1>l1 d1>q1",
     ["LAD 6 狭窄 80"]),
    ("whole-lad",
     "{v1:前降支}{l1:全程}{d1:弥漫性病变}",
     "d1>v1 v1>l1",
     ["LAD 6+7+8 弥漫性病变 -"]),
    ("whole-lcx-has-no-mid-segment",
     "{v1:左回旋支}{l1:全程}{d1:钙化}",
     "d1>v1 v1>l1",
     ["LCX 11+13 钙化 -"]),
    ("lcx-mid-is-13",
     "{v1:回旋支}{l1:中段}{d1:狭窄}{q1:60%}",
     "d1>v1 v1>l1 d1>q1",
     ["LCX 13 狭窄 60"]),
    ("rca-mid-distal",
     "{v1:RCA}{l1:中远段}{d1:狭窄}{q1:75%}",
     "d1>v1 v1>l1 d1>q1",
     ["RCA 2+3 狭窄 75"]),
    # --- artery ids and branches --------------------------------------------------------------
    ("left-main-any-location-is-5",
     "{v1:左主干}{l1:远段}{d1:狭窄}{q1:50%}",
     "d1>v1 v1>l1 d1>q1",
     ["LM 5 狭窄 50"]),
    ("branch-is-one-segment-whatever-the-location",
     "{v1:第一对角支}{l1:近段}{d1:狭窄}{q1:70%}",
     "d1>v1 v1>l1 d1>q1",
     ["D1 9 狭窄 70"]),
    ("unnumbered-diagonal-is-d1",
     "{v1:对角支}{d1:狭窄}{q1:60%}",
     "d1>v1 d1>q1",
     ["D1 9 狭窄 60"]),
    ("unnumbered-marginal-is-om1-and-occlusion-is-100",
     "{v1:钝缘支}{d1:闭塞}",
     "d1>v1",
     ["OM1 12a 闭塞 100"]),
    ("cto-is-a-total-occlusion",
     "{v1:LAD}{l1:开口}{d1:CTO}",
     "d1>v1 v1>l1",
     ["LAD 6 CTO 100"]),
    ("second-diagonal",
     "{v1:第二对角支}{l1:开口}{d1:狭窄}{q1:90%}",
     "d1>v1 v1>l1 d1>q1",
     ["D2 10 狭窄 90"]),
    ("second-marginal-subtotal-occlusion-is-99",
     "{v1:第二钝缘支}{d1:次全闭塞}",
     "d1>v1",
     ["OM2 12b 次全闭塞 99"]),
    ("ramus",
     "{v1:中间支}{d1:狭窄}{q1:40%}",
     "d1>v1 d1>q1",
     ["RI 12 狭窄 40"]),
    ("pda-under-assumed-right-dominance-is-4",
     "{v1:后降支}{d1:狭窄}{q1:80%}",
     "d1>v1 d1>q1",
     ["PDA 4 狭窄 80"]),
    ("pda-under-left-dominance-is-15",
     "冠脉分布呈左优势型。{v1:后降支}{d1:狭窄}{q1:80%}",
     "d1>v1 d1>q1",
     ["PDA 15 狭窄 80"]),
    ("plb-under-right-dominance-is-16",
     "冠脉呈右优势型。{v1:左室后支}{d1:狭窄}{q1:70%}",
     "d1>v1 d1>q1",
     ["PLB 16 狭窄 70"]),
    ("plb-under-left-dominance-is-14",
     "左优势型。{v1:后侧支}{d1:狭窄}{q1:70%}",
     "d1>v1 d1>q1",
     ["PLB 14 狭窄 70"]),
    ("balanced-is-segmented-as-right",
     "冠脉分布呈均衡型。{v1:后降支}{d1:狭窄}{q1:50%}",
     "d1>v1 d1>q1",
     ["PDA 4 狭窄 50"]),
    ("english-abbreviations",
     "{v1:LCx}{l1:近段}{d1:狭窄}{q1:70%}；{v2:LM}{n1:未见}{d2:狭窄}；{v3:D1}{d3:狭窄}{q2:60%}；"
     "{v4:D2}{d4:钙化}；{v5:OM1}{d5:狭窄}{q3:80%}；{v6:OM2}{d6:闭塞}；{v7:RI}{d7:斑块}；"
     "{v8:PDA}{d8:狭窄}{q4:50%}；{v9:PLV}{d9:狭窄}{q5:40%}；{v10:PL}{d10:斑块}；"
     "{v11:PLB}{d11:钙化}；{v12:ＲＣＡ}{l2:近段}{d12:狭窄}{q6:30%}",
     "d1>v1 v1>l1 d1>q1 d2>v2 d2>n1 d3>v3 d3>q2 d4>v4 d5>v5 d5>q3 d6>v6 d7>v7 d8>v8 d8>q4 "
     "d9>v9 d9>q5 d10>v10 d11>v11 d12>v12 v12>l2 d12>q6",
     ["LCX 11 狭窄 70", "LM 5 狭窄 0 neg", "D1 9 狭窄 60", "D2 10 钙化 -", "OM1 12a 狭窄 80",
      "OM2 12b 闭塞 100", "RI 12 斑块 -", "PDA 4 狭窄 50", "PLB 16 狭窄 40", "PLB 16 斑块 -",
      "PLB 16 钙化 -", "RCA 1 狭窄 30"]),
    ("arteries-without-syntax-segments",
     "{v1:间隔支}{d1:狭窄}{q1:50%}；{v2:锐缘支}{l1:近段}{d2:狭窄}{q2:60%}；{v3:圆锥支}{d3:斑块}；"
     "{v4:窦房结支}{d4:钙化}；{v5:左冠状动脉}{n1:未见}{d5:狭窄}",
     "d1>v1 d1>q1 d2>v2 v2>l1 d2>q2 d3>v3 d4>v4 d5>v5 d5>n1",
     ["SEPTAL - 狭窄 50", "AM - 狭窄 60", "CONUS - 斑块 -", "SAN - 钙化 -", "LCA - 狭窄 0 neg"]),
    ("bifurcation-names-the-artery-and-no-segment",
     "{v1:前降支}{l1:分叉处}{d1:狭窄}{q1:70%}",
     "d1>v1 v1>l1 d1>q1",
     ["LAD - 狭窄 70"]),
    # --- unmapped spellings -----------------------------------------------------------------
    ("unmapped-vessel-has-no-artery-and-no-segment",
     "{v1:大隐静脉桥}{l1:近段}{d1:闭塞}",
     "d1>v1 v1>l1",
     ["- - 闭塞 100"]),
    ("unmapped-location-keeps-the-artery",
     "{v1:前降支}{l1:第二段}{d1:狭窄}{q1:60%}",
     "d1>v1 v1>l1 d1>q1",
     ["LAD - 狭窄 60"]),
    # --- stenosis rules ---------------------------------------------------------------------
    ("upper-bound-of-a-range",
     "{v1:右冠}{l1:近段}{d1:狭窄}{q1:60%-70%}",
     "d1>v1 v1>l1 d1>q1",
     ["RCA 1 狭窄 70"]),
    ("open-percentage-above",
     "{v1:右冠}{l1:近段}{d1:狭窄}{q1:90%以上}",
     "d1>v1 v1>l1 d1>q1",
     ["RCA 1 狭窄 90"]),
    ("open-percentage-below",
     "{v1:右冠}{l1:中段}{d1:狭窄}{q1:50%以下}",
     "d1>v1 v1>l1 d1>q1",
     ["RCA 2 狭窄 50"]),
    ("written-percentage-beats-occlusion-word",
     "{v1:前降支}{l1:中段}{d1:次全闭塞}{q1:95%}；{v2:回旋支}{d2:完全闭塞}；{v3:右冠}{d3:闭塞}{q2:100%}",
     "d1>v1 v1>l1 d1>q1 d2>v2 d3>v3 d3>q2",
     ["LAD 7 次全闭塞 95", "LCX - 完全闭塞 100", "RCA - 闭塞 100"]),
    ("myocardial-bridge-and-systolic-compression-never-count",
     "{v1:前降支}{l1:中段}{d1:心肌桥}，收缩期压缩{q1:70%}；{v2:前降支}{l2:远段}{d2:肌桥}，"
     "收缩期{d3:狭窄}{q2:50%}，{l3:远段}{d4:狭窄}{q3:40%}",
     "d1>v1 v1>l1 d1>q1 d2>v2 d3>v2 d4>v2 v2>l2 v2>l3 d3>q2 d4>q3",
     ["LAD 7 心肌桥 -", "LAD 8 肌桥 -", "LAD 8 狭窄 -", "LAD 8 狭窄 40"]),
    ("a-percentage-makes-any-finding-count",
     "{v1:右冠}{l1:中段}{d1:弥漫性病变}，最重处{q1:90%}",
     "d1>v1 v1>l1 d1>q1",
     ["RCA 2 弥漫性病变 90"]),
    ("other-findings-are-recorded-not-counted",
     "{v1:回旋支}{l1:近段}{d1:斑块}，{n1:未见}{d2:钙化}",
     "d1>v1 d2>v1 v1>l1 d2>n1",
     ["LCX 11 斑块 -", "LCX 11 钙化 - neg"]),
    ("suspected-counts-as-written",
     "{v1:前降支}{l1:近段}可疑{d1:狭窄}{q1:50%}",
     "d1>v1 v1>l1 d1>q1",
     ["LAD 6 狭窄 50"]),
    ("in-stent-restenosis-counts",
     "{v1:右冠状动脉}{l1:中段}支架内{d1:再狭窄}{q1:40%}；{v2:前降支}支架内{n1:未见}{d2:再狭窄}",
     "d1>v1 v1>l1 d1>q1 d2>v2 d2>n1",
     ["RCA 2 再狭窄 40", "LAD - 再狭窄 0 neg"]),
    ("severity-word-without-percentage-has-no-number",
     "{v1:右冠}{l1:近段}{d1:重度狭窄}",
     "d1>v1 v1>l1",
     ["RCA 1 重度狭窄 -"]),
]


@pytest.mark.parametrize(("marked", "relations", "lines"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_records_follow_the_contract(marked, relations, lines):
    records = records_from_document(report(marked, relations), SCHEMA, model_version=None,
                                    run_id=None)
    assert [as_expected(r) for r in records] == [expected(line) for line in lines]


def test_there_are_at_least_forty_hand_written_cases():
    assert len(CASES) >= 40
    assert sum(len(c[3]) for c in CASES) >= 100


def test_record_keeps_the_spellings_and_the_range_text():
    [r] = records_from_document(
        report("{v1:前降支}{l1:开口}至{l2:近段}{d1:狭窄}{q1:80%}", "d1>v1 v1>l1 v1>l2 d1>q1"),
        SCHEMA, model_version=None, run_id=None)
    assert (r.vessel_text, r.location_text, r.vessel, r.segment) == (
        "前降支", "开口至近段", "前降支", "开口至近段")
    assert (r.segment_start, r.segment_end) == (3, 8)  # 开口 .. 近段
    assert (r.percentage_text, r.percentage_low, r.percentage_high) == ("80%", 80.0, 80.0)


def test_merged_locations_keep_both_spellings():
    [r] = records_from_document(
        report("{v1:左主干}{l1:开口}及{l2:体部}{n1:未见}{d1:狭窄}", "d1>v1 v1>l1 v1>l2 d1>n1"),
        SCHEMA, model_version=None, run_id=None)
    assert r.location_text == "开口、体部" and r.segments == ("5",)


def test_several_percentages_are_all_kept_in_the_text():
    [r] = records_from_document(
        report("{v1:前降支}{l1:中段}两处{d1:狭窄}，分别为{q1:50%}和{q2:70%}",
               "d1>v1 v1>l1 d1>q1 d1>q2"), SCHEMA, model_version=None, run_id=None)
    assert (r.percentage_text, r.percentage_low, r.percentage_high, r.stenosis) == (
        "50%、70%", 70.0, 70.0, 70.0)


@pytest.mark.parametrize(("text", "dominance", "assumed"), [
    ("冠脉分布呈右优势型。", "right", False),
    ("冠脉分布呈左优势型。", "left", False),
    ("冠脉分布呈均衡型。", "balanced", False),
    ("造影剂：碘海醇。", "right", True),
])
def test_every_record_carries_the_reports_dominance(text, dominance, assumed):
    [r] = records_from_document(report(text + "{v1:右冠}{d1:狭窄}{q1:50%}", "d1>v1 d1>q1"),
                                SCHEMA, model_version=None, run_id=None)
    assert (r.dominance, r.dominance_assumed) == (dominance, assumed)


def test_finding_ids_are_distinct_for_each_record_of_a_finding():
    records = records_from_document(report(*CASES[0][1:3]), SCHEMA, model_version=None,
                                    run_id=None)
    assert len({r.finding_id for r in records}) == len(records) == 3


def test_unmapped_spellings_are_listed_and_known_places_are_not():
    doc = report("{v1:大隐静脉桥}{l1:近段}{d1:闭塞}；{v2:前降支}{l2:第二段}{d2:狭窄}；"
                 "{v3:前降支}{l3:分叉处}{d3:狭窄}；{v4:大隐静脉桥}{d4:狭窄}",
                 "d1>v1 v1>l1 d2>v2 v2>l2 d3>v3 v3>l3 d4>v4")
    assert unmapped_spellings(doc) == {("BodyPart", "大隐静脉桥"): 2, ("Location", "第二段"): 1}
