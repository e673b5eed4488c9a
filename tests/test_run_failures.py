"""A run that fails (read-only output folder, full disk, an archive damaged midway) ends with one
message naming the file and the cause; the previous outputs are intact and nothing of the failed
run is left staged.

The read-only folder and the full disk are real: a small tmpfs in a private mount namespace
(`unshare -rm`, no root needed where user namespaces are allowed), so the errors come from the
kernel, as they would on a full or read-only volume. Where `unshare` cannot make one, those two
tests are skipped saying so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from extraction_fakes import FakeExtractor

from export.current import read_current
from pipeline.run import RunFailed, RunSettings, run
from pipeline.sinks import ParquetSink

ROOT = Path(__file__).resolve().parents[1]
TEXT = "前降支近段狭窄70%。回旋支未见明显狭窄。"

# Runs inside the namespace: a first night on the tmpfs, then the fault, then a second night
# with new reports; prints what the test checks as JSON.
_CHILD = r"""
import json, subprocess, sys
from pathlib import Path
sys.path[:0] = [sys.argv[4] + "/tests", sys.argv[4]]
from extraction_fakes import FakeExtractor
from export.current import read_current
from pipeline.run import RunSettings, run
from pipeline.sinks import ParquetSink

fault, archive, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
night = lambda folder: run(folder, ParquetSink(out), FakeExtractor(), RunSettings(shard_reports=3))
night(archive / "first")
before = sorted(set(read_current(out, "entities").to_pandas()["report_id"]))
if fault == "read-only":
    subprocess.run(["mount", "-o", "remount,ro", str(out)], check=True)
else:
    (out / "spare").write_bytes(b"0" * 48_000)
    try:
        with open(out / "filler", "wb") as handle:
            while True:
                handle.write(b"0" * 4096)
                handle.flush()
    except OSError:
        pass
    (out / "spare").unlink()  # a little room: the run gets going, then the disk is full
from pipeline.lock import OutputLocked
from pipeline.manifest import ManifestError
from pipeline.run import RunFailed
try:
    night(archive / "second")
    message = None
except (RunFailed, OutputLocked, ManifestError, OSError) as exc:
    message = str(exc)
after = sorted(set(read_current(out, "entities").to_pandas()["report_id"]))
staging = out / "_staging"
staged = [str(p) for p in staging.glob("run_id=*")] if staging.exists() else []
hidden = [str(p) for p in out.rglob(".*")]
recovered = None
if fault == "full-disk":
    (out / "filler").unlink()
    recovered = night(archive / "second").to_dict()
print(json.dumps({"message": message, "before": before, "after": after, "staged": staged,
                  "hidden": hidden, "recovered": recovered}))
"""


def _reports(folder: Path, prefix: str, n: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"{prefix}{i:03d}.txt").write_text(f"{i}：{TEXT}" * 20, "utf-8")
    return folder


def _can_mount_tmpfs(tmp_path: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = tmp_path / "probe"
    probe.mkdir()
    done = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs tmpfs {probe}"],
                          capture_output=True, timeout=30)
    return done.returncode == 0


def _in_namespace(fault: str, tmp_path: Path) -> dict:
    if not _can_mount_tmpfs(tmp_path):
        pytest.skip("unshare cannot mount a tmpfs here (no user namespaces): no real read-only "
                    "or full volume to test against")
    archive, out = tmp_path / "archive", tmp_path / "out"
    _reports(archive / "first", "a", 5)
    _reports(archive / "second", "b", 60)
    out.mkdir()
    script = tmp_path / "child.py"
    script.write_text(_CHILD, encoding="utf-8")
    # 2 MiB: the second night's outputs (~0.8 MiB) with the manifest's write-ahead log beside
    # them while the run lasts (pipeline.manifest, "Durability"); the fault fills it all anyway.
    shell = (f"mount -t tmpfs -o size=2m tmpfs {out} && "
             f"exec {sys.executable} {script} {fault} {archive} {out} {ROOT}")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", shell], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_read_only_output_folder_is_named_and_nothing_changes(tmp_path):
    got = _in_namespace("read-only", tmp_path)
    assert got["message"] and "Read-only file system" in got["message"]
    assert str(tmp_path / "out") in got["message"]
    assert "\n" not in got["message"]
    assert got["after"] == got["before"] and len(got["before"]) == 5
    assert got["staged"] == [] and got["hidden"] == []


@pytest.mark.slow
def test_a_full_disk_is_named_the_run_cleans_up_and_the_next_run_loses_nothing(tmp_path):
    got = _in_namespace("full-disk", tmp_path)
    message = got["message"]
    assert message and ("No space left on device" in message or "disk is full" in message)
    assert str(tmp_path / "out") in message  # the file it could not write
    assert "cannot rollback" not in message
    assert got["after"] == got["before"] and len(got["before"]) == 5  # previous outputs intact
    assert got["staged"] == [] and got["hidden"] == []  # nothing of the failed run left
    assert got["recovered"]["extracted"] == 60 and got["recovered"]["published"]


def test_an_archive_damaged_midway_fails_the_run_naming_it_and_stages_nothing(tmp_path):
    out, archive = tmp_path / "out", tmp_path / "reports.csv"
    first = _reports(tmp_path / "first", "a", 3)
    run(first, ParquetSink(out), FakeExtractor(), RunSettings(shard_reports=2))
    rows = "".join(f"r{i},{i}：{TEXT}\n" for i in range(700))
    # Bytes that are no UTF-8 after 700 good rows: found only when the reading gets there,
    # after the first shards were spooled (a CSV has no random access).
    archive.write_bytes(b"report_id,text\n" + rows.encode() + b"r700,\xff\xfe\n")

    with pytest.raises(RunFailed) as failed:
        run(archive, ParquetSink(out), FakeExtractor(), RunSettings(shard_reports=100))
    message = str(failed.value)
    assert f"{archive}: cannot read as a UTF-8 CSV table" in message and "\n" not in message
    assert "previous outputs" in message and "nothing of it is left staged" in message
    assert sorted(read_current(out, "reports").to_pandas()["report_id"]) == ["a000", "a001",
                                                                            "a002"]
    assert not list((out / "_staging").glob("run_id=*"))  # the spooled shards went with it
