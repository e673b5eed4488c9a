"""Pre-annotation writes brat pairs that the corpus validator accepts with zero errors."""

from __future__ import annotations

import zipfile

import pytest
import torch
from extraction_fakes import FakeExtractor, train_tiny_model

from flows.cli import main as angiokg
from ingest.corpus import load_corpus
from ingest.generator import generate_corpus
from ingest.schema import load_schema
from pipeline.preannotate import preannotate


def _errors(folder):
    load = load_corpus(folder, load_schema())
    return load, [f.format() for f in load.findings if f.is_error]


def test_predictions_become_valid_ann_files_beside_exact_copies(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "2024").mkdir(parents=True)
    texts = {"a": "前降支近段狭窄70%。", "2024/b": "\ufeff回旋支未见狭窄；\r\n右冠通畅。",
             "c": "结论：冠脉造影未见异常。"}
    for rid, text in texts.items():
        (src / f"{rid}.txt").write_bytes(text.encode("utf-8"))
    (src / "bad.txt").write_bytes("前降支".encode("utf-16"))
    (src / "boom.txt").write_text("BOOM 前降支狭窄。", encoding="utf-8")

    summary = preannotate(FakeExtractor(), src, out)

    assert summary.written == 4 and summary.entities == 5 and summary.relations == 2
    assert any("bad.txt" in p and "UTF-16" in p for p in summary.problems)
    assert any("CUDA" in p for p in summary.problems)  # model failure: copied, empty .ann
    for rid, text in texts.items():
        assert (out / f"{rid}.txt").read_bytes() == text.encode("utf-8")
    assert (out / "boom.ann").read_text(encoding="utf-8") == ""
    assert not (out / "bad.txt").exists()
    assert "T1\tBodyPart 0 3\t前降支" in (out / "a.ann").read_text(encoding="utf-8")
    load, errors = _errors(out)
    assert errors == [] and len(load.valid) == 4


def test_the_output_is_a_brat_collection_with_the_models_doubt_as_notes(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    (src / "a.txt").write_text("前降支近段狭窄70%。", encoding="utf-8")
    # the fake's entities have confidence 0.9 and its relation 0.8
    preannotate(FakeExtractor(), src, out, note_below=0.85)
    assert {p.name for p in out.glob("*.conf")} == {"annotation.conf", "visual.conf",
                                                    "tools.conf"}
    ann = (out / "a.ann").read_text(encoding="utf-8")
    assert "#1\tAnnotatorNotes R1\tmodel 0.80\n" in ann and "AnnotatorNotes T" not in ann
    preannotate(FakeExtractor(), src, out, note_below=0.95, force=True)
    ann = (out / "a.ann").read_text(encoding="utf-8")
    assert ann.count("AnnotatorNotes") == 3  # both entities and the relation
    load, errors = _errors(out)
    assert errors == [] and load.documents[0].others == ()  # stripped on ingest


def test_output_folder_must_differ_from_the_input(tmp_path):
    (tmp_path / "a.txt").write_text("前降支狭窄。", encoding="utf-8")
    with pytest.raises(ValueError, match="must differ"):
        preannotate(FakeExtractor(), tmp_path, tmp_path)


@pytest.mark.slow
def test_preannotate_command_with_a_real_model_writes_valid_brat(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # shared machine: one thread is several times faster here
    try:
        train_tiny_model(tmp_path / "model")
        generate_corpus(12, 5, tmp_path / "in", annotated=False)
        code = angiokg(["preannotate", str(tmp_path / "model"), str(tmp_path / "in"),
                        str(tmp_path / "out"), "--device", "cpu"])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    load, errors = _errors(tmp_path / "out")
    assert errors == [] and len(load.valid) == 12
    for document in load.documents:
        assert all(document.text[e.start:e.end] == e.text for e in document.entities)


def test_a_zip_member_escaping_the_output_folder_is_never_written(tmp_path):
    archive = tmp_path / "in.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../x.txt", "前降支狭窄。".encode())
        zf.writestr("/tmp/abs.txt", "前降支狭窄。".encode())
        zf.writestr("ok.txt", "前降支狭窄。".encode())
    out = tmp_path / "deep" / "out"
    summary = preannotate(FakeExtractor(), archive, out)
    assert summary.written == 1 and len(summary.problems) == 2
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.txt")) == [
        "deep/out/ok.txt"]


def test_an_annotators_ann_is_never_overwritten_without_force(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for rid in ("a", "b"):
        (src / f"{rid}.txt").write_text("前降支近段狭窄70%。", encoding="utf-8")
    out.mkdir()
    corrected = "T1\tBodyPart 0 3\t前降支\n#1\tAnnotatorNotes T1\tchecked by Dr. Li\n"
    (out / "a.txt").write_text("前降支近段狭窄70%。", encoding="utf-8")
    (out / "a.ann").write_text(corrected, encoding="utf-8")

    summary = preannotate(FakeExtractor(), src, out)
    assert (summary.written, summary.kept) == (1, 1)
    assert (out / "a.ann").read_text(encoding="utf-8") == corrected
    assert "Degree" in (out / "b.ann").read_text(encoding="utf-8")

    forced = preannotate(FakeExtractor(), src, out, force=True)
    assert (forced.written, forced.kept) == (2, 0)
    assert "checked by Dr. Li" not in (out / "a.ann").read_text(encoding="utf-8")


def test_an_output_folder_inside_the_input_is_not_read_as_input(tmp_path):
    src = tmp_path / "in"
    (src / "2024").mkdir(parents=True)
    (src / "a.txt").write_text("前降支近段狭窄70%。", encoding="utf-8")
    (src / "2024" / "b.txt").write_text("回旋支未见狭窄。", encoding="utf-8")
    out = src / "pre"
    first = preannotate(FakeExtractor(), src, out)
    second = preannotate(FakeExtractor(), src, out)
    assert first.written == 2
    assert (second.written, second.kept) == (0, 2)  # its own output was not read
    assert sorted(p.relative_to(src).as_posix() for p in src.rglob("*.txt")) == [
        "2024/b.txt", "a.txt", "pre/2024/b.txt", "pre/a.txt"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no spool left
