import csv

import pandas as pd
import pyarrow as pa
from export_samples import RUN_DATE, coordination_doc, lad_doc, nasty_doc, outcomes_for

from export import graph_model as gm
from export import parquet_sink as ps
from export.bulk_import import bundle_from_run, node_header, rel_header
from export.csv_safety import restore_cell
from ingest.schema import load_schema

RUN = ps.RunInfo("bulk-1", RUN_DATE, "m")


def make_bundle(tmp_path):
    docs = [lad_doc(), coordination_doc(), nasty_doc()]
    tables = ps.document_tables(docs, outcomes_for(docs), load_schema(), RUN)
    ps.write_run(tmp_path / "data", RUN, tables)
    return bundle_from_run(tmp_path / "data", RUN, tmp_path / "bundle", database="angio")


def read(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def test_headers_follow_neo4j_import_syntax():
    assert node_header(gm.FINDING)[0] == "id:ID(Finding)"
    assert "percentage_low:double" in node_header(gm.FINDING)
    assert "negated:boolean" in node_header(gm.FINDING)
    assert "degree_start:long" in node_header(gm.FINDING)
    assert "segments:string[]" in node_header(gm.FINDING)
    assert node_header(gm.ARTERY) == ["id:ID(Artery)", "name:string", "name_zh:string", ":LABEL"]
    assert rel_header(gm.IN_ARTERY) == [":START_ID(Finding)", ":END_ID(Artery)", ":TYPE"]
    assert rel_header(gm.PART_OF) == [":START_ID(Segment)", ":END_ID(Artery)", ":TYPE"]
    assert rel_header(gm.RELATED)[:3] == [":START_ID(Mention)", ":END_ID(Mention)",
                                          "relation_id:string"]


def test_bundle_files_read_back_with_quoting_and_guard(tmp_path):
    bundle = make_bundle(tmp_path)
    findings = read(tmp_path / "bundle/nodes/Finding.csv")
    header, rows = findings[0], findings[1:]
    assert header == node_header(gm.FINDING)
    assert len(rows) == bundle.rows["Finding"] == 5
    assert {r[-1] for r in rows} == {"Finding"}
    sentences = {restore_cell(r[header.index("sentence:string")]) for r in rows}
    nasty = nasty_doc().text.split("\n")[0]
    assert nasty in sentences
    raw = [r[header.index("sentence:string")] for r in rows]
    assert all(not v.startswith(("=", "+", "-", "@")) for v in raw)
    df = pd.read_csv(tmp_path / "bundle/nodes/Finding.csv", keep_default_na=False, dtype=str)
    assert set(df["percentage_low:double"]) >= {"80.0", "50.0", ""}
    edges = read(tmp_path / "bundle/rels/AT_SEGMENT.csv")
    assert edges[0] == [":START_ID(Finding)", ":END_ID(Segment)", ":TYPE"]
    assert sorted(e[1] for e in edges[1:]) == ["11", "5", "6", "6"]
    placed = sorted((r[header.index("artery:string")], r[header.index("segments:string[]")])
                    for r in rows)
    assert placed == [("LAD", ""), ("LAD", "6"), ("LAD", "6"), ("LCX", "11"), ("LM", "5")]
    tree = read(tmp_path / "bundle/nodes/Segment.csv")
    assert len(tree) == 1 + 18 and tree[0][0] == "id:ID(Segment)"


def test_script_loads_every_file_into_the_named_database(tmp_path):
    bundle = make_bundle(tmp_path)
    script = bundle.script.read_text()
    assert "neo4j-admin database import full angio" in script
    for spec in gm.NODES:
        assert f"--nodes=nodes/{spec.label}.csv" in script
    for rel in gm.RELS:
        assert f"--relationships=rels/{rel.type}.csv" in script
    after = bundle.after_import.read_text()
    assert "IF NOT EXISTS" in after and "substring(n.sentence, 1)" in after


def test_import_replaces_the_database_and_asks_for_multiline_only_when_needed(tmp_path):
    from export.bulk_import import write_bundle
    from export.graph_tables import graph_tables

    plain = make_bundle(tmp_path / "plain")
    script = plain.script.read_text()
    assert "--overwrite-destination=true" in script  # Community's `neo4j` exists once started
    assert "--multiline-fields" not in script.split("set -eu")[1] and plain.multiline_files == ()
    assert "CREATE DATABASE angio" in script and "cypher-shell -d angio" in script

    docs = [lad_doc(), coordination_doc()]
    tables = ps.document_tables(docs, outcomes_for(docs), load_schema(), RUN)
    graph = dict(graph_tables(tables, RUN.run_id))
    reports = graph["Report"]
    reasons = ["first line\nsecond line"] + [None] * (reports.num_rows - 1)
    graph["Report"] = reports.set_column(reports.schema.get_field_index("reason"), "reason",
                                         pa.array(reasons, pa.string()))
    bundle = write_bundle(graph, tmp_path / "multi", database="neo4j")
    command = bundle.script.read_text().split("set -eu")[1]
    assert "--multiline-fields=true" in command
    assert bundle.multiline_files == ("nodes/Report.csv",)
    rows = read(tmp_path / "multi/nodes/Report.csv")
    assert "first line\nsecond line" in [restore_cell(c) for r in rows[1:] for c in r]


def test_a_run_in_many_shards_is_bundled_piece_by_piece_as_the_whole_run(tmp_path):
    # bundle_from_run reads one shard at a time; the files must hold what the whole run's
    # graph gives: every report's rows once, the coronary tree once (it is in every piece)
    from export.bulk_import import write_bundle
    from export.graph_tables import graph_tables

    shards = [[lad_doc("r1")], [coordination_doc("r2"), nasty_doc("r3")], [lad_doc("r4", "50%")]]
    ps.begin_run(tmp_path / "data", RUN, resume=False)
    for number, docs in enumerate(shards):
        tables = ps.document_tables(docs, outcomes_for(docs), load_schema(), RUN)
        ps.write_shard(tmp_path / "data", RUN, f"{number:05d}", tables)
    ps.commit_run(tmp_path / "data", RUN)
    pieces = bundle_from_run(tmp_path / "data", RUN, tmp_path / "pieces")
    whole = write_bundle(graph_tables(ps.read_run(tmp_path / "data", RUN), RUN.run_id),
                         tmp_path / "whole")
    assert pieces.rows == whole.rows and pieces.rows["Report"] == 4
    assert pieces.rows["Artery"] == len(read(whole.folder / "nodes" / "Artery.csv")) - 1
    assert pieces.multiline_files == whole.multiline_files
    for spec in [*(f"nodes/{n.label}.csv" for n in gm.NODES),
                 *(f"rels/{r.type}.csv" for r in gm.RELS)]:
        got, want = read(pieces.folder / spec), read(whole.folder / spec)
        assert got[0] == want[0] and sorted(got[1:]) == sorted(want[1:]), spec
    assert (pieces.folder / "import.sh").read_text() == (whole.folder / "import.sh").read_text()
