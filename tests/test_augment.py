from dataclasses import replace

import pytest
import torch

from extraction.augment import AugmentConfig, augment_corpus, surfaces_by_type
from ingest.brat_writer import write_document
from ingest.corpus import load_corpus
from ingest.generator import generate_report
from ingest.schema import load_schema
from ingest.sentences import sentence_boundaries

SCHEMA = load_schema()
DOCS = [generate_report(i, seed=3) for i in range(40)]
CONFIG = AugmentConfig(copies=2, swap_rate=0.6, punct_rate=0.6, space_rate=0.3)


def test_augmented_copies_keep_the_annotation_and_pass_the_strict_validator(tmp_path):
    copies = augment_corpus(DOCS, CONFIG)
    assert len(copies) == 2 * len(DOCS)
    for document in copies:
        write_document(document, tmp_path)
    load = load_corpus(tmp_path, SCHEMA, policy="strict")
    assert load.findings == () and len(load.documents) == len(copies)
    originals = {d.doc_id: d for d in DOCS}
    for copy in copies:
        original = originals[copy.doc_id.split("~")[0]]
        assert copy.relations == original.relations
        kinds = [(e.id, e.type) for e in original.entities]
        assert [(e.id, e.type) for e in copy.entities] == kinds
        assert all(copy.text[e.start:e.end] == e.text for e in copy.entities)
        assert len(sentence_boundaries(copy.text)) == len(sentence_boundaries(original.text))


def test_copies_write_the_reports_another_way_with_texts_of_the_same_type():
    surfaces = surfaces_by_type(DOCS)
    copies = augment_corpus(DOCS, CONFIG)
    changed = sum(c.text != o.text for c, o in zip(copies, DOCS + DOCS, strict=True))
    assert changed >= 0.9 * len(copies)
    assert all(e.text in surfaces[e.type] for c in copies for e in c.entities)
    text = "".join(c.text for c in copies)
    assert " " in text and "、" in text


def test_a_copy_depends_on_the_seed_copy_number_and_report_only():
    first = augment_corpus(DOCS, CONFIG)
    again = augment_corpus(list(DOCS), CONFIG)
    assert first == again
    assert augment_corpus(DOCS[:5], replace(CONFIG, copies=1)) != augment_corpus(
        DOCS[:5], replace(CONFIG, copies=1, seed=99))
    assert augment_corpus(DOCS, replace(CONFIG, copies=0)) == []


def test_rates_outside_zero_to_one_are_refused():
    with pytest.raises(ValueError, match="swap_rate"):
        AugmentConfig(swap_rate=1.5)


def test_drop_characters_reads_only_characters_as_unknown():
    from extraction.batching import EncodedSentence, collate
    from extraction.train import drop_characters

    sentences = [EncodedSentence((101, *range(200, 260), 102), None, (), ()),
                 EncodedSentence((101, 300, 301, 102), None, (), ())]
    batch = collate(sentences, pad_id=0)
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(drop_characters(batch, 100, 0.0, generator).input_ids, batch.input_ids)
    dropped = drop_characters(batch, 100, 0.5, generator).input_ids
    changed = dropped != batch.input_ids
    assert 15 < int(changed.sum()) < 50 and torch.all(dropped[changed] == 100)
    assert dropped[0, 0] == 101 and dropped[0, 61] == 102
    assert torch.equal(dropped[1, 3:], batch.input_ids[1, 3:])  # [SEP] and padding untouched


def test_sentences_that_start_with_a_vessel_are_joined_to_the_last_one_within_the_limit(tmp_path):
    config = AugmentConfig(copies=1, swap_rate=0.0, punct_rate=0.0, space_rate=0.0,
                           merge_rate=1.0, max_merged_chars=100)
    copies = augment_corpus(DOCS, config)
    fewer = sum(len(sentence_boundaries(c.text)) < len(sentence_boundaries(o.text))
                for c, o in zip(copies, DOCS, strict=True))
    assert fewer >= 5  # the narrative reports (line breaks are never joined)
    for copy, original in zip(copies, DOCS, strict=True):
        assert len(copy.text) == len(original.text) and copy.entities == original.entities
        assert copy.text.count("\n") == original.text.count("\n")
        for start, end in sentence_boundaries(copy.text):
            if (start, end) not in sentence_boundaries(original.text):
                assert end - start <= 100
                first = min((e for e in copy.entities if start <= e.start < end),
                            key=lambda e: e.start, default=None)
                assert first is not None
        write_document(copy, tmp_path)
    assert load_corpus(tmp_path, SCHEMA, policy="strict").findings == ()
