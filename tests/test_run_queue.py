"""The nightly's queue from what its run published (pipeline.run_queue): the same choice a
second model pass (`angiokg select`) makes, from the run's Parquet, without the model."""

from __future__ import annotations

from dataclasses import replace

import pyarrow.parquet as pq
import pytest
import torch
from extraction_fakes import train_tiny_model

from export.parquet_sink import REPORTS, partition_dir
from export.published import RunInfo
from export.run_documents import parse_spans, predictions
from extraction.predict import Extractor
from ingest.document import Document, Doubt, Entity, Relation, ReportOutcome, ReportStatus, Span
from ingest.generator import generate_corpus
from ingest.schema import load_schema
from pipeline.manifest import Manifest
from pipeline.run import RunSettings, run
from pipeline.run_queue import queue_from_run, select_from_run
from pipeline.select import select
from pipeline.select_queue import read_queue
from pipeline.sinks import ParquetSink

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """A tiny trained model, an archive of new reports (one of them an annotated report under
    another name, one a near copy of another), and the run that extracted it."""
    root = tmp_path_factory.mktemp("night")
    train_tiny_model(root / "model", reports=8)
    annotated, archive = root / "annotated", root / "archive"
    generate_corpus(6, seed=3, out_dir=annotated)
    generate_corpus(14, seed=4, out_dir=archive, annotated=False, prefix="new")
    (archive / "old.txt").write_bytes(next(annotated.glob("*.txt")).read_bytes())
    first = (archive / "new-000000.txt").read_text(encoding="utf-8")
    (archive / "copy.txt").write_text(first.replace("。", "；", 1), encoding="utf-8")
    extractor = Extractor.load(root / "model", schema=load_schema())
    summary = run(archive, ParquetSink(root / "out"), extractor, RunSettings(shard_reports=5))
    with Manifest.for_output(root / "out") as manifest:
        new = manifest.report_hashes(summary.run_id)
        record = manifest.run(summary.run_id)
    return {"root": root, "archive": archive, "annotated": annotated, "extractor": extractor,
            "run": RunInfo(record.run_id, record.run_date, record.model_version), "new": new}


def _view(document: Document):
    return (document.doc_id, document.text,
            [(e.id, e.type, e.spans, e.text) for e in document.entities],
            [(r.id, r.type, r.arg1, r.arg2) for r in document.relations])


def _confidences(document: Document) -> list[float]:
    return [item.confidence for item in (*document.entities, *document.relations)]


@pytest.mark.parametrize("strategy", ["expected-errors", "triple-errors", "entropy"])
def test_the_run_queue_chooses_what_a_second_model_pass_chooses(night, strategy):
    n = 5
    again = select(night["extractor"], night["archive"], n, exclude=night["annotated"],
                   strategy=strategy)
    kept = select_from_run(night["root"] / "out", night["run"], night["new"], night["archive"],
                           n, exclude=night["annotated"], strategy=strategy)
    assert [p.document.doc_id for p in kept.picks] == [p.document.doc_id for p in again.picks]
    assert [p.rank for p in kept.picks] == list(range(1, n + 1))
    # the second pass batches the reports differently: the same predictions to float noise
    assert [p.score for p in kept.picks] == pytest.approx([p.score for p in again.picks],
                                                          rel=1e-4)
    assert [_view(p.document) for p in kept.picks] == [_view(p.document) for p in again.picks]
    for mine, theirs in zip(kept.picks, again.picks, strict=True):
        assert _confidences(mine.document) == pytest.approx(_confidences(theirs.document),
                                                            abs=1e-4)
        # a sum of p(missed) over every token: float32 noise grows with the report, so relative
        assert mine.document.doubt.missed_entities == pytest.approx(
            theirs.document.doubt.missed_entities, rel=1e-4)
        assert mine.document.annotated is False
        assert mine.document.source == theirs.document.source
    a, b = kept.summary, again.summary
    assert (a.inputs, a.scored, a.picked, a.not_picked, a.duplicate_of_annotated,
            a.duplicate_in_archive) == (b.inputs, b.scored, b.picked, b.not_picked,
                                        b.duplicate_of_annotated, b.duplicate_in_archive)
    assert a.inputs == 16 and a.duplicate_of_annotated == 1  # "old" is never queued
    assert "old" not in {p.document.doc_id for p in kept.picks}


def test_a_report_changed_since_the_run_waits_for_the_next_night(night, tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    for path in night["archive"].glob("*.txt"):
        (archive / path.name).write_bytes(path.read_bytes())
    (archive / "new-000003.txt").write_text("右冠状动脉中段狭窄90%。", encoding="utf-8")
    (archive / "new-000004.txt").unlink()
    kept = select_from_run(night["root"] / "out", night["run"], night["new"], archive, 20,
                           exclude=night["annotated"])
    ids = {p.document.doc_id for p in kept.picks}
    assert "new-000003" not in ids and "new-000004" not in ids
    assert kept.summary.inputs == 14
    assert any("1 of run" in p and "changed" in p for p in kept.summary.problems)
    assert any("1 of run" in p and "no longer in the archive" in p
               for p in kept.summary.problems)
    for pick in kept.picks:  # every written span is the text the archive holds now
        for entity in pick.document.entities:
            assert pick.document.text[entity.start:entity.end] == entity.text


def test_the_queue_folder_from_a_run_reads_back_as_the_picks(night, tmp_path):
    out = tmp_path / "queue"
    selection = queue_from_run(night["root"] / "out", night["run"], night["new"],
                               night["archive"], out, 3, load_schema(),
                               exclude=night["annotated"], note_below=1.0)
    rows = read_queue(out)
    assert [r["report_id"] for r in rows] == [p.document.doc_id for p in selection.picks]
    for pick in selection.picks:
        assert (out / f"{pick.document.doc_id}.txt").read_text(encoding="utf-8") == \
            (night["archive"] / f"{pick.document.doc_id}.txt").read_text(encoding="utf-8")
        ann = (out / f"{pick.document.doc_id}.ann").read_text(encoding="utf-8")
        assert ann.count("\tAnnotatorNotes ") == len(pick.document.entities) + len(
            pick.document.relations)  # note_below 1.0: every prediction has its note
    with pytest.raises(ValueError, match="not an empty folder"):
        queue_from_run(night["root"] / "out", night["run"], night["new"], night["archive"],
                       out, 3, load_schema())


def test_the_reports_dataset_keeps_the_doubt_of_each_processed_report(night):
    table = pq.read_table(partition_dir(night["root"] / "out", REPORTS, night["run"]))
    rows = {r["report_id"]: r for r in table.to_pylist()}
    assert set(rows) >= set(night["new"])
    assert all(rows[i]["doubt_entropy"] > 0 and rows[i]["doubt_missed_entities"] >= 0
               for i in night["new"])


def test_predictions_read_back_are_the_documents_written():
    from export.parquet_sink import document_tables

    entities = (Entity("T1", "BodyPart", (Span(0, 3),), "前降支", 0.75),
                Entity("T2", "Degree", (Span(3, 5), Span(6, 8)), "狭窄闭塞", 0.5))
    written = [Document("a", "前降支狭窄，闭塞。", entities,
                        (Relation("R1", "Modifier", "T2", "T1", 0.625),), annotated=False,
                        source="x/a.txt", doubt=Doubt(0.25, 0.5, 1.5)),
               Document("b", "通畅。", annotated=False, source="x/b.txt", doubt=Doubt())]
    outcomes = [ReportOutcome("a", ReportStatus.OK, source="x/a.txt"),
                ReportOutcome("q", ReportStatus.QUARANTINED, "empty", "x/q.txt"),
                ReportOutcome("b", ReportStatus.OK, source="x/b.txt")]
    import datetime as dt
    tables = document_tables(written, outcomes, load_schema(),
                             RunInfo("run-1", dt.date(2026, 12, 2), "m1"))
    back = list(predictions(tables, {"a": written[0].text, "b": written[1].text}))
    assert back == written  # text, entities, relations (Document compares those)
    assert [(d.source, d.doubt, d.annotated) for d in back] == \
        [(d.source, d.doubt, d.annotated) for d in written]
    assert [d.doc_id for d in predictions(tables, ids={"b"})] == ["b"]
    assert [d.text for d in predictions(tables)] == ["", ""]
    assert parse_spans("3 5;6 8") == (Span(3, 5), Span(6, 8))
    gold = replace(written[0], doubt=None, annotated=True)
    tables = document_tables([gold], outcomes[:1], load_schema(),
                             RunInfo("run-2", dt.date(2026, 12, 2)))
    assert next(predictions(tables)).doubt is None  # annotations carry no doubt
