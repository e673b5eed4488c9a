import torch

from extraction.batching import collate, encode_example, length_batches
from extraction.tokenizer import build_tokenizer
from ingest.bieos import tag_set
from ingest.document import Document, Entity, Relation, Span
from ingest.examples import document_examples
from ingest.schema import load_schema

SCHEMA = load_schema()
TEXT = "前降支近段狭窄70%。左主干未见狭窄。"


def _doc():
    def ent(i, t, s, e):
        return Entity(f"T{i}", t, (Span(s, e),), TEXT[s:e])

    return Document("d", TEXT, entities=(
        ent(1, "BodyPart", 0, 3), ent(2, "Location", 3, 5), ent(3, "Degree", 5, 7),
        ent(4, "BodyPart", 11, 14), ent(5, "Negation", 14, 16), ent(6, "Degree", 16, 18)),
        relations=(Relation("R1", "Position", "T1", "T2"), Relation("R2", "Negative", "T6", "T5")))


def test_pairs_are_token_positions_past_cls_and_stay_with_their_sentence(tmp_path):
    tok = build_tokenizer([TEXT], tmp_path, 100)
    tags = tag_set(SCHEMA.entity_types)
    labels = SCHEMA.relation_labels
    examples = document_examples(_doc(), SCHEMA)
    encoded = [encode_example(e, tok, {t: i for i, t in enumerate(tags)},
                              {r: i for i, r in enumerate(labels)}) for e in examples]
    assert encoded[0].pairs[0] == (1, 4, 4, 6)  # 前降支 chars 0-3, 近段 3-5
    batch = collate(encoded, tok.pad_id)
    assert batch.input_ids.shape == (2, 13)  # longest sentence 11 chars + [CLS] + [SEP]
    assert batch.char_mask.sum(1).tolist() == [11, 8]
    assert batch.attention_mask.sum(1).tolist() == [13, 10]
    assert len(batch.pairs) == len(batch.pair_labels) == sum(len(e.pairs) for e in encoded)
    second = batch.pairs.sentence == 1
    assert int(second.sum()) == len(encoded[1].pairs)
    assert labels[int(batch.pair_labels[0])] == "Position"
    assert torch.equal(batch.tags[0], torch.tensor(encoded[0].tag_ids))


def test_length_batches_cover_every_sentence_once():
    import random

    lengths = [5, 40, 7, 33, 12, 9, 60, 2]
    for rng in (None, random.Random(3)):
        batches = length_batches(lengths, 3, rng)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
