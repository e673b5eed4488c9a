"""The commands as a hostile user runs them (the run2 brief's item 4): each bad argument or
input ends in one line naming it and what to do, before any lock, model or file is touched."""

from __future__ import annotations

import pytest
import torch
from extraction_fakes import FakeExtractor, placeholder_model_dir

from extraction.predict import Extractor
from flows.cli import main
from pipeline.manifest import Manifest
from pipeline.run import plan
from pipeline.sinks import ParquetSink

TEXT = "前降支近段狭窄70%。"


@pytest.fixture
def archive(tmp_path):
    folder = tmp_path / "archive"
    folder.mkdir()
    (folder / "r1.txt").write_text(TEXT, "utf-8")
    return folder


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(Extractor, "load", classmethod(
        lambda cls, model_dir, device=None, **kw: calls.append(str(model_dir))
        or FakeExtractor()))
    return calls


@pytest.mark.parametrize("flag, value, says", [
    ("--batch-size", "0", "'0' is not a whole number of at least 1"),  # failed every report
    ("--shard-size", "-1", "'-1' is not a whole number of at least 1"),
    ("--max-report-bytes", "0", "'0' is not a whole number of at least 1"),
    ("--run-id", "../../x", "run id '../../x' cannot name a folder"),
    ("--device", "nonsense", "'nonsense' is not a torch device"),  # were tracebacks
    pytest.param("--device", "cuda", "'cuda': this machine has no CUDA GPU",
                 marks=pytest.mark.skipif(torch.cuda.is_available(),
                                          reason="this machine has a GPU")),
])
def test_a_bad_number_or_run_id_is_refused_before_anything_runs(tmp_path, archive, loads,
                                                                 capsys, flag, value, says):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        main(["extract", str(placeholder_model_dir(tmp_path)), str(archive), "--out", str(out),
              flag, value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: {says}" in err and "Traceback" not in err
    assert loads == [] and not out.exists()


def test_a_run_id_that_cannot_name_a_folder_is_never_recorded(tmp_path, archive):
    # It was: the manifest kept it, and every later run warned that "run ../x was killed"
    # and removed a staging folder named after it.
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="cannot name a folder"):
        plan(archive, ParquetSink(out), "fake-1", run_id="../x")
    with Manifest.for_output(out) as manifest:
        assert manifest.runs() == []


def test_an_output_folder_that_cannot_be_made_is_one_line(tmp_path, archive, loads, capsys):
    (tmp_path / "a-file").write_text("x")
    out = tmp_path / "a-file" / "out"
    model = placeholder_model_dir(tmp_path)
    assert main(["extract", str(model), str(archive), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot create the output folder (Not a directory)" in err and loads == []


@pytest.mark.parametrize("db_kind", ["text file", "folder"])
def test_load_graph_into_something_that_is_no_graph_is_one_line_and_leaves_it(
        tmp_path, archive, loads, capsys, db_kind):
    out = tmp_path / "out"
    model = placeholder_model_dir(tmp_path)
    assert main(["extract", str(model), str(archive), "--out", str(out)]) == 0
    db = tmp_path / "notes"
    if db_kind == "folder":
        db.mkdir()
    else:
        db.write_text("my notes", "utf-8")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["load-graph", str(out), "--db", str(db)])
    assert f"--db {db}: not a LadybugDB graph" in str(exit_.value)
    assert db.is_dir() if db_kind == "folder" else db.read_text("utf-8") == "my notes"


@pytest.mark.parametrize("args, says", [
    (["--run-id", "run-nope"], "no published run 'run-nope'"),
    ([], "no published run;"),
])
def test_load_graph_of_a_run_that_is_not_there_is_one_line(tmp_path, args, says):
    (tmp_path / "out").mkdir()
    with pytest.raises(SystemExit) as exit_:
        main(["load-graph", str(tmp_path / "out"), "--db", str(tmp_path / "g.lbug"), *args])
    assert says in str(exit_.value) and "--out folder of `angiokg extract`" in str(exit_.value)
