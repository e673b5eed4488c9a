"""A small graph of hand-annotated reports and what each named query must answer on it.

Not a test module: the LadybugDB test (test_graph_queries.py) and the Neo4j integration test
load the same reports and expect the same answers, written by hand from the contract.
"""

from __future__ import annotations

from annotate import report

# (report id, marked text, relations)
REPORTS = [
    ("q01", "{v1:前降支}{l1:近段}{d1:狭窄}{q1:80%}。", "d1>v1 v1>l1 d1>q1"),
    ("q02", "{v1:左前降支}{l1:开口}至{l2:近段}{d1:狭窄}{q1:70%}。", "d1>v1 v1>l1 v1>l2 d1>q1"),
    ("q03", "{v1:LAD}{l1:近中段}{d1:狭窄}{q1:90%}。", "d1>v1 v1>l1 d1>q1"),
    ("q04", "{v1:前降支}{l1:近段}{n1:未见}{d1:狭窄}，{l2:中段}{d2:狭窄}{q1:90%}。",
     "d1>v1 d1>n1 v1>l1 d2>v1 v1>l2 d2>q1"),
    ("q05", "{v1:前降支}：{d1:狭窄}约{q1:90%}，{l1:中段}可见{d2:心肌桥}。",
     "d1>v1 d2>v1 v1>l1 d1>q1"),
    ("q06", "{v1:前降支}{l1:近段}{d1:狭窄}{q1:60%-65%}。", "d1>v1 v1>l1 d1>q1"),
    ("q07", "冠脉分布呈右优势型。{v1:左主干}{d1:狭窄}{q1:50%}。"
     "{v2:回旋支}{l1:中段}{d2:狭窄}{q2:70%}。{v3:右冠状动脉}{d3:闭塞}。{v4:前降支}{l2:近段}{d4:狭窄}{q3:75%}。",
     "d1>v1 d1>q1 d2>v2 v2>l1 d2>q2 d3>v3 d4>v4 v4>l2 d4>q3"),
    ("q08", "{v1:右冠}{l1:近段}{d1:狭窄}{q1:90%}，{v2:回旋支}{d2:狭窄}{q2:80%}，"
     "{v3:前降支}{l2:中段}{d3:狭窄}{q3:70%}。",
     "d1>v1 v1>l1 d1>q1 d2>v2 d2>q2 d3>v3 v3>l2 d3>q3"),
    ("q09", "{v1:左主干}{l1:开口}{d1:狭窄}{q1:40%}，{v2:对角支}{d2:狭窄}{q2:90%}。",
     "d1>v1 v1>l1 d1>q1 d2>v2 d2>q2"),
    ("q10", "左优势型。{v1:后降支}{d1:闭塞}。{v2:前降支}{l1:远段}{d2:狭窄}{q1:70%}，"
     "{v3:回旋支}{l2:近段}{d3:狭窄}{q2:50%}。",
     "d1>v1 d2>v2 v2>l1 d2>q1 d3>v3 v3>l2 d3>q2"),
]


def documents():
    return [report(marked, relations, doc_id) for doc_id, marked, relations in REPORTS]


SEVERE_PROXIMAL_LAD = ["q01", "q02", "q03", "q07"]
THREE_VESSEL_OR_LEFT_MAIN = [("q07", 3, True), ("q08", 3, False)]
# report: (dominance, LM, LAD, LCX, RCA, diseased vessels)
MAX_STENOSIS = {
    "q01": ("right", None, 80.0, None, None, 1),
    "q02": ("right", None, 70.0, None, None, 1),
    "q03": ("right", None, 90.0, None, None, 1),
    "q04": ("right", None, 90.0, None, None, 1),
    "q05": ("right", None, 90.0, None, None, 1),
    "q06": ("right", None, 65.0, None, None, 0),
    "q07": ("right", 50.0, 75.0, 70.0, 100.0, 3),
    "q08": ("right", None, 70.0, 80.0, 90.0, 3),
    "q09": ("right", 40.0, 90.0, None, None, 1),
    "q10": ("left", None, 70.0, 100.0, None, 2),
}
# segment: (findings, reports) at it. q03's 近中段 is at 6 and 7; q04's negated stenosis is at 6.
FINDINGS_PER_SEGMENT = {
    "1": (1, 1), "2": (0, 0), "3": (0, 0), "4": (0, 0), "5": (2, 2), "6": (6, 6), "7": (4, 4),
    "8": (1, 1), "9": (1, 1), "10": (0, 0), "11": (1, 1), "12": (0, 0), "12a": (0, 0),
    "12b": (0, 0), "13": (1, 1), "14": (0, 0), "15": (1, 1), "16": (0, 0),
}
