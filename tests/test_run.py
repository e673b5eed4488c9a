"""The run protocol (`pipeline.run`), archive -> model -> Parquet: accounting, incremental
re-runs, restarts after a failure."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from extraction_fakes import FakeExtractor

from export.parquet_sink import read_dataset
from pipeline.run import RunSettings, run
from pipeline.sinks import ParquetSink

TEXT = "前降支近段狭窄70%。回旋支未见明显狭窄。"


def _archive(root: Path, n: int = 7) -> Path:
    folder = root / "archive"
    (folder / "sub").mkdir(parents=True)
    for i in range(n):
        (folder / ("sub" if i % 2 else "") / f"r{i}.txt").write_text(f"{i}：{TEXT}", "utf-8")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "utf16.txt").write_bytes(TEXT.encode("utf-16"))
    (folder / "boom.txt").write_text("BOOM " + TEXT, "utf-8")
    return folder


def _run(archive, out, extractor=None, run_id="run-a", **kw):
    settings = RunSettings(run_id=run_id, shard_reports=3, **kw)
    return run(archive, ParquetSink(out), extractor or FakeExtractor(), settings)


def _rows(out, dataset="reports"):
    return read_dataset(out, dataset).to_pandas()


def test_every_input_is_accounted_for_once_in_summary_and_reports(tmp_path):
    archive = _archive(tmp_path)
    summary = _run(archive, tmp_path / "out")
    d = summary.to_dict()
    assert (d["inputs"], d["extracted"], d["quarantined"], d["failed"]) == (10, 7, 2, 1)
    assert d["processed"] + d["quarantined"] + d["failed"] == d["inputs"]
    reports = _rows(tmp_path / "out")
    assert len(reports) == 10 and reports["report_id"].is_unique
    by_id = reports.set_index("report_id")
    assert by_id.loc["boom", "status"] == "failed" and "CUDA" in by_id.loc["boom", "reason"]
    assert "UTF-16" in by_id.loc["utf16", "reason"]
    assert by_id.loc["sub/r1", "status"] == "ok"
    saved = json.loads((tmp_path / "out" / "_runs" / "run-a.json").read_text("utf-8"))
    assert saved == d


def test_entity_offsets_in_the_output_point_into_the_report_text(tmp_path):
    archive = _archive(tmp_path)
    _run(archive, tmp_path / "out")
    entities = _rows(tmp_path / "out", "entities")
    assert len(entities) == 7 * 4
    for row in entities.itertuples():
        text = (archive / f"{row.report_id}.txt").read_text("utf-8")
        assert text[row.start:row.end] == row.text
    assert set(entities["model_version"]) == {"fake-1"}


def test_rerun_with_the_same_model_extracts_nothing_and_duplicates_nothing(tmp_path):
    archive, out = _archive(tmp_path), tmp_path / "out"
    _run(archive, out)
    extractor = FakeExtractor()
    again = _run(archive, out, extractor, run_id="run-b")
    # the failed report is tried again (its failure may have been transient); nothing else.
    # The two unreadable ones are not read again, but are counted (and listed) as quarantined,
    # not as done: the operator still has to fix them.
    assert (again.skipped, again.quarantined, again.extracted, again.failed) == (7, 2, 0, 1)
    assert sorted(p.split(":")[0] for p in again.problems) == [
        "failed", "quarantined", "quarantined"]
    assert all(p.endswith("(as before)") for p in again.problems if p.startswith("quarantined"))
    assert extractor.calls == 2  # tried in its batch, then alone; no other report
    assert again.processed + again.quarantined + again.failed == again.inputs == 10
    ok = _rows(out).query("status == 'ok'")
    assert ok["report_id"].is_unique and len(ok) == 7
    assert len(_rows(out, "entities")) == 7 * 4


def test_changed_text_or_new_model_version_is_extracted_again(tmp_path):
    archive, out = _archive(tmp_path), tmp_path / "out"
    _run(archive, out)
    (archive / "r0.txt").write_text("右冠狭窄50%。", "utf-8")
    changed = _run(archive, out, run_id="run-b")
    assert changed.extracted == 1
    new_model = _run(archive, out, FakeExtractor(model_version="fake-2"), run_id="run-c")
    assert new_model.extracted == 7


def test_rerunning_a_published_run_id_replaces_its_partition(tmp_path):
    archive, out = _archive(tmp_path), tmp_path / "out"
    _run(archive, out)
    again = _run(archive, out)
    assert again.extracted == 7
    reports = _rows(out)
    assert len(reports) == 10 and reports["report_id"].is_unique


class _CrashAfter(ParquetSink):
    """Stages `n` shards, then dies while writing the next one (after its files, before the
    manifest records it) -- the worst moment."""

    def __init__(self, out, n: int) -> None:
        super().__init__(out)
        object.__setattr__(self, "left", [n])

    def write_shard(self, run, shard, schema) -> None:
        if self.left[0] == 0:
            # the shard's files are staged, but the manifest never records it
            from export import parquet_sink
            from pipeline.manifest import Manifest

            with Manifest.for_output(self.out) as manifest:
                manifest.begin_shard(run.run_id, shard.key)
            parquet_sink.write_shard(self.out, run, shard.key, parquet_sink.document_tables(
                shard.extracted.documents, shard.extracted.outcomes, schema, run))
            raise KeyboardInterrupt("simulated crash")
        super().write_shard(run, shard, schema)
        self.left[0] -= 1


@pytest.mark.parametrize("crash_after", [0, 2])
def test_a_run_interrupted_midway_resumes_without_loss_or_duplicates(tmp_path, crash_after):
    archive, out = _archive(tmp_path), tmp_path / "out"

    with pytest.raises(KeyboardInterrupt):
        run(archive, _CrashAfter(out, crash_after), FakeExtractor(),
            RunSettings(run_id="run-a", shard_reports=3))
    assert not (out / "reports").exists()  # nothing published, nothing partial visible
    extractor = FakeExtractor()
    summary = run(archive, ParquetSink(out), extractor,
                  RunSettings(run_id="run-a", shard_reports=3))
    # the staged shards' reports are not extracted again: done, or (unreadable) quarantined
    before = [p for p in summary.problems if p.endswith("(as before)")]
    assert summary.inputs == 10 and summary.skipped + len(before) == 3 * crash_after
    reports = _rows(out)
    assert len(reports) == 10 and reports["report_id"].is_unique
    entities = _rows(out, "entities")
    assert len(entities) == len(entities.drop_duplicates(["report_id", "entity_id"])) == 28
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or "tmp" in p.name]


def test_a_hostile_zip_is_accounted_for_report_by_report(tmp_path):
    line = "术后安返病房，嘱观察穿刺处。\n"  # no entity: the model's work stays small
    big = line * (5 * 1024 * 1024 // len(line.encode("utf-8")) + 1) + "前降支近段狭窄70%。"
    assert len(big.encode("utf-8")) > 5 * 1024 * 1024
    archive = tmp_path / "in.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.txt", big.encode("utf-8"))
        zf.writestr("../x.txt", TEXT.encode("utf-8"))
        zf.writestr("bomb.txt", b"0" * (12 * 1024 * 1024))
        zf.writestr("r1.txt", TEXT.encode("utf-8"))
        zf.writestr("./r1.txt", ("右冠" + TEXT).encode("utf-8"))
        zf.writestr("utf16.txt", TEXT.encode("utf-16"))
        zf.writestr("binary.txt", b"\x00\x01\x02PK")
        zf.writestr("empty.txt", b"")
    summary = _run(archive, tmp_path / "out")
    assert (summary.inputs, summary.extracted, summary.quarantined) == (8, 2, 6)
    reports = _rows(tmp_path / "out").set_index("report_id")
    assert len(reports) == 8  # the duplicate id: both rows kept, the second one quarantined
    assert reports.loc["big", "status"] == "ok"
    assert "escapes" in reports.loc["../x", "reason"]
    assert "zip bomb" in reports.loc["bomb", "reason"]
    dup = reports.loc["r1"]
    assert sorted(dup["status"]) == ["ok", "quarantined"]
    entities = _rows(tmp_path / "out", "entities")
    big_entities = entities[entities["report_id"] == "big"]
    # the whole 5 MB report was read: its last sentence's entities point into its end
    assert sorted(big_entities["start"]) == [len(big) - 11, len(big) - 6]
    assert all(big[r.start:r.end] == r.text for r in big_entities.itertuples())
    assert not (tmp_path / "x.txt").exists() and not (tmp_path / "out" / "x.txt").exists()
