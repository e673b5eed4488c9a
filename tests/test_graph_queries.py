"""The analysts' named queries on a small graph of hand-annotated reports (real LadybugDB)."""

from __future__ import annotations

import pytest
from export_samples import RUN_DATE
from graph_reports import (
    FINDINGS_PER_SEGMENT,
    MAX_STENOSIS,
    SEVERE_PROXIMAL_LAD,
    THREE_VESSEL_OR_LEFT_MAIN,
    documents,
)

from export import graph_model as gm
from export import parquet_sink as ps
from export.ladybug_store import LadybugStore
from ingest.schema import load_schema

RUN = ps.RunInfo("q-run", RUN_DATE, "m")


@pytest.fixture(scope="module", params=["merge", "bulk"])
def graph(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    docs = documents()
    with LadybugStore(folder / "graph.lbug", batch_size=7) as store:
        if request.param == "bulk":
            outcomes = [ps.ReportOutcome(d.doc_id, "ok") for d in docs]
            ps.write_run(folder / "data", RUN, ps.document_tables(docs, outcomes, load_schema(),
                                                                  RUN))
            store.load_run(folder / "data", RUN)
        else:
            store.load_documents(docs, load_schema(), RUN)
        yield store


def ask(store, name):
    return store.query(gm.QUERIES[name], gm.QUERY_DEFAULTS.get(name, {})).rows


def test_severe_proximal_lad_finds_every_spelling_and_range(graph):
    assert [r for (r,) in ask(graph, "severe-proximal-lad")] == SEVERE_PROXIMAL_LAD


def test_three_vessel_or_left_main_disease(graph):
    assert list(ask(graph, "three-vessel-or-left-main")) == THREE_VESSEL_OR_LEFT_MAIN


def test_max_stenosis_per_territory_per_report(graph):
    rows = ask(graph, "max-stenosis-per-territory")
    assert {r[0]: tuple(r[1:]) for r in rows} == MAX_STENOSIS


def test_findings_per_syntax_segment_in_syntax_order(graph):
    rows = ask(graph, "findings-per-syntax-segment")
    assert [r[0] for r in rows][:5] == ["1", "2", "3", "4", "5"]
    assert [r[0] for r in rows][11:15] == ["12", "12a", "12b", "13"]
    assert {segment: (findings, reports) for segment, _, _, findings, reports in rows} == (
        FINDINGS_PER_SEGMENT)
    assert rows[5][:3] == ("6", "LAD proximal", "LAD")


def test_findings_per_artery_and_segment_and_negated_per_report(graph):
    per = {(a, s): n for a, s, n in ask(graph, "findings-per-vessel-segment")}
    assert per[("LAD", "6")] == 6 and per[("LAD", None)] == 1 and per[("PDA", "15")] == 1
    assert ask(graph, "negated-per-report") == (("q04", 1, ["LAD"]),)
