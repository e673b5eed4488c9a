"""`angiokg select`: scores from the model's own confidences, the best N kept in a bounded pool,
near-duplicates skipped, the queue written as a brat collection."""

from __future__ import annotations

import csv
import math
from dataclasses import replace

import pytest
import torch
from extraction_fakes import REPORTS, FakeExtractor, documents, hand_set_extractor, pairs_of

from extraction.select import select_from_predictions
from extraction.temperature import Temperatures
from extraction.uncertainty import expected_errors, least_sure, scorer
from ingest.corpus import load_corpus
from ingest.document import Document, Doubt, Entity, Relation, Span
from ingest.schema import load_schema
from pipeline.select import select
from pipeline.select_queue import QUEUE_CSV, check_queue_folder

torch.set_num_threads(1)

def test_the_hand_set_models_doubt_is_what_its_weights_say():
    for document in hand_set_extractor(0.7).extract(documents()):
        pairs = pairs_of(document.text)
        assert len(document.entities) == len(document.text)
        assert all(e.confidence == pytest.approx(1.0, abs=1e-6) for e in document.entities)
        assert len(document.relations) == pairs
        assert all(r.confidence == pytest.approx(0.7, abs=1e-5) for r in document.relations)
        assert document.doubt.missed_entities == pytest.approx(0.0, abs=1e-6)
        assert document.doubt.missed_relations == pytest.approx(0.0, abs=1e-6)
        h = -(0.7 * math.log(0.7) + 0.3 * math.log(0.3))
        assert document.doubt.entropy == pytest.approx(h * pairs, abs=1e-3)
        assert expected_errors(document) == pytest.approx(0.3 * pairs, abs=1e-4)


def test_relations_the_model_did_not_write_still_count_as_expected_corrections():
    for document in hand_set_extractor(0.4).extract(documents()):
        pairs = pairs_of(document.text)
        assert document.relations == ()  # p(NoRelation) 0.6 wins every pair
        assert document.doubt.missed_relations == pytest.approx(0.4 * pairs, abs=1e-4)
        assert expected_errors(document) == pytest.approx(0.4 * pairs, abs=1e-4)
        assert scorer("least-confidence")(document, 0) == pytest.approx(0.0, abs=1e-6)


def test_temperature_softens_confidences_without_changing_decisions():
    plain = list(hand_set_extractor(0.7).extract(documents()))
    warm = list(hand_set_extractor(0.7, Temperatures(ner=3.0, rc=2.0)).extract(documents()))
    expected = 1 / (1 + math.sqrt(0.3 / 0.7))  # softmax of the logits halved
    for a, b in zip(plain, warm, strict=True):
        assert [(e.type, e.spans) for e in a.entities] == [(e.type, e.spans) for e in b.entities]
        assert [(r.type, r.arg1, r.arg2) for r in a.relations] == \
            [(r.type, r.arg1, r.arg2) for r in b.relations]
        assert all(r.confidence == pytest.approx(expected, abs=1e-5) for r in b.relations)


@pytest.mark.parametrize("strategy", ["expected-errors", "entropy"])
def test_a_hand_set_model_picks_the_reports_it_is_least_sure_of(tmp_path, strategy):
    archive = tmp_path / "archive"
    archive.mkdir()
    for rid, text in REPORTS.items():
        (archive / f"{rid}.txt").write_text(text, encoding="utf-8")
    selection = select(hand_set_extractor(0.7), archive, 2, strategy=strategy)
    # most Degree-BodyPart pairs: r9 (10 characters, 25 pairs), r6 (8, 16)
    assert [p.document.doc_id for p in selection.picks] == ["r9", "r6"]
    assert [p.rank for p in selection.picks] == [1, 2]
    summary = selection.summary
    assert (summary.inputs, summary.scored, summary.picked, summary.not_picked) == (5, 5, 2, 3)


def predicted(doc_id: str, text: str, confidences: list[float], missed: float = 0.0
              ) -> Document:
    entities = tuple(Entity(f"T{i}", "Degree", (Span(i, i + 1),), text[i], c)
                     for i, c in enumerate(confidences))
    return Document(doc_id, text, entities, annotated=False,
                    doubt=Doubt(missed_relations=missed))


def test_strategies_rank_by_what_they_measure():
    docs = [predicted("a", "甲乙丙丁", [0.9, 0.9, 0.9, 0.9]),  # 0.4 expected, min 0.9
            predicted("b", "戊己庚辛", [0.5, 0.99]),  # 0.51 expected, min 0.5
            predicted("c", "壬癸子丑", [0.99], missed=1.2)]  # 1.21 expected, min 0.99

    def order(strategy: str) -> list[str]:
        picks = select_from_predictions(docs, 3, strategy=strategy).picks
        return [p.document.doc_id for p in picks]

    assert order("expected-errors") == ["c", "b", "a"]
    assert order("least-confidence") == ["b", "a", "c"]
    assert sorted(order("random")) == ["a", "b", "c"]
    assert order("random") == order("random")  # seeded
    with pytest.raises(ValueError, match="unknown selection strategy"):
        select_from_predictions(docs, 1, strategy="vibes")


def test_triple_errors_count_what_rc_on_predicted_entities_counts():
    # Hand-set model: every entity sure (1.0), every relation 0.7: each written relation is a
    # triple wrong with 0.3, and nothing is missed, so both scores are 0.3 per pair.
    for document in hand_set_extractor(0.7).extract(documents()):
        assert scorer("triple-errors")(document, 0) == pytest.approx(0.3 * pairs_of(
            document.text), abs=1e-4)
        assert scorer("triple-errors")(document, 0) == pytest.approx(expected_errors(document))
    # By hand: a doubtful entity inside a relation makes its triple doubtful; one in no
    # relation costs nothing (RC does not see it), though expected-errors counts it.
    entities = (Entity("T1", "BodyPart", (Span(0, 3),), "前降支", 0.5),
                Entity("T2", "Degree", (Span(3, 5),), "狭窄", 1.0),
                Entity("T3", "Degree", (Span(5, 7),), "闭塞", 0.5))
    relation = (Relation("R1", "Modifier", "T2", "T1", 0.8),)
    doc = Document("d", "前降支狭窄闭塞", entities, relation, annotated=False,
                   doubt=Doubt(missed_relations=0.25))
    assert scorer("triple-errors")(doc, 0) == pytest.approx(1 - 0.8 * 0.5 + 0.25)
    assert expected_errors(doc) == pytest.approx(0.5 + 0.5 + 0.2 + 0.25)
    lone = replace(doc, doc_id="e", text="回旋支狭窄闭塞", relations=(), doubt=Doubt())
    picks = select_from_predictions([lone, doc], 2, strategy="triple-errors").picks
    assert [p.document.doc_id for p in picks] == ["d", "e"]
    assert picks[1].score == pytest.approx(0.0)


def test_the_pool_keeps_the_best_n_of_a_stream_in_any_order():
    docs = [predicted(f"r{i:03d}", f"报告{i:03d}前降支狭窄{i * 7 % 13}号", [1 - i / 100])
            for i in range(1, 60)]
    best = [d.doc_id for d in sorted(docs, key=expected_errors, reverse=True)[:5]]
    for stream in (docs, docs[::-1], docs[1::2] + docs[::2]):
        selection = select_from_predictions(stream, 5)
        assert [p.document.doc_id for p in selection.picks] == best
        assert selection.summary.not_picked == 54 and selection.summary.duplicate_in_archive == 0


TEMPLATE = ("冠状动脉造影：左主干未见狭窄。前降支近段狭窄约{p}%，中段管壁不规则。"
            "回旋支及钝缘支未见明显狭窄。右冠状动脉中段狭窄约50%，远段通畅。结论：冠状动脉粥样硬化性心脏病，单支病变。")
OTHER = "右冠状动脉开口闭塞，可见侧支循环形成。前降支及回旋支通畅，未见狭窄。建议行介入治疗。"


def test_near_duplicates_in_the_archive_leave_only_the_most_uncertain_one():
    docs = [predicted("a", TEMPLATE.format(p=70), [0.6]),
            predicted("b", TEMPLATE.format(p=80), [0.5]),  # one character from a: a near copy
            predicted("c", OTHER, [0.9]),
            predicted("d", TEMPLATE.format(p=90), [0.7])]
    selection = select_from_predictions(docs, 3)
    assert [p.document.doc_id for p in selection.picks] == ["b", "c"]
    assert selection.summary.duplicate_in_archive == 2


def test_reports_already_annotated_or_nearly_identical_to_one_are_never_queued(tmp_path):
    archive, annotated = tmp_path / "archive", tmp_path / "annotated"
    archive.mkdir()
    annotated.mkdir()
    (annotated / "old.txt").write_text(TEMPLATE.format(p=70), encoding="utf-8")
    (annotated / "same-id.txt").write_text("前降支狭窄。", encoding="utf-8")
    (archive / "copy.txt").write_text(TEMPLATE.format(p=75), encoding="utf-8")
    (archive / "same-id.txt").write_text("回旋支狭窄。", encoding="utf-8")
    (archive / "new.txt").write_text(OTHER, encoding="utf-8")
    (archive / "bad.txt").write_bytes("前降支".encode("utf-16"))
    extractor = FakeExtractor()
    selection = select(extractor, archive, 5, exclude=annotated)
    assert [p.document.doc_id for p in selection.picks] == ["new"]
    s = selection.summary
    assert (s.inputs, s.already_annotated, s.duplicate_of_annotated, s.quarantined,
            s.scored) == (4, 1, 1, 1, 1)
    assert extractor.calls == 1  # skipped reports never reach the model


def test_the_queue_folder_opens_as_a_brat_collection(tmp_path):
    from extraction_fakes import train_tiny_model

    from flows.cli import main as angiokg

    train_tiny_model(tmp_path / "model")
    archive = tmp_path / "archive"
    archive.mkdir()
    for rid, text in {**REPORTS, "t1": TEMPLATE.format(p=70), "t2": TEMPLATE.format(p=75),
                      "o": OTHER}.items():
        (archive / f"{rid}.txt").write_text(text, encoding="utf-8")
    out = tmp_path / "queue"
    code = angiokg(["select", str(tmp_path / "model"), str(archive), "--n", "4", "--out",
                    str(out), "--device", "cpu", "--note-below", "1.0"])
    assert code == 0
    assert {p.name for p in out.glob("*.conf")} == {"annotation.conf", "visual.conf",
                                                    "tools.conf"}
    with (out / QUEUE_CSV).open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["rank"]) for r in rows] == [1, 2, 3, 4]
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert not {"t1", "t2"} <= {r["report_id"] for r in rows}  # never both near-copies
    load = load_corpus(out, load_schema())
    assert [f.format() for f in load.findings if f.is_error] == []
    assert sorted(d.doc_id for d in load.documents) == sorted(r["report_id"] for r in rows)
    assert angiokg(["validate", str(out), "--strict"]) == 0  # as an annotator's corpus
    for row in rows:
        assert (out / f"{row['report_id']}.txt").read_text(encoding="utf-8") == \
            (archive / f"{row['report_id']}.txt").read_text(encoding="utf-8")
        ann = (out / f"{row['report_id']}.ann").read_text(encoding="utf-8")
        # every written annotation has a note under --note-below 1.0
        assert ann.count("AnnotatorNotes") == sum(line[0] in "TR" for line in ann.splitlines())
    assert angiokg(["select", str(tmp_path / "model"), str(archive), "--n", "1", "--out",
                    str(out)]) == 2  # an existing queue is never overwritten


def test_least_sure_lists_entities_and_relations_with_their_text():
    document = Document("r", "前降支狭窄", (
        Entity("T1", "BodyPart", (Span(0, 3),), "前降支", 0.95),
        Entity("T2", "Degree", (Span(3, 5),), "狭窄", 0.8)),
        (Relation("R1", "Modifier", "T2", "T1", 0.6),), annotated=False)
    assert [i.format() for i in least_sure(document, 2)] == ["R1 Modifier 狭窄->前降支 0.60",
                                                             "T2 Degree 狭窄 0.80"]


def test_a_queue_folder_must_be_new_or_empty(tmp_path):
    assert check_queue_folder(tmp_path / "new") == tmp_path / "new"
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "a.txt").write_text("x", encoding="utf-8")
    with pytest.raises(ValueError, match="new folder"):
        check_queue_folder(tmp_path / "old")


def _archive_folder(path, reports):
    path.mkdir()
    for rid, text in reports.items():
        (path / f"{rid}.txt").write_text(text, encoding="utf-8")
    return path


def test_a_tar_archive_is_spooled_through_the_run_protocol_and_leaves_only_the_queue(tmp_path):
    import tarfile

    from pipeline.select import select_to_folder

    folder = _archive_folder(tmp_path / "archive", REPORTS)
    packed = tmp_path / "archive.tar.gz"
    with tarfile.open(packed, "w:gz") as tar:
        for rid in REPORTS:
            tar.add(folder / f"{rid}.txt", arcname=f"reports/{rid}.txt")
    out = tmp_path / "queue"
    from_tar = select_to_folder(lambda: hand_set_extractor(0.7), packed, out, 2)
    from_folder = select(hand_set_extractor(0.7), folder, 2)
    assert [p.document.doc_id for p in from_tar.picks] == ["reports/r9", "reports/r6"]
    assert [p.score for p in from_tar.picks] == [p.score for p in from_folder.picks]
    assert from_tar.summary.inputs == 5
    # the run's spool (the tar's new reports, one shard at a time) is gone with the run
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                  if p.is_file() and not p.name.endswith(".conf")) == [
        "_angiokg.lock", "queue.csv", "reports/r6.ann", "reports/r6.txt", "reports/r9.ann",
        "reports/r9.txt"]


def test_a_locked_queue_folder_is_refused_before_the_model_is_loaded(tmp_path):
    from pipeline.lock import OutputLocked, output_lock
    from pipeline.select import select_to_folder

    archive = _archive_folder(tmp_path / "archive", REPORTS)
    loaded = []
    with (output_lock(tmp_path / "queue", wait=False, command="another select"),
          pytest.raises(OutputLocked)):
        select_to_folder(lambda: loaded.append(1) or FakeExtractor(), archive,
                         tmp_path / "queue", 2)
    assert loaded == []


def test_queue_csv_cells_never_run_as_spreadsheet_formulas(tmp_path):
    from pipeline.select import select_to_folder
    from pipeline.select_queue import read_queue

    # report ids (file names) and the report's own words are input text
    hostile = {"=1+2": "前降支狭窄。", "@SUM(A1)": "回旋支狭窄。", "-2+3": "右冠狭窄。",
               "'quoted": "前降支近段狭窄闭塞。", "plain": "通畅。"}
    archive = _archive_folder(tmp_path / "archive", hostile)
    out = tmp_path / "queue"
    selection = select_to_folder(FakeExtractor, archive, out, 5)
    assert len(selection.picks) == 5
    with (out / QUEUE_CSV).open(encoding="utf-8", newline="") as handle:
        raw = list(csv.DictReader(handle))
    assert sorted(r["report_id"] for r in raw) == ["''quoted", "'-2+3", "'=1+2", "'@SUM(A1)",
                                                   "plain"]
    cells = [cell for row in raw for cell in row.values()]
    assert not [c for c in cells if c and c[0] in "=+-@\t\r"]
    read = read_queue(out)
    assert sorted(r["report_id"] for r in read) == sorted(hostile)
    assert [r["least_sure"] for r in read] == [r["least_sure"] for r in raw]  # nothing to undo
    for row in read:  # the brat files keep the report's own name
        assert (out / f"{row['report_id']}.txt").read_text(encoding="utf-8") == \
            hostile[row["report_id"]]
