"""SIGKILL an extraction midway, start it again: every report's output present exactly once.

The run is a real `angiokg extract` process with a real (tiny) model. It is killed as soon as
its first shard is durable, then started again with the same run id; the result must equal that
of a run that was never interrupted, in Parquet and in the graph loaded from it. (A kill in the
middle of the graph load itself: tests/test_flows_export.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from extraction_fakes import train_tiny_model
from graph_faults import clean_load, without_floats
from processes import sigkill_when

from export.parquet_sink import read_dataset
from export.published import published_runs
from extraction.predict import Extractor
from ingest.generator import generate_corpus
from pipeline.run import RunSettings, run
from pipeline.sinks import ParquetSink

ROOT = Path(__file__).resolve().parents[1]
REPORTS = 40
# One torch thread per process: the machine is shared, and oversubscribed threads are ~5x slower.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_tiny_model(root / "model")
        generate_corpus(REPORTS, 11, root / "archive", annotated=False)
        (root / "archive" / "bad.txt").write_bytes("前降支狭窄".encode("utf-16"))
        # The reference: the same run, never interrupted (in this process: one start-up less).
        run(root / "archive", ParquetSink(root / "clean"),
            Extractor.load(root / "model", device="cpu"),
            RunSettings(run_id="nightly-1", shard_reports=4, batch_size=16))
    finally:
        torch.set_num_threads(threads)
    return root


def _extract_cmd(root: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "flows.cli", "extract", str(root / "model"),
            str(root / "archive"), "--out", str(out), "--run-id", "nightly-1",
            "--shard-size", "4", "--batch-size", "16", "--device", "cpu"]


def _run_to_end(root: Path, out: Path) -> None:
    done = subprocess.run(_extract_cmd(root, out), cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    frame = frame.drop(columns=["run_date"]).astype({"run_id": str})
    return frame.sort_values(keys).reset_index(drop=True)


@pytest.mark.slow
def test_sigkill_midway_then_restart_leaves_each_output_exactly_once(setup):
    root = setup
    out = root / "killed"
    markers = out / "_staging" / "run_id=nightly-1" / "_shards"
    proc = subprocess.Popen(_extract_cmd(root, out), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True, env=ENV)
    sigkill_when(proc, lambda: markers.is_dir() and any(markers.glob("*.done")), timeout_s=300,
                 what="its first shard was durable")
    # Killed midway: nothing was published, so readers see no dataset at all yet.
    assert not (out / "reports").exists()

    _run_to_end(root, out)

    reports = read_dataset(out, "reports").to_pandas()
    assert len(reports) == REPORTS + 1 and reports["report_id"].is_unique
    assert reports.set_index("report_id").loc["bad", "status"] == "quarantined"
    for dataset, keys in (("reports", ["report_id"]),
                          ("entities", ["report_id", "entity_id"]),
                          ("triples", ["report_id", "relation_id"]),
                          ("records", ["finding_id"])):
        got = _sorted(read_dataset(out, dataset).to_pandas(), keys)
        assert not got.duplicated(keys).any(), f"duplicate rows in {dataset}"
        want = _sorted(read_dataset(root / "clean", dataset).to_pandas(), keys)
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-4)
    leftovers = [p for p in out.rglob("*") if p.is_file() and (
        p.name.startswith(".") or "tmp" in p.name or "_staging" in p.parts)]
    assert leftovers == []

    # The graph loaded from the restarted run holds each node and edge once, as the graph of
    # the uninterrupted run does.
    runs = published_runs(out)
    assert [r.run_id for r in runs] == ["nightly-1"]
    got = without_floats(clean_load(out, runs, root / "killed.lbug"))
    want = without_floats(clean_load(root / "clean", runs, root / "clean.lbug"))
    assert got == want
    assert len(got["Report"]) == REPORTS + 1
    assert len(got["Mention"]) == len(got["MENTIONS"]) == read_dataset(out, "entities").num_rows
