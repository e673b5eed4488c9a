import argparse

import pytest
from export_samples import RUN_DATE, coordination_doc, lad_doc, outcomes_for

from export import export_cli
from export import parquet_sink as ps
from ingest.schema import load_schema


def run_cli(argv):
    parser = argparse.ArgumentParser()
    export_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


@pytest.fixture
def data(tmp_path):
    docs = [lad_doc("r1", "80%"), coordination_doc("r2")]
    run = ps.RunInfo("cli-run", RUN_DATE, "m")
    ps.write_run(tmp_path / "data", run, ps.document_tables(docs, outcomes_for(docs),
                                                            load_schema(), run))
    return tmp_path


def test_load_graph_then_named_and_parameterised_queries(data, capsys):
    db = str(data / "g.lbug")
    assert run_cli(["load-graph", str(data / "data"), "--db", db]) == 0
    capsys.readouterr()
    assert run_cli(["cypher", "--named", "severe-proximal-lad", "--db", db]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].strip() == "report_id" and "r1" in out and "(1 row)" in out
    assert run_cli(["cypher", "MATCH (v:Vessel) WHERE v.name = $v RETURN v.name AS vessel",
                    "--param", "v=回旋支", "--db", db]) == 0
    assert "回旋支" in capsys.readouterr().out


def test_cypher_without_a_graph_says_how_to_make_one(tmp_path):
    with pytest.raises(SystemExit, match="load-graph"):
        run_cli(["cypher", "MATCH (n) RETURN n", "--db", str(tmp_path / "none")])


def test_bulk_import_command_writes_a_bundle(data):
    assert run_cli(["bulk-import", str(data / "data"), "--out", str(data / "b"),
                    "--run-id", "cli-run"]) == 0
    assert (data / "b/import.sh").exists() and (data / "b/nodes/Finding.csv").exists()


def test_export_neo4j_without_settings_names_the_variable(data, monkeypatch):
    monkeypatch.delenv("NEO4J_URI", raising=False)
    with pytest.raises(SystemExit, match="NEO4J_URI"):
        run_cli(["export-neo4j", str(data / "data")])


def test_table_aligns_wide_characters():
    table = export_cli.format_table(["vessel", "n"], [["前降支", 3], ["LM", None]])
    lines = table.splitlines()
    assert lines[2] == "前降支 | 3" and lines[3] == "LM     |" and lines[-1] == "(2 rows)"
