"""The graph-load ledger is keyed by what was published, not by run id: every publication is
loaded once, a run redone under its id included, and after each export the embedded LadybugDB
graph holds each report's current extraction (end to end: pipeline.run -> Parquet -> export_flow
-> LadybugDB, read back with Cypher)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from extraction_fakes import FakeExtractor
from graph_faults import clean_load, graph_contents

from export.current import read_current
from export.graph_stores import LADYBUG_DB, store_key
from export.ladybug_store import LadybugStore
from export.published import publications, published_runs
from flows.export_flow import export_flow
from flows.parameters import ExportParams
from flows.state import RunLayout, read_graph_ledger, record_graph_loaded
from pipeline.run import RunSettings, run
from pipeline.sinks import ParquetSink

LAD, RCA = "前降支近段狭窄70%。", "右冠中段狭窄50%。"
VESSEL = {LAD: "前降支", RCA: "右冠"}


def _night(layout: RunLayout, archive: Path, texts: dict[str, str], run_id: str | None = None):
    """Extract `texts` (the archive now holds exactly these) and load the graph, as a night."""
    archive.mkdir(parents=True, exist_ok=True)
    for old in archive.glob("*.txt"):
        old.unlink()
    for report_id, text in texts.items():
        (archive / f"{report_id}.txt").write_text(text, encoding="utf-8")
    summary = run(archive, ParquetSink(layout.extract), FakeExtractor(),
                  RunSettings(run_id=run_id, shard_reports=2))
    exported = export_flow(**ExportParams(out=layout.root, graph="ladybug",
                                          retries=0).arguments())
    return summary, exported


def _graph(layout: RunLayout) -> dict[str, tuple[str, frozenset[str]]]:
    """Per report in the graph: the run its node says it came from and its vessels."""
    with LadybugStore(layout.graph / LADYBUG_DB, read_only=True) as graph:
        reports = graph.query("MATCH (r:Report) RETURN r.id, r.run_id").rows
        mentions = graph.query("MATCH (r:Report)-[:MENTIONS]->(m:Mention) "
                               "WHERE m.type = 'BodyPart' RETURN r.id, m.text").rows
    vessels: dict[str, set[str]] = {}
    for report_id, text in mentions:
        vessels.setdefault(report_id, set()).add(text)
    return {rid: (run_id, frozenset(vessels.get(rid, ()))) for rid, run_id in reports}


def _current(layout: RunLayout) -> dict[str, tuple[str, frozenset[str]]]:
    """The same, from the Parquet current view (`export.current`)."""
    reports = read_current(layout.extract, "reports").to_pandas()
    entities = read_current(layout.extract, "entities").to_pandas()
    vessels = entities[entities["type"] == "BodyPart"].groupby("report_id")["text"]
    texts = {rid: frozenset(group) for rid, group in vessels}
    return {row.report_id: (str(row.run_id), texts.get(row.report_id, frozenset()))
            for row in reports.itertuples()}


def _holds_the_current_extraction(layout: RunLayout, tmp_path: Path, want: dict[str, str]):
    graph = _graph(layout)
    assert graph == _current(layout)
    assert {rid: set(v) for rid, (_, v) in graph.items()} == {
        rid: {VESSEL[text]} for rid, text in want.items()}
    # and it is what a fresh graph loading every published run once, in publish order, holds
    fresh = tmp_path / f"fresh-{uuid.uuid4().hex}.lbug"
    assert graph_contents(layout.graph / LADYBUG_DB) == clean_load(
        layout.extract, published_runs(layout.extract), fresh)


@pytest.mark.usefixtures("prefect_harness")
def test_every_publication_is_loaded_once_and_the_graph_holds_the_current_extraction(tmp_path):
    layout, archive = RunLayout(tmp_path / "run"), tmp_path / "archive"
    key = store_key("ladybug")

    first, exported = _night(layout, archive, {"a": LAD, "b": RCA}, run_id="run-x")
    assert exported.loaded == ("run-x",)
    _holds_the_current_extraction(layout, tmp_path, {"a": LAD, "b": RCA})

    # A -> B: report a's text changes; a new run supersedes run-x for it.
    second, exported = _night(layout, archive, {"a": RCA, "b": RCA})
    assert (second.extracted, exported.loaded) == (1, (second.run_id,))
    _holds_the_current_extraction(layout, tmp_path, {"a": RCA, "b": RCA})

    # B -> A, in run-x redone under its id: its partition is replaced and it is published
    # last, so it is current for a again. The run-id ledger skipped it ("run-x is loaded")
    # and left the graph holding the superseded B text.
    redone, exported = _night(layout, archive, {"a": LAD, "b": RCA}, run_id="run-x")
    assert redone.run_id == "run-x" and redone.extracted == 2
    assert exported.loaded == ("run-x",)
    _holds_the_current_extraction(layout, tmp_path, {"a": LAD, "b": RCA})

    # run-x redone once more with another text for b: loaded again, once.
    _, exported = _night(layout, archive, {"a": LAD, "b": LAD}, run_id="run-x")
    assert exported.loaded == ("run-x",)
    _holds_the_current_extraction(layout, tmp_path, {"a": LAD, "b": LAD})

    # Nothing published since: nothing loaded; the ledger holds each run's latest publication.
    again = export_flow(**ExportParams(out=layout.root, graph="ladybug").arguments())
    assert again.loaded == () and again.already_loaded == 2
    latest = {p.run.run_id: p.publish_id for p in publications(layout.extract)}
    assert sorted(read_graph_ledger(layout, key)) == sorted(latest.values())
    assert len(set(latest.values())) == 2 and all("#" in p for p in latest.values())


def test_the_ledger_keeps_one_entry_per_run_and_reloads_run_id_only_entries(tmp_path):
    layout = RunLayout(tmp_path / "run")
    out = layout.extract
    for n, (run_id, text) in enumerate((("run-x", LAD), ("run-y", RCA), ("run-x", LAD + RCA))):
        archive = tmp_path / f"archive-{n}"
        archive.mkdir(exist_ok=True)
        (archive / "a.txt").write_text(text, encoding="utf-8")
        run(archive, ParquetSink(out), FakeExtractor(), RunSettings(run_id=run_id))
    y, x = publications(out)  # run-x, redone last, moved to the end
    assert (y.run.run_id, x.run.run_id, x.publication) == ("run-y", "run-x", 3)
    assert x.stamp and x.publish_id.startswith("run-x#3-")

    # A ledger from before publish ids (run ids only) matches no publication: reloaded.
    layout.state.mkdir(parents=True)
    layout.graph_ledger_file.write_text(json.dumps({"stores": {"k": ["run-x", "run-y"]}}))
    assert not {p.publish_id for p in publications(out)} & set(read_graph_ledger(layout, "k"))
    record_graph_loaded(layout, "k", y)
    record_graph_loaded(layout, "k", x)
    record_graph_loaded(layout, "k", x)  # loaded twice: listed once
    assert read_graph_ledger(layout, "k") == [y.publish_id, x.publish_id]


@pytest.mark.usefixtures("prefect_harness")
def test_a_report_a_redone_run_left_out_goes_back_to_its_earlier_extraction_or_away(tmp_path):
    layout, archive = RunLayout(tmp_path / "run"), tmp_path / "archive"
    _night(layout, archive, {"b": RCA}, run_id="run-w")
    _night(layout, archive, {"a": LAD, "b": LAD, "c": RCA}, run_id="run-x")
    _holds_the_current_extraction(layout, tmp_path, {"a": LAD, "b": LAD, "c": RCA})
    # run-x redone over an archive without b and c: b's current extraction moves back to
    # run-w (RCA), c has none left. The graph must follow, not keep run-x's first load.
    redone, exported = _night(layout, archive, {"a": LAD}, run_id="run-x")
    assert redone.extracted == 1 and exported.loaded == ("run-x",)
    assert _current(layout)["b"][0] == "run-w" and "c" not in _current(layout)
    _holds_the_current_extraction(layout, tmp_path, {"a": LAD, "b": RCA})


def test_a_redone_run_published_last_gets_a_new_number_and_the_current_view_follows(tmp_path):
    # run-x, published last, redone without report b: it took its old publication number
    # again, the current view (stamped with that number) was not rewritten, and b, whose
    # current extraction is now run-w's, vanished from read_current.
    out, archive = tmp_path / "out", tmp_path / "archive"
    archive.mkdir()
    for run_id, texts in (("run-w", {"b": RCA}), ("run-x", {"a": LAD, "b": LAD}),
                          ("run-x", {"a": LAD})):
        for old in archive.glob("*.txt"):
            old.unlink()
        for report_id, text in texts.items():
            (archive / f"{report_id}.txt").write_text(text, encoding="utf-8")
        run(archive, ParquetSink(out), FakeExtractor(), RunSettings(run_id=run_id))
    assert [p.publication for p in publications(out)] == [1, 3]
    current = read_current(out, "reports").to_pandas().set_index("report_id")["run_id"]
    assert current.to_dict() == {"a": "run-x", "b": "run-w"}
