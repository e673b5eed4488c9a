"""The model's doubt as brat AnnotatorNotes: written for unsure annotations only, read back
verbatim by the brat reader, recognised as the model's, and stripped on ingest so they are never
taken for annotations."""

from __future__ import annotations

from ingest.brat_reader import parse_ann
from ingest.brat_writer import format_ann, write_document
from ingest.corpus import load_corpus
from ingest.document import Document, Entity, OtherAnnotation, Relation, Span
from ingest.model_notes import (
    is_model_note,
    model_notes,
    note_text,
    strip_model_notes,
    with_model_notes,
)
from ingest.schema import load_schema

TEXT = "前降支近段狭窄70%。"


def predicted() -> Document:
    return Document("r1", TEXT, (
        Entity("T1", "BodyPart", (Span(0, 3),), "前降支", 0.99),
        Entity("T2", "Location", (Span(3, 5),), "近段", 0.41),
        Entity("T3", "Degree", (Span(5, 7),), "狭窄", 0.95),
        Entity("T4", "Quantifier", (Span(7, 10),), "70%", 0.899),
    ), (
        Relation("R1", "Modifier", "T3", "T1", 0.97),
        Relation("R2", "Position", "T1", "T2", 0.55),
        Relation("R3", "Percentage", "T3", "T4", 0.93),
    ), annotated=False)


def test_a_note_is_written_for_each_annotation_under_the_threshold_only():
    notes = model_notes(predicted(), below=0.9)
    assert [(n.id, n.fields) for n in notes] == [
        ("#1", ("AnnotatorNotes T2", "model 0.41")),
        ("#2", ("AnnotatorNotes T4", "model 0.89")),  # 0.899 rounds down: under 0.9 it shows
        ("#3", ("AnnotatorNotes R2", "model 0.55")),
    ]
    assert model_notes(predicted(), below=0.4) == ()
    assert "#1\tAnnotatorNotes T2\tmodel 0.41\n" in format_ann(with_model_notes(predicted()))


def test_note_ids_do_not_collide_with_the_documents_own_notes():
    human = OtherAnnotation("#", "#1", ("AnnotatorNotes T1", "check the segment"))
    document = Document("r1", TEXT, predicted().entities[:2], others=(human,))
    assert [n.id for n in model_notes(document)] == ["#2"]


def test_notes_round_trip_through_the_reader_and_writer_and_are_not_annotations():
    document = with_model_notes(predicted())
    text = format_ann(document)
    parsed = parse_ann(text, "r1.ann")
    assert parsed.findings == ()
    assert [e.id for e in parsed.entities] == ["T1", "T2", "T3", "T4"]
    assert [r.id for r in parsed.relations] == ["R1", "R2", "R3"]
    assert all(e.confidence is None for e in parsed.entities)  # no confidence comes back
    assert parsed.others == document.others and all(is_model_note(o) for o in parsed.others)
    reread = Document("r1", TEXT, parsed.entities, parsed.relations, parsed.others)
    assert format_ann(reread) == text


def test_only_the_exact_model_text_is_a_model_note():
    def note(text: str, target: str = "AnnotatorNotes T1") -> OtherAnnotation:
        return OtherAnnotation("#", "#1", (target, text))

    assert is_model_note(note("model 0.41")) and is_model_note(note("model 1.00"))
    for text in ("model 0.41 but the segment is wrong", "model 41%", "Model 0.41",
                 "model 0.4", "checked"):
        assert not is_model_note(note(text)), text
    assert not is_model_note(OtherAnnotation("#", "#1", ("Other T1", "model 0.41")))
    assert not is_model_note(OtherAnnotation("A", "A1", ("Negated T1",)))


def test_ingest_strips_model_notes_keeps_human_ones_and_ignores_a_dangling_model_note(tmp_path):
    human = OtherAnnotation("#", "#9", ("AnnotatorNotes T1", "main vessel, see the film"))
    document = with_model_notes(predicted())
    write_document(Document("r1", TEXT, document.entities, document.relations,
                            document.others + (human,)), tmp_path)
    # The annotator deleted T2 (and R2) in a text editor but left the model's notes on them.
    ann = tmp_path / "r1.ann"
    kept = [line for line in ann.read_text(encoding="utf-8").splitlines()
            if not line.startswith(("T2\t", "R2\t"))]
    ann.write_text("\n".join(kept) + "\n", encoding="utf-8")
    load = load_corpus(tmp_path, load_schema())
    assert [f.format() for f in load.findings if f.is_error] == []
    (read,) = load.documents
    assert read.others == (human,)
    assert [e.id for e in read.entities] == ["T1", "T3", "T4"]


def test_strip_keeps_line_numbers_parallel():
    notes = model_notes(predicted())
    human = OtherAnnotation("#", "#7", ("AnnotatorNotes T1", "ok"))
    others, lines, dropped = strip_model_notes((notes[0], human, notes[1]), (5, 6, 7))
    assert others == (human,) and lines == (6,) and dropped == 2


def test_note_text_is_clamped_and_floored():
    assert note_text(0.999) == "model 0.99"
    assert note_text(1.2) == "model 1.00"
    assert note_text(-0.1) == "model 0.00"
