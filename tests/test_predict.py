"""Extractor: the NER-only pass (`relations=False`)."""

from __future__ import annotations

import torch
from extraction_fakes import tiny_model_with_zeroed_crf

from extraction.bert_factory import BertSize, new_bert
from extraction.model import FocusedAttentionModel
from extraction.predict import Extractor
from extraction.str_encoder import StrEncoder
from extraction.tokenizer import SPECIAL_TOKENS, CharTokenizer, model_text
from ingest.bieos import tag_set
from ingest.document import Document
from ingest.schema import load_schema

TEXT = "前降支狭窄，回旋支狭窄。"


def _model_tagging_degree_and_vessel_alternately(schema) -> tuple[FocusedAttentionModel,
                                                                    CharTokenizer]:
    """A tiny untrained model set by hand so that its CRF tags the characters S-Degree,
    S-BodyPart, S-Degree, ... and its RC head calls every allowed pair Modifier: a sentence
    then has many entities and many pairs to classify."""
    model, tokenizer = tiny_model_with_zeroed_crf([TEXT], schema)
    degree, vessel = model.tags.index("S-Degree"), model.tags.index("S-BodyPart")
    with torch.no_grad():
        emit = model.ner_head.emit
        emit.weight.zero_()
        emit.bias.fill_(-5.0)
        emit.bias[[degree, vessel]] = 5.0
        crf = model.ner_head.crf.parametrizations
        crf.transitions.original[degree, vessel] = crf.transitions.original[vessel, degree] = 1.0
        out = model.rc_head.out
        out.weight.zero_()
        out.bias.fill_(-5.0)
        out.bias[schema.relation_labels.index("Modifier")] = 5.0
    return model, tokenizer


def test_ner_only_pass_gives_the_same_entities_without_classifying_relations(monkeypatch):
    schema = load_schema()
    model, tokenizer = _model_tagging_degree_and_vessel_alternately(schema)
    document = Document("r1", TEXT, annotated=False)

    full = Extractor(model, tokenizer, schema, device="cpu")
    (with_relations,) = full.extract([document])
    assert len(with_relations.entities) >= 4 and len(with_relations.relations) >= 2

    def no_rc(*args, **kwargs):
        raise AssertionError("the NER-only pass classified relations")

    monkeypatch.setattr(model, "relation_probs", no_rc)
    ner_only = Extractor(model, tokenizer, schema, device="cpu", relations=False)
    (entities_only,) = ner_only.extract([document])
    assert entities_only.entities == with_relations.entities
    assert entities_only.relations == ()


def test_a_single_task_model_is_only_asked_what_it_was_trained_for(monkeypatch):
    schema = load_schema()
    model, tokenizer = _model_tagging_degree_and_vessel_alternately(schema)
    document = Document("r1", TEXT, annotated=False)

    model.mode = "ner_only"  # its RC head would answer Modifier for every pair, untrained
    (entities_only,) = Extractor(model, tokenizer, schema, device="cpu").extract([document])
    assert len(entities_only.entities) >= 4 and entities_only.relations == ()

    model.mode = "rc_only"  # its CRF would tag noise: it finds nothing by itself
    rc_only = Extractor(model, tokenizer, schema, device="cpu")
    (nothing,) = rc_only.extract([document])
    assert nothing.entities == () and nothing.relations == ()
    gold = rc_only.predict_relations_gold(entities_only)
    assert gold.entities == entities_only.entities and len(gold.relations) >= 2


def test_windows_batches_and_pair_chunks_predict_what_one_sentence_at_a_time_does(monkeypatch):
    """Sorting a window's sentences into batches, and classifying a batch's pairs a few at a
    time, change only the order of the work: each report's entities and relations (and their
    confidences, to float rounding) are those of predicting every sentence on its own."""
    from extraction import predict
    from ingest.generator import generate_report

    schema = load_schema()
    documents = [Document(f"g{i}", generate_report(i, 3, annotated=False, prefix="g").text)
                 for i in range(3)]
    tokenizer = CharTokenizer((*SPECIAL_TOKENS, *sorted({c for d in documents for c in d.text})))
    size = BertSize(hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                    intermediate_size=32, max_position_embeddings=160)
    torch.manual_seed(4)
    model = FocusedAttentionModel(StrEncoder(new_bert(len(tokenizer), size), 2),
                                  tag_set(schema.entity_types), schema.relation_labels,
                                  dropout=0.0)
    extractor = Extractor(model, tokenizer, schema, device="cpu")
    alone = [next(extractor.extract([d], batch_size=1)) for d in documents]

    monkeypatch.setattr(predict, "SORT_WINDOW_BATCHES", 2)
    monkeypatch.setattr(predict, "RC_PAIRS_PER_CHUNK", 3)
    together = list(extractor.extract(documents, batch_size=5))

    assert sum(len(d.relations) for d in alone) >= 10  # pairs enough to cut into chunks
    for one, many in zip(alone, together, strict=True):
        assert [(e.id, e.type, e.spans) for e in many.entities] == \
            [(e.id, e.type, e.spans) for e in one.entities]
        assert [(r.type, r.arg1, r.arg2) for r in many.relations] == \
            [(r.type, r.arg1, r.arg2) for r in one.relations]
        for a, b in zip((*one.entities, *one.relations), (*many.entities, *many.relations),
                        strict=True):
            assert abs(a.confidence - b.confidence) < 1e-5


def test_full_width_text_gets_the_predictions_of_its_half_width_form_at_its_own_offsets():
    schema = load_schema()
    half, full = "LAD近段狭窄70%~80%,右冠未见狭窄", "ＬＡＤ近段狭窄７０％～８０％，右冠未见狭窄"
    tokenizer = CharTokenizer((*SPECIAL_TOKENS, *sorted(set(model_text(half)))))
    size = BertSize(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=32, max_position_embeddings=64)
    torch.manual_seed(3)  # random weights: any predictions, as long as both forms get the same
    model = FocusedAttentionModel(StrEncoder(new_bert(len(tokenizer), size), 1),
                                  tag_set(schema.entity_types), schema.relation_labels,
                                  dropout=0.0)
    with torch.no_grad():
        model.ner_head.emit.bias.add_(torch.linspace(-1, 1, len(model.tags)))
    extractor = Extractor(model, tokenizer, schema, device="cpu")
    a, b = extractor.extract([Document("h", half, annotated=False),
                              Document("f", full, annotated=False)])
    assert a.entities, "the random model should tag something"
    assert [(e.type, e.start, e.end, e.confidence) for e in a.entities] == [
        (e.type, e.start, e.end, e.confidence) for e in b.entities]
    assert all(e.text == full[e.start:e.end] for e in b.entities)
    assert [(r.type, r.arg1, r.arg2) for r in a.relations] == [
        (r.type, r.arg1, r.arg2) for r in b.relations]


def test_extraction_freezes_the_older_objects_only_while_it_runs():
    """The garbage collector leaves the objects alive before an extraction (the model, the
    libraries) alone while it runs, and gets them back when it ends, finished or abandoned."""
    import gc

    schema = load_schema()
    model, tokenizer = _model_tagging_degree_and_vessel_alternately(schema)
    extractor = Extractor(model, tokenizer, schema, device="cpu")
    before = gc.get_freeze_count()
    assert before == 0
    documents = [Document(f"r{i}", TEXT, annotated=False) for i in range(3)]
    running = extractor.extract(documents)
    next(running)
    assert gc.get_freeze_count() > before + 1000  # the model's and the libraries' objects
    assert len(list(running)) == 2
    assert gc.get_freeze_count() == before
    abandoned = extractor.extract(documents)
    next(abandoned)
    abandoned.close()
    assert gc.get_freeze_count() == before
    gc.freeze()  # frozen by someone else: left as it is
    try:
        frozen = gc.get_freeze_count()
        assert len(list(extractor.extract(documents))) == 3
        # not unfrozen (that would be 0); a frozen object freed by its reference count leaves
        # the permanent generation, so the count may drop by a few (42 of 824,550 seen in CI)
        assert gc.get_freeze_count() > frozen - 1000
    finally:
        gc.unfreeze()


def test_a_window_runs_its_longest_batch_first_and_then_shorter_ones_the_same_batches():
    # Longest first: each batch's buffers then fit in the holes the one before left in the heap
    # (extraction.allocator); the batches themselves are length_batches', so results are too.
    from extraction.batching import length_batches
    from extraction.predict import window_batches
    from ingest.examples import SentenceSpan

    lengths = [7, 3, 12, 5, 9, 1, 12, 4, 8, 2, 6]
    document = Document("w", "x" * sum(lengths))
    starts = [sum(lengths[:i]) for i in range(len(lengths))]
    window = [(document, [SentenceSpan("w", i, s, s + n, "x" * n)
                          for i, (s, n) in enumerate(zip(starts, lengths, strict=True))])]
    batches = window_batches(window, 3)
    longest = [max(lengths[i] for i in batch) for batch in batches]
    assert longest == sorted(longest, reverse=True) and longest[0] == 12
    assert sorted(map(sorted, batches)) == sorted(map(sorted, length_batches(lengths, 3)))
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
