"""The commands take the output folder's lock before they load a model (or start Prefect): a
refused second run loads nothing, a waiting one holds no model while it waits.

Timing-free: the model loader is replaced by a spy that records when it was called, and the
runs are given a directory with a model directory's files, empty (loading it would fail).
A directory that is not a model directory at all is refused before the lock: no output folder.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from extraction_fakes import FakeExtractor, placeholder_model_dir

from extraction.predict import Extractor
from flows.cli import main
from pipeline.lock import output_lock

TESTS = Path(__file__).resolve().parent
TEXT = "前降支近段狭窄70%。回旋支未见明显狭窄。"


def _archive(root: Path) -> Path:
    folder = root / "archive"
    folder.mkdir()
    for i in range(3):
        (folder / f"r{i}.txt").write_text(f"{i}：{TEXT}", "utf-8")
    return folder


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """Every Extractor.load call, by model dir; each loads the regex FakeExtractor."""
    calls: list[str] = []

    def spy(cls, model_dir, device=None, schema=None, relations=True):
        calls.append(str(model_dir))
        return FakeExtractor()

    monkeypatch.setattr(Extractor, "load", classmethod(spy))
    return calls


def _commands(archive: Path, out: Path, model: Path) -> dict[str, list[str]]:
    return {
        "extract": ["extract", str(model), str(archive), "--out", str(out)],
        "preannotate": ["preannotate", str(model), str(archive), str(out)],
        "select": ["select", str(model), str(archive), "--n", "1", "--out", str(out)],
    }


@pytest.mark.parametrize("command", ["extract", "preannotate", "select"])
def test_a_refused_run_loads_no_model(tmp_path, capsys, loads, command):
    archive, out = _archive(tmp_path), tmp_path / "out"
    argv = _commands(archive, out, placeholder_model_dir(tmp_path))[command]
    with output_lock(out, wait=False, command="holder"):
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert "holder (pid" in err and "is writing this output folder" in err, err
    assert loads == []  # refused before the model was touched
    assert sorted(p.name for p in out.iterdir()) == ["_angiokg.lock"]  # and wrote nothing


@pytest.mark.parametrize("command", ["extract", "preannotate"])
def test_a_waiting_run_loads_its_model_only_once_the_lock_is_free(tmp_path, loads, command):
    archive, out = _archive(tmp_path), tmp_path / "out"
    argv = [*_commands(archive, out, placeholder_model_dir(tmp_path))[command], "--wait"]
    holding, waiting = threading.Event(), threading.Event()
    loads_while_held: list[int] = []

    class SeesTheWait(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "waiting for it to finish" in record.getMessage():
                waiting.set()

    def holder() -> None:
        with output_lock(out, wait=False, command="holder"):
            holding.set()
            assert waiting.wait(120), "the second run never waited"
            loads_while_held.append(len(loads))

    seen = SeesTheWait()
    logging.getLogger("pipeline.lock").addHandler(seen)
    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert holding.wait(60)
        assert main(argv) == 0
    finally:
        waiting.set()
        thread.join(60)
        logging.getLogger("pipeline.lock").removeHandler(seen)
    assert loads_while_held == [0]  # nothing loaded while it waited
    assert loads == [str(tmp_path / "model")]  # loaded once, after


@pytest.mark.parametrize("command", ["extract", "preannotate", "select"])
@pytest.mark.parametrize("wrong", ["no-such-dir", "empty-dir", "encoder-only"])
def test_a_wrong_model_dir_is_refused_before_an_output_folder_exists(tmp_path, capsys, loads,
                                                                      command, wrong):
    archive, out = _archive(tmp_path), tmp_path / "out"
    model = tmp_path / wrong
    if wrong == "empty-dir":
        model.mkdir()
    elif wrong == "encoder-only":  # all but the encoder's config: the check reads every name
        model = placeholder_model_dir(tmp_path)
        (model / "encoder" / "config.json").unlink()
    assert main(_commands(archive, out, model)[command]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"angiokg {command}: {model}") and "Traceback" not in err, err
    assert ("no such model directory" if wrong == "no-such-dir" else "missing;") in err
    assert not out.exists() and loads == []


_EXTRACT = """
import sys
from flows.cli import main
code = main(sys.argv[1:])
print("torch imported" if "torch" in sys.modules else "no torch")
sys.exit(code)
"""


def test_a_refused_extract_imports_no_torch(tmp_path):
    archive, out = _archive(tmp_path), tmp_path / "out"
    with output_lock(out, wait=False, command="holder"):
        refused = subprocess.run(
            [sys.executable, "-c", _EXTRACT, "extract", str(placeholder_model_dir(tmp_path)),
             str(archive), "--out", str(out)],
            capture_output=True, text=True, cwd=TESTS.parent, timeout=300)
    assert refused.returncode == 2 and "holder (pid" in refused.stderr, refused.stderr
    assert "no torch" in refused.stdout  # most of a refused run's start on a busy machine


_NIGHTLY = """
import sys
from flows.cli import main
code = main(sys.argv[1:])
print("prefect started" if "flows.nightly_flow" in sys.modules else "prefect not started")
sys.exit(code)
"""


def _nightly_in_a_fresh_interpreter(script: str, out: Path, timeout: int
                                    ) -> subprocess.CompletedProcess:
    """`angiokg nightly` on the sample into `out`, run by `script` in its own interpreter."""
    sample = TESTS.parent / "data" / "sample"
    argv = ["nightly", "--annotated", str(sample / "annotated"), "--archive",
            str(sample / "archive"), "--out", str(out)]
    return subprocess.run([sys.executable, "-c", script, *argv], capture_output=True,
                          text=True, cwd=TESTS.parent, timeout=timeout)


def test_a_refused_nightly_does_not_start_prefect(tmp_path):
    out = tmp_path / "run"
    with output_lock(out, wait=False, command="holder"):
        refused = _nightly_in_a_fresh_interpreter(_NIGHTLY, out, timeout=300)
    assert refused.returncode == 2, refused.stderr
    assert "prefect not started" in refused.stdout
    assert "angiokg nightly:" in refused.stderr and "holder (pid" in refused.stderr
    assert "Traceback" not in refused.stderr


_NIGHTLY_RACE = """
import sys
import pipeline.lock
from flows.cli import main
from pipeline.lock import output_lock

# The folder is free when the command checks it, and taken before the flow locks it: the
# check is made to see a free folder, and a holder takes it as Prefect starts.
pipeline.lock.refuse_if_held = lambda folder: None
with output_lock(sys.argv[-1], wait=False, command="holder"):
    code = main(sys.argv[1:])
sys.exit(code)
"""


def test_a_nightly_whose_folder_is_taken_after_the_check_is_refused_in_one_line(tmp_path):
    out = tmp_path / "run"
    refused = _nightly_in_a_fresh_interpreter(_NIGHTLY_RACE, out, timeout=600)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "angiokg nightly:" in refused.stderr and "holder (pid" in refused.stderr
    assert "Traceback" not in refused.stderr
    # refused by the flow's own lock, on a real (ephemeral) Prefect API, before any task ran:
    # no model, no run: the folder holds the lock and Prefect's own home, nothing else
    assert sorted(p.name for p in out.iterdir()) == ["_angiokg.lock", "state"]
    assert [p.name for p in (out / "state").iterdir()] == ["prefect-home"]
