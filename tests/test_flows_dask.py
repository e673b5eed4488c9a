"""Scale-out: extract_flow's shards on a Dask cluster give the same outputs as on threads.

The cluster is a real `distributed.LocalCluster` with a worker process, reached the way a
deployment reaches one: through its scheduler address as `dask_address`. So the tasks, their
arguments and their results cross a process boundary (pickled), and the worker loads the real
tiny model from the model directory itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import distributed
import pandas as pd
import pytest
from extraction_fakes import train_tiny_model

from export.parquet_sink import read_dataset
from flows.extract_flow import extract_flow, task_runner_for, torch_threads_per_shard
from flows.parameters import ExtractParams
from flows.state import RunLayout
from ingest.generator import generate_corpus

KEYS = {"reports": ["report_id"], "entities": ["report_id", "entity_id"],
        "triples": ["report_id", "relation_id"], "records": ["finding_id"],
        "report_summary": ["report_id"]}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("dask")
    model_dir = root / "model"
    train_tiny_model(model_dir)
    archive = root / "archive"
    generate_corpus(7, seed=21, out_dir=archive, annotated=False)
    (archive / "empty.txt").write_bytes(b"")  # quarantined on whichever worker gets it
    return model_dir, archive


@pytest.fixture(scope="module")
def cluster():
    # One worker process (a second costs ~15 s of torch/prefect imports on a 2-core machine)
    # with two threads, so shards still run concurrently there; one torch thread each.
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  dashboard_address=None, env={"OMP_NUM_THREADS": "1"},
                                  silence_logs=40) as local:
        yield local


def _table(out: Path, dataset: str) -> pd.DataFrame:
    frame = read_dataset(RunLayout(out).extract, dataset).to_pandas()
    assert frame["run_id"].nunique() <= 1  # one published run: the partition is its only one
    frame = frame.drop(columns=["run_date", "run_id"])
    return frame.sort_values(KEYS[dataset]).reset_index(drop=True)


def _models_loaded_per_worker(cluster) -> dict[int, int]:
    """{worker pid: models in its `_extractor` cache}: which processes ran shards."""
    with distributed.Client(cluster) as client:
        answers = client.run(lambda: (os.getpid(), __import__(
            "flows.extract_flow", fromlist=["_extractor"])._extractor.cache_info().currsize))
    return dict(answers.values())


def test_the_dask_runner_is_chosen_only_when_a_scheduler_is_configured():
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    assert isinstance(task_runner_for(None, 3), ThreadPoolTaskRunner)
    assert isinstance(task_runner_for("tcp://127.0.0.1:8786", 3), DaskTaskRunner)


def test_concurrent_shards_share_the_cores_out_between_them():
    assert torch_threads_per_shard(2, 2) == 1
    assert torch_threads_per_shard(2, 16) == 8
    assert torch_threads_per_shard(4, 2) == 1
    assert torch_threads_per_shard(1, None) == 1


@pytest.mark.usefixtures("prefect_harness")
def test_shards_on_a_dask_cluster_equal_shards_on_threads(inputs, cluster, tmp_path,
                                                         monkeypatch):
    model_dir, archive = inputs
    # A worker started in another directory than the flow: a relative run folder must still
    # mean the flow's one.
    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with distributed.Client(cluster) as client:
        client.run(os.chdir, str(elsewhere))
    threads = ExtractParams(archive=archive, out=Path("threads"), model_dir=model_dir,
                            shard_size=2, workers=2)
    dask = ExtractParams(archive=archive, out=Path("dask"), model_dir=model_dir,
                         shard_size=2, dask_address=cluster.scheduler_address)

    # The deployed flow itself, so a deployment's dask_address parameter is what picks Dask.
    on_threads = extract_flow(**threads.arguments())
    on_dask = extract_flow(**dask.arguments())

    assert on_dask.inputs == on_threads.inputs == 8
    for key in ("processed", "quarantined", "failed", "extracted"):
        assert getattr(on_dask, key) == getattr(on_threads, key), key
    # The shards ran in the worker processes: each loaded the model there, at most once.
    loaded = _models_loaded_per_worker(cluster)
    assert os.getpid() not in loaded
    assert set(loaded.values()) <= {0, 1} and sum(loaded.values()) >= 1
    reports = _table(dask.out, "reports")
    assert reports["report_id"].is_unique and len(reports) == 8
    for dataset, keys in KEYS.items():
        got, want = _table(dask.out, dataset), _table(threads.out, dataset)
        assert not got.duplicated(keys).any(), f"duplicate rows in {dataset}"
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-4)
    assert _table(dask.out, "entities").shape[0] > 0
    assert list(elsewhere.iterdir()) == []
