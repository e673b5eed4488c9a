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
    assert run_cli(["cypher", "MATCH (f:Finding)-[:IN_ARTERY]->(a:Artery) WHERE f.vessel_text"
                    " = $v RETURN a.id AS artery", "--param", "v=回旋支", "--db", db]) == 0
    assert "LCX" in capsys.readouterr().out


def _one_line_error(capsys, argv):
    """Run `angiokg cypher ...` in process; its exit status and its one stderr line."""
    try:
        status = run_cli(["cypher", *argv])
    except SystemExit as exc:  # argparse's usage errors leave through SystemExit
        status = exc.code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and captured.out == "", captured
    assert lines[0].startswith("angiokg cypher: ")
    return lines[0]


@pytest.fixture
def graph(data, capsys):
    docs = [lad_doc("123", "90%")]
    run = ps.RunInfo("numeric-id-run", RUN_DATE, "m")
    ps.write_run(data / "data2", run, ps.document_tables(docs, outcomes_for(docs), load_schema(),
                                                         run))
    db = str(data / "g.lbug")
    assert run_cli(["load-graph", str(data / "data"), "--db", db]) == 0
    assert run_cli(["load-graph", str(data / "data2"), "--db", db]) == 0
    capsys.readouterr()
    return db


def test_cypher_without_a_graph_says_how_to_make_one(tmp_path, capsys):
    line = _one_line_error(capsys, ["MATCH (n) RETURN n", "--db", str(tmp_path / "none")])
    assert "no embedded graph" in line and "load-graph" in line


def test_copy_to_a_file_is_refused_and_writes_nothing(graph, tmp_path, capsys):
    target = tmp_path / "leak.csv"
    line = _one_line_error(capsys, [f"COPY (MATCH (r:Report) RETURN r.id) TO '{target}'",
                                    "--db", graph])
    assert "refused" in line and "COPY" in line and not target.exists()
    dump = tmp_path / "dump"
    _one_line_error(capsys, [f"EXPORT DATABASE '{dump}'", "--db", graph])
    assert not dump.exists()


def test_load_from_a_host_file_is_refused_and_prints_nothing_of_it(graph, tmp_path, capsys):
    secret = tmp_path / "secret.csv"
    secret.write_text("name,password\nroot,hunter2\n", encoding="utf-8")
    line = _one_line_error(capsys, [f"LOAD FROM '{secret}' (header=true) RETURN *",
                                    "--db", graph])
    assert "LOAD" in line and "hunter2" not in line


def test_the_graph_is_opened_read_only_as_a_second_guard(graph):
    from export.ladybug_store import LadybugStore

    with LadybugStore(graph, read_only=True) as store, pytest.raises(RuntimeError,
                                                                      match="read-only"):
        store.query("CREATE (:Artery {id: 'x'})")
    with LadybugStore(graph, read_only=True) as store:
        assert store.query("MATCH (a:Artery {id: 'x'}) RETURN a").rows == ()


def test_a_write_query_is_refused_and_the_graph_is_unchanged(graph, capsys):
    _one_line_error(capsys, ["MATCH (r:Report) DETACH DELETE r", "--db", graph])
    assert run_cli(["cypher", "MATCH (r:Report) RETURN count(r) AS n", "--db", graph]) == 0
    assert capsys.readouterr().out.splitlines()[2].strip() == "3"


def test_parameters_are_text_unless_typed(graph, capsys):
    query = "MATCH (r:Report) WHERE r.id = $id RETURN r.id AS id"
    assert run_cli(["cypher", query, "--param", "id=123", "--db", graph]) == 0
    assert capsys.readouterr().out.splitlines()[2:] == ["123", "(1 row)"]
    typed = ("RETURN $n + 1 AS n, $x * 2 AS x, NOT $b AS b, size($l) AS l, $s AS s")
    assert run_cli(["cypher", typed, "--param", "n:int=3", "--param", "x:float=0.25",
                    "--param", "b:bool=true", "--param", "l:json=[1,2,3]",
                    "--param", "s:str=007", "--db", graph]) == 0
    assert capsys.readouterr().out.splitlines()[2].split(" | ") == ["4", "0.5", "False", "3",
                                                                    "007"]


def test_named_query_parameter_takes_the_type_of_its_default(graph, capsys):
    assert run_cli(["cypher", "--named", "severe-proximal-lad", "--param", "min_stenosis=85",
                    "--db", graph]) == 0
    assert capsys.readouterr().out.splitlines()[2:] == ["123", "(1 row)"]


@pytest.mark.parametrize(("argv", "says"), [
    (["MATCH (r:Report RETURN r"], "Parser exception"),
    (["MATCH (f:Finding) WHERE f.percentage_low >= $p RETURN f.id", "--param", "p=7x"],
     "NAME:float=70.5"),
    (["RETURN $n AS n", "--param", "n:int=three"], "invalid literal for int"),
    (["RETURN $n AS n", "--param", "n:bool=yes"], "true or false"),
    (["RETURN $n AS n", "--param", "n:date=2026-01-01"], "unknown type 'date'"),
    (["RETURN $n AS n", "--param", "n:json=[1,"], "not JSON"),
    (["RETURN $n AS n", "--param", "novalue"], "expected NAME=VALUE"),
    (["MATCH (r:Report) WHERE r.id = $id RETURN r"], "uses $id but no --param id"),
    (["RETURN 1 AS one", "--param", "id=1"], "has no $id"),
    (["--named", "severe-proximal-lad", "--param", "vesel=回旋支"], "has no $vesel"),
    (["--named", "severe-proximal-lad", "--param", "min_stenosis=lots"], "could not convert"),
    (["RETURN 1", "--named", "negated-per-report"], "not both"),
    ([], "give a Cypher query"),
    (["--named", "no-such-query"], "invalid choice"),
])
def test_every_cypher_error_is_one_line_and_exit_status_2(graph, capsys, argv, says):
    assert says in _one_line_error(capsys, [*argv, "--db", graph])


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_db_that_is_not_a_graph_is_named_in_one_line(tmp_path, capsys, kind):
    db = tmp_path / "not-a-graph"
    if kind == "file":
        db.write_text("hello", encoding="utf-8")
    else:
        db.mkdir()
    line = _one_line_error(capsys, ["MATCH (n) RETURN n", "--db", str(db)])
    assert f"--db {db}: not a LadybugDB graph" in line


def test_the_angiokg_command_exits_2_with_one_line(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "flows.cli", "cypher", "CREATE (:X)",
                             "--db", str(tmp_path / "g")], capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "angiokg cypher: refused: a read query starts with MATCH, OPTIONAL MATCH, WITH, "
        "UNWIND, RETURN or CALL, not 'CREATE'"]


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


def test_records_from_an_annotated_corpus_without_a_model(tmp_path, capsys):
    from annotate import report

    from ingest.brat_writer import write_document

    corpus = tmp_path / "corpus"
    write_document(report("{v1:右冠状动脉}:{l1:开口}{d1:狭窄}{q1:50%}，{l2:近段}、{l3:中段}"
                          "{d2:重度狭窄}。", "d1>v1 d2>v1 v1>l1 v1>l2 v1>l3 d1>q1", "a/r1"),
                   corpus)
    write_document(report("{v1:大隐静脉桥}{d1:闭塞}。", "d1>v1", "r2"), corpus)
    (corpus / "bad.txt").write_text("前降支狭窄", encoding="utf-8")
    (corpus / "todo.txt").write_text("回旋支狭窄50%。", encoding="utf-8")
    (corpus / "bad.ann").write_text("T1\tBodyPart 0 3\t回旋支\n", encoding="utf-8")
    assert run_cli(["records", str(corpus), "--out", str(tmp_path / "out"),
                    "--run-id", "gold"]) == 0
    out = capsys.readouterr().out
    assert "4 reports (3 valid, 1 without .ann, 1 quarantined): 4 records; run gold" in out
    assert "大隐静脉桥 (BodyPart) x1" in out and "coronary-synonyms.tsv" in out
    records = ps.read_dataset(tmp_path / "out", ps.RECORDS).to_pylist()
    got = sorted((r["report_id"], r["artery"] or "-", tuple(r["segments"]), r["finding"])
                  for r in records)
    assert got == [("a/r1", "RCA", ("1",), "狭窄"),
                   ("a/r1", "RCA", ("1",), "重度狭窄"),
                   ("a/r1", "RCA", ("2",), "重度狭窄"),
                   ("r2", "-", (), "闭塞")]
    assert {r["run_id"] for r in records} == {"gold"}
    assert {r["model_version"] for r in records} == {None}
    summary = ps.read_dataset(tmp_path / "out", ps.REPORT_SUMMARY).to_pandas()
    assert sorted(summary["report_id"]) == ["a/r1", "r2", "todo"]
    row = summary.set_index("report_id").loc["a/r1"]
    assert (row.max_stenosis_rca, list(row.max_stenosis_rca_segments)) == (50.0, ["1"])
    reports = ps.read_dataset(tmp_path / "out", ps.REPORTS).to_pandas().set_index("report_id")
    assert reports.loc["bad", "status"] == "quarantined" and "bad.ann" in reports.loc["bad",
                                                                                      "reason"]
    assert reports.loc["todo", "status"] == "ok" and "no .ann" in reports.loc["todo", "reason"]
    # the same shape as a model's run: the graph loads it
    assert run_cli(["load-graph", str(tmp_path / "out"), "--db", str(tmp_path / "g.lbug")]) == 0


def test_export_neo4j_on_a_dead_server_says_so_at_once(data, monkeypatch):
    import socket
    import time

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("NEO4J_URI", f"bolt://127.0.0.1:{port}")
    monkeypatch.setenv("NEO4J_PASSWORD", "pw-not-to-be-shown")
    started = time.monotonic()
    with pytest.raises(SystemExit) as stopped:
        run_cli(["export-neo4j", str(data / "data")])
    message = str(stopped.value)
    assert f"cannot reach Neo4j at bolt://127.0.0.1:{port}" in message
    assert "is the server running" in message and "pw-not-to-be-shown" not in message
    # Not after the driver's 30 s retry budget for a write: connectivity is checked first.
    assert time.monotonic() - started < 15
