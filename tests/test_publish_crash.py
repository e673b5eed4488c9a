"""A run killed (SIGKILL) at every step of its publish, then run again plainly: nothing lost,
nothing twice, nothing left staged, and readers never see part of a run.

The killed run is a real child process (`run_child.py`, the protocol with the regex
FakeExtractor) that kills itself at the moment named (`processes.install_kill_at`); the rerun
is `angiokg extract` as a user would start it again: a new run id, no --run-id.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from extraction_fakes import FakeExtractor
from processes import MOMENTS, PUBLISH_MOMENTS

from export.current import read_current
from export.parquet_sink import DATASETS, read_dataset
from export.published import published_runs
from pipeline.manifest import Manifest
from pipeline.run import RunSettings, run
from pipeline.sinks import ParquetSink

TESTS = Path(__file__).resolve().parent
TEXT = "前降支近段狭窄70%。回旋支未见明显狭窄。"
REPORTS = 7


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("archive")
    for i in range(REPORTS):
        (folder / f"r{i}.txt").write_text(f"{i}：{TEXT}", "utf-8")
    (folder / "empty.txt").write_bytes(b"")  # quarantined, counted like the rest
    return folder


@pytest.fixture(scope="module")
def clean(archive, tmp_path_factory) -> dict[str, pd.DataFrame]:
    out = tmp_path_factory.mktemp("clean")
    run(archive, ParquetSink(out), FakeExtractor(), RunSettings(shard_reports=3))
    return {d: _rows(read_dataset(out, d).to_pandas(), d) for d in DATASETS}


KEYS = {"reports": ["report_id"], "entities": ["report_id", "entity_id"],
        "triples": ["report_id", "relation_id"], "records": ["finding_id"],
        "report_summary": ["report_id"]}


def _rows(frame: pd.DataFrame, dataset: str) -> pd.DataFrame:
    frame = frame.drop(columns=["run_date", "run_id"])
    return frame.sort_values(KEYS[dataset]).reset_index(drop=True)


def _killed_at(moment: str, archive: Path, out: Path, *extra: str) -> None:
    child = subprocess.run([sys.executable, str(TESTS / "run_child.py"), str(archive), str(out),
                            "--kill-at", moment, *extra], capture_output=True, text=True,
                           timeout=300)
    assert child.returncode == -signal.SIGKILL, (moment, child.stderr[-2000:])


def _whole_or_nothing(out: Path) -> None:
    """What readers going by the published list see: no run, or the whole run."""
    runs = published_runs(out)
    current = read_current(out, "reports").to_pandas()
    if not runs:
        assert current.empty
        return
    assert len(runs) == 1
    for dataset in DATASETS:
        assert (out / dataset / f"run_date={runs[0].run_date}" / f"run_id={runs[0].run_id}"
                ).is_dir(), dataset
    assert len(current) == REPORTS + 1


def _leftovers(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.is_file() and (
        p.name.startswith(".") or ".tmp" in p.name or "_staging" in p.parts)]


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["shard-staged", *PUBLISH_MOMENTS])
def test_a_kill_at_any_moment_then_a_plain_rerun_loses_and_duplicates_nothing(
        moment, archive, clean, tmp_path):
    out = tmp_path / "out"
    _killed_at(moment, archive, out)
    _whole_or_nothing(out)

    again = run(archive, ParquetSink(out), FakeExtractor(), RunSettings(shard_reports=3))

    assert again.inputs == REPORTS + 1
    runs = published_runs(out)
    assert len(runs) == 1  # the killed run, finished by the recovery, or the rerun
    assert again.published == (runs[0].run_id == again.run_id)
    for dataset in DATASETS:
        raw = _rows(read_dataset(out, dataset).to_pandas(), dataset)
        assert not raw.duplicated(KEYS[dataset]).any(), f"{moment}: {dataset} twice"
        pd.testing.assert_frame_equal(raw, clean[dataset], check_exact=False, rtol=1e-6)
        current = _rows(read_current(out, dataset).to_pandas(), dataset)
        pd.testing.assert_frame_equal(current, clean[dataset], check_exact=False, rtol=1e-6)
    assert _leftovers(out) == []
    assert sorted(p.stem for p in (out / "_runs").glob("*.json")) == [runs[0].run_id]

    # and the night after finds nothing new: no run published, nothing added
    third = run(archive, ParquetSink(out), FakeExtractor(), RunSettings(shard_reports=3))
    assert not third.published and third.skipped == REPORTS
    assert third.quarantined == 1  # the unreadable one, still quarantined (not "done")
    assert len(read_dataset(out, "reports")) == REPORTS + 1


@pytest.mark.slow
def test_a_temporary_file_of_a_killed_writer_never_reaches_a_published_partition(
        archive, tmp_path):
    out = tmp_path / "out"
    _killed_at("part-temp-written", archive, out, "--run-id", "night-1")
    assert [p for p in (out / "_staging").rglob(".*.tmp")]  # the killed writer's temporary

    resumed = run(archive, ParquetSink(out), FakeExtractor(),
                  RunSettings(run_id="night-1", shard_reports=3))
    assert resumed.published and resumed.inputs == REPORTS + 1
    assert _leftovers(out) == []
    assert len(read_dataset(out, "reports")) == REPORTS + 1


def test_every_moment_named_is_one_the_child_knows():
    assert set(PUBLISH_MOMENTS) < set(MOMENTS)
    bad = subprocess.run([sys.executable, str(TESTS / "run_child.py"), os.devnull, os.devnull,
                          "--kill-at", "never"], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "unknown moment" in bad.stderr


@pytest.mark.slow
@pytest.mark.parametrize("lost", ["the shard's commit", "a shard's marker"])
def test_a_staged_shard_missing_its_commit_or_its_marker_is_redone_even_regrouped(
        lost, archive, clean, tmp_path):
    """What a power cut can leave since neither a shard's manifest commit (synchronous=NORMAL)
    nor its marker waits for the disk (pipeline.manifest, "Durability"): files without entries,
    or entries without a marker. Resumed under the same run id with another shard size (so no
    shard is rebuilt under its old name and overwrites itself), every report comes out once."""
    out = tmp_path / "out"
    staging = out / "_staging" / "run_id=night-1"
    if lost == "the shard's commit":  # killed between a shard's files and its commit
        _killed_at("shard-staged", archive, out, "--run-id", "night-1")
        with Manifest.for_output(out) as manifest:
            assert manifest.shards("night-1") == set() and manifest.pending() == []
    else:  # every shard recorded, then one marker gone
        _killed_at("summary-written", archive, out, "--run-id", "night-1")
        with Manifest.for_output(out) as manifest:
            assert len(manifest.shards("night-1")) == 3
        next(iter(sorted((staging / "_shards").glob("*.done")))).unlink()
    assert list((staging / "reports").glob("part-*.parquet"))  # a shard's files staged

    resumed = run(archive, ParquetSink(out), FakeExtractor(),
                  RunSettings(run_id="night-1", shard_reports=2))

    assert resumed.published and resumed.inputs == REPORTS + 1
    for dataset in DATASETS:
        raw = _rows(read_dataset(out, dataset).to_pandas(), dataset)
        assert not raw.duplicated(KEYS[dataset]).any(), f"{lost}: {dataset} twice"
        pd.testing.assert_frame_equal(raw, clean[dataset], check_exact=False, rtol=1e-6)
    assert _leftovers(out) == []
