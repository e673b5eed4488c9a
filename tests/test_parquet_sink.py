import datetime as dt

import pandas as pd
import pyarrow.dataset as ds
import pytest
from export_samples import RUN_DATE, coordination_doc, lad_doc, outcomes_for

from export import parquet_sink as ps
from ingest.document import ReportOutcome
from ingest.schema import load_schema

SCHEMA = load_schema()


def tables(docs, run, extra=()):
    return ps.document_tables(docs, outcomes_for(docs, extra), SCHEMA, run)


def test_run_is_written_partitioned_and_read_back_with_pyarrow_and_pandas(tmp_path):
    run = ps.RunInfo("run-a", RUN_DATE, "m1")
    bad = ReportOutcome("r9", "quarantined", "bad.ann line 3: no tab", "bad.ann")
    ps.write_run(tmp_path, run, tables([lad_doc(), coordination_doc()], run, [bad]))
    assert (tmp_path / "records/run_date=2024-05-01/run_id=run-a").is_dir()

    records = ds.dataset(tmp_path / "records", partitioning=ps.partitioning()).to_table()
    assert records.num_rows == 4
    assert set(records.column("run_id").to_pylist()) == {"run-a"}
    assert set(records.column("run_date").to_pylist()) == {RUN_DATE}

    df = pd.read_parquet(tmp_path / "records")
    lad = df[(df.vessel == "前降支") & (df.segment == "近段") & (df.percentage_low >= 70)]
    assert list(lad.report_id) == ["r1"]
    assert df[df.negated].vessel.tolist() == ["左主干"]
    assert set(df.model_version) == {"m1"}

    reports = pd.read_parquet(tmp_path / "reports").sort_values("report_id")
    assert reports.status.tolist() == ["ok", "ok", "quarantined"]
    assert reports.reason.tolist()[-1] == "bad.ann line 3: no tab"
    triples = ps.read_dataset(tmp_path, "triples")
    assert triples.num_rows == 10
    assert triples.schema.field("probability").type == ps.SCHEMAS["triples"].field(
        "probability").type


def test_rerunning_a_run_replaces_its_partition_and_other_runs_survive(tmp_path):
    a = ps.RunInfo("run-a", RUN_DATE, "m1")
    b = ps.RunInfo("run-b", RUN_DATE, "m1")
    ps.write_run(tmp_path, a, tables([lad_doc()], a))
    ps.write_run(tmp_path, b, tables([coordination_doc()], b))
    ps.write_run(tmp_path, a, tables([lad_doc(pct="90%")], a))
    df = pd.read_parquet(tmp_path / "records")
    assert sorted(df.groupby("run_id", observed=True).size().items()) == [
        ("run-a", 2), ("run-b", 2)]
    assert df[df.run_id == "run-a"].percentage_text.dropna().tolist() == ["90%"]
    leftovers = [p for p in tmp_path.rglob("*") if p.name.startswith((".", "_"))]
    # the empty staging root and the list of published runs only
    assert sorted(leftovers) == [tmp_path / "_published.json", tmp_path / "_staging"]
    assert list((tmp_path / "_staging").iterdir()) == []


def test_resumed_run_skips_written_shards_and_has_no_duplicates(tmp_path):
    run = ps.RunInfo("run-c", dt.date(2024, 5, 2), None)
    assert ps.begin_run(tmp_path, run, resume=True) == set()
    ps.write_shard(tmp_path, run, "00000", tables([lad_doc("r1")], run))
    # a crash before commit: nothing is visible to readers yet
    assert not (tmp_path / "records").exists()
    done = ps.begin_run(tmp_path, run, resume=True)
    assert done == {"00000"}
    ps.write_shard(tmp_path, run, "00000", tables([lad_doc("r1")], run))  # written again
    ps.write_shard(tmp_path, run, "00001", tables([coordination_doc("r2")], run))
    ps.commit_run(tmp_path, run)
    df = pd.read_parquet(tmp_path / "reports")
    assert sorted(df.report_id) == ["r1", "r2"]
    assert len(pd.read_parquet(tmp_path / "records")) == 4


def test_incomplete_shard_blocks_commit(tmp_path):
    run = ps.RunInfo("run-d", RUN_DATE)
    ps.write_shard(tmp_path, run, "7", tables([lad_doc()], run))
    # simulate a crash after one file of shard 8, before its marker
    staged = tmp_path / "_staging/run_id=run-d/records/part-8.parquet"
    staged.write_bytes((tmp_path / "_staging/run_id=run-d/records/part-7.parquet").read_bytes())
    with pytest.raises(RuntimeError, match="shard '8' was not completed"):
        ps.commit_run(tmp_path, run)


def test_commit_cut_short_is_finished_by_begin_run(tmp_path):
    run = ps.RunInfo("run-e", RUN_DATE)
    ps.write_shard(tmp_path, run, "0", tables([lad_doc()], run))
    staging = tmp_path / "_staging/run_id=run-e"
    (staging / "COMMIT").touch()  # commit started; no dataset moved yet
    assert (staging / "records").is_dir()
    ps.begin_run(tmp_path, run, resume=True)
    assert not staging.exists()
    assert len(pd.read_parquet(tmp_path / "records")) == 2


def test_empty_run_still_has_every_dataset_with_its_schema(tmp_path):
    run = ps.RunInfo("empty", RUN_DATE)
    ps.write_run(tmp_path, run, {})
    for name in ps.DATASETS:
        table = ps.read_dataset(tmp_path, name)
        assert table.num_rows == 0
        assert table.schema.names[: len(ps.SCHEMAS[name])] == ps.SCHEMAS[name].names


def test_unsafe_run_id_is_refused():
    with pytest.raises(ValueError, match="cannot name a folder"):
        ps.RunInfo("../etc", RUN_DATE)
