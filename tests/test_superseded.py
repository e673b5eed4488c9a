"""One current extraction per report id: a changed text is extracted again (also one that
changed back), the same id with other texts in two archives leaves one current, superseded rows
are left out by the documented current view, and the graph holds the current one."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from extraction_fakes import FakeExtractor

from export.current import CURRENT_FILE, read_current
from export.ladybug_store import LadybugStore
from export.parquet_sink import read_dataset
from export.published import published_runs
from pipeline.run import RunSettings, run
from pipeline.sinks import ParquetSink

LAD, RCA = "前降支近段狭窄70%。", "右冠中段狭窄50%。"


def _archive(folder: Path, texts: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.glob("*.txt"):
        path.unlink()
    for report_id, text in texts.items():
        (folder / f"{report_id}.txt").write_text(text, encoding="utf-8")
    return folder


def _extract(archive: Path, out: Path):
    return run(archive, ParquetSink(out), FakeExtractor(), RunSettings(shard_reports=2))


def _current_vessels(out: Path) -> dict[str, set[str]]:
    entities = read_current(out, "entities").to_pandas()
    vessels = entities[entities["type"] == "BodyPart"]
    return {rid: set(group["text"]) for rid, group in vessels.groupby("report_id")}


def _graph_vessels(out: Path, graph: Path) -> dict[str, set[str]]:
    """The graph as export_flow leaves it: every published run loaded, in publish order."""
    with LadybugStore(graph) as store:
        for published in published_runs(out):
            store.load_run(out, published)
        rows = store.query("MATCH (r:Report)-[:MENTIONS]->(m:Mention) "
                           "WHERE m.type = 'BodyPart' RETURN r.id, m.text").rows
    found: dict[str, set[str]] = {}
    for report_id, text in rows:
        found.setdefault(report_id, set()).add(text)
    return found


def test_a_text_that_changed_back_is_extracted_again_and_is_the_current_one(tmp_path):
    archive, out = tmp_path / "archive", tmp_path / "out"
    first = _extract(_archive(archive, {"a": LAD, "b": RCA}), out)
    second = _extract(_archive(archive, {"a": RCA, "b": RCA}), out)
    third = _extract(_archive(archive, {"a": LAD, "b": RCA}), out)  # back to the first text
    assert (first.extracted, second.extracted, third.extracted) == (2, 1, 1)
    assert third.skipped == 1  # b never changed
    assert _current_vessels(out) == {"a": {"前降支"}, "b": {"右冠"}}
    current = read_current(out, "reports").to_pandas().set_index("report_id")["run_id"]
    assert current.to_dict() == {"a": third.run_id, "b": first.run_id}
    assert _graph_vessels(out, tmp_path / "g.lbug") == {"a": {"前降支"}, "b": {"右冠"}}
    # a fourth night finds the current extraction of every report: nothing new
    assert not _extract(archive, out).published


def test_the_same_id_in_two_archives_leaves_one_current_extraction(tmp_path):
    out = tmp_path / "out"
    _extract(_archive(tmp_path / "x", {"r1": LAD, "r2": LAD}), out)
    later = _extract(_archive(tmp_path / "y", {"r1": RCA}), out)
    raw = read_dataset(out, "reports").to_pandas()
    assert sorted(raw["report_id"]) == ["r1", "r1", "r2"]  # superseded rows stay, ...
    current = read_current(out, "reports").to_pandas()
    assert sorted(current["report_id"]) == ["r1", "r2"]  # ... the current view has one each
    assert current.set_index("report_id").loc["r1", "run_id"] == later.run_id
    assert _current_vessels(out) == {"r1": {"右冠"}, "r2": {"前降支"}}
    assert _graph_vessels(out, tmp_path / "g.lbug") == {"r1": {"右冠"}, "r2": {"前降支"}}


def test_the_documented_pandas_recipe_gives_the_current_view(tmp_path):
    out = tmp_path / "out"
    _extract(_archive(tmp_path / "x", {"r1": LAD, "r2": LAD}), out)
    _extract(_archive(tmp_path / "y", {"r1": RCA}), out)
    # docs/parquet-schemas.md, "The current view"
    current = pd.read_parquet(out / CURRENT_FILE, columns=["report_id", "run_id"])
    records = pd.read_parquet(out / "records").astype({"run_id": str})
    records = records.merge(current, on=["report_id", "run_id"])
    want = read_current(out, "records").to_pandas()
    assert sorted(records["finding_id"]) == sorted(want["finding_id"])
    assert sorted(records["vessel"]) == ["前降支", "右冠"]
