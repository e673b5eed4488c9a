"""One writer per output folder, with real concurrent processes: a second run is refused
(naming the first) or waits for it, and run ids never collide."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from export.parquet_sink import read_dataset
from export.published import published_runs
from pipeline.lock import LOCK_FILE, OutputLocked, output_lock
from pipeline.manifest import Manifest, RunIdCollision
from pipeline.run import new_run_id

TESTS = Path(__file__).resolve().parent
TEXT = "前降支近段狭窄70%。回旋支未见明显狭窄。"
REPORTS = 12


def _archive(root: Path) -> Path:
    folder = root / "archive"
    folder.mkdir()
    for i in range(REPORTS):
        (folder / f"r{i:02d}.txt").write_text(f"{i}：{TEXT}", "utf-8")
    return folder


def _start(archive: Path, out: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(TESTS / "run_child.py"), str(archive),
                             str(out), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _held(out: Path, timeout_s: float = 120) -> None:
    """Wait until a run holds OUT's lock (it writes who it is into the lock file)."""
    deadline = time.monotonic() + timeout_s
    lock = out / LOCK_FILE
    while not (lock.exists() and lock.read_text(encoding="utf-8").strip()):
        assert time.monotonic() < deadline, "the first run never took the lock"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_second_run_is_refused_naming_the_first_or_waits_for_it(tmp_path):
    archive, out = _archive(tmp_path), tmp_path / "out"
    first = _start(archive, out, "--delay", "0.3")  # ~4 s of extraction
    _held(out)
    holder = json.loads((out / LOCK_FILE).read_text(encoding="utf-8"))

    refused = subprocess.run([sys.executable, str(TESTS / "run_child.py"), str(archive),
                              str(out)], capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2
    assert f"pid {holder['pid']}" in refused.stderr and "--wait" in refused.stderr
    assert first.poll() is None  # refused while the first was still running

    waiting = _start(archive, out, "--wait")
    first_out, _ = first.communicate(timeout=300)
    waited_out, waited_err = waiting.communicate(timeout=300)
    assert first.returncode == 0 and waiting.returncode == 0, waited_err
    assert "waiting for it to finish" in waited_err
    done, after = json.loads(first_out), json.loads(waited_out)
    assert done["extracted"] == REPORTS
    assert after["skipped"] == REPORTS and not after["published"]  # it saw the first's output
    reports = read_dataset(out, "reports").to_pandas()
    assert len(reports) == REPORTS and reports["report_id"].is_unique


@pytest.mark.slow
def test_two_runs_started_together_publish_every_report_once(tmp_path):
    archive, out = _archive(tmp_path), tmp_path / "out"
    runs = [_start(archive, out, "--wait", "--delay", "0.05") for _ in range(2)]
    summaries = []
    for proc in runs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        summaries.append(json.loads(stdout))
    assert sorted(s["extracted"] for s in summaries) == [0, REPORTS]
    assert len({s["run_id"] for s in summaries}) == 2
    assert len(published_runs(out)) == 1
    reports = read_dataset(out, "reports").to_pandas()
    assert len(reports) == REPORTS and reports["report_id"].is_unique


def test_run_ids_made_in_the_same_second_differ():
    now = datetime(2026, 12, 1, 2, 0, 0, tzinfo=UTC)
    ids = {new_run_id(now) for _ in range(50)}
    assert len(ids) == 50 and all(i.startswith("run-20261201T020000Z-") for i in ids)


def test_the_manifest_refuses_a_new_run_under_a_taken_id(tmp_path):
    day = datetime(2026, 12, 1).date()
    with Manifest.for_output(tmp_path) as manifest:
        manifest.start_run("run-x", day, "m1", fresh=True)
        with pytest.raises(RunIdCollision, match="already taken"):
            manifest.start_run("run-x", day, "m1", fresh=True)
        assert manifest.start_run("run-x", day, "m1").run_id == "run-x"  # a resume may


def test_the_lock_is_released_when_its_holder_dies_and_refuses_while_held(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, '.');"
        "from pipeline.lock import output_lock\n"
        f"with output_lock({str(tmp_path)!r}, wait=False, command='holder'):\n"
        "    print('held', flush=True); time.sleep(600)")],
        stdout=subprocess.PIPE, text=True, cwd=TESTS.parent)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputLocked, match="holder .pid"), \
                output_lock(tmp_path, wait=False):
            pass
    finally:
        holder.kill()
        holder.wait()
    with output_lock(tmp_path, wait=False):  # the kernel dropped the dead holder's lock
        pass
