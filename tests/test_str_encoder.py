"""The STR-encoder equals BertModel where the paper says it must, and its RC strategies agree."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertModel

from extraction.attention_masks import PairIndex, rc_allowed, rc_mask_4d
from extraction.str_encoder import StrEncoder

TOL = 1e-5
LAYERS = 4


def tiny_bert(seed: int = 0, attn: str = "sdpa") -> BertModel:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=60,
        hidden_size=32,
        num_hidden_layers=LAYERS,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        attn_implementation=attn,
    )
    return BertModel(config, add_pooling_layer=False).eval()


def batch(lengths: list[int], seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ids with [CLS]=1 first, [SEP]=2 last, padding 0; lengths count [CLS] and [SEP]."""
    g = torch.Generator().manual_seed(seed)
    t = max(lengths)
    ids = torch.zeros(len(lengths), t, dtype=torch.long)
    mask = torch.zeros(len(lengths), t, dtype=torch.long)
    for b, n in enumerate(lengths):
        ids[b, :n] = torch.randint(3, 60, (n,), generator=g)
        ids[b, 0], ids[b, n - 1] = 1, 2
        mask[b, :n] = 1
    return ids, mask


def random_pairs(lengths: list[int], per_sentence: int, seed: int = 2) -> PairIndex:
    """Random spans of 1-3 tokens inside each sentence's characters (may overlap)."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for s, n in enumerate(lengths):
        chars = n - 2
        for _ in range(per_sentence):
            spans = []
            for _ in range(2):
                width = int(torch.randint(1, min(3, chars) + 1, (1,), generator=g))
                start = int(torch.randint(1, chars - width + 2, (1,), generator=g))
                spans.append((start, start + width))
            rows.append((s, spans[0], spans[1]))
    return PairIndex.from_spans(rows)


LENGTHS = [[12, 7, 5], [20, 9]]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("k", [0, 1, 2, 4])
def test_ner_pass_equals_bert_model_last_hidden_state(attn, k):
    bert = tiny_bert(attn=attn)
    encoder = StrEncoder(bert, k)
    ids, mask = batch([12, 7, 5])
    with torch.no_grad():
        expected = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        got = encoder.ner(encoder.lower(ids, mask), mask)
    real = mask.bool()
    assert (got[real] - expected[real]).abs().max() < TOL


def test_k_zero_rc_is_bert_cls():
    bert = tiny_bert()
    encoder = StrEncoder(bert, 0)
    ids, mask = batch([12, 7])
    pairs = random_pairs([12, 7], 2)
    with torch.no_grad():
        expected = bert(input_ids=ids, attention_mask=mask).last_hidden_state[pairs.sentence, 0]
        for strategy in ("literal", "batched", "exact"):
            got = encoder.rc_cls(encoder.lower(ids, mask), mask, pairs, ids, strategy=strategy)
            assert (got - expected).abs().max() < TOL, strategy


def test_all_ones_task_mask_equals_bert_model():
    """With every pair spanning the whole sentence, Eq.(13) and Eq.(14) reduce to MASK^all."""
    bert = tiny_bert()
    lengths = [10, 6]
    ids, mask = batch(lengths)
    pairs = PairIndex.from_spans([(s, (1, 2), (2, n)) for s, n in enumerate(lengths)])
    with torch.no_grad():
        expected = bert(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]
        for rc_mask in ("eq13", "eq14"):
            encoder = StrEncoder(bert, 2, rc_mask)
            for strategy in ("literal", "batched", "exact"):
                got = encoder.rc_cls(encoder.lower(ids, mask), mask, pairs, ids, strategy=strategy)
                assert (got - expected).abs().max() < TOL, (rc_mask, strategy)


def test_masks_follow_equations_13_and_14():
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 0]])
    pairs = PairIndex.from_spans([(0, (1, 2), (3, 5))])
    in_s = torch.tensor([1, 1, 0, 1, 1, 0, 0], dtype=torch.bool)
    eq13 = rc_allowed(pairs, mask, "eq13")[0]
    assert torch.equal(eq13[0], in_s)
    assert torch.equal(eq13[2], mask[0].bool())
    eq14 = rc_allowed(pairs, mask, "eq14")[0]
    assert torch.equal(eq14, in_s[:, None] & in_s[None, :])


@pytest.mark.parametrize("rc_mask", ["eq13", "eq14"])
@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("lengths", LENGTHS)
def test_literal_batched_exact_agree(rc_mask, k, lengths):
    encoder = StrEncoder(tiny_bert(seed=k), k, rc_mask)
    ids, mask = batch(lengths, seed=len(lengths))
    pairs = random_pairs(lengths, 2, seed=k)
    with torch.no_grad():
        lower = encoder.lower(ids, mask)
        literal = encoder.rc_cls(None, mask, pairs, ids, strategy="literal")
        batched = encoder.rc_cls(lower, mask, pairs, strategy="batched")
        exact = encoder.rc_cls(lower, mask, pairs, strategy="exact")
        ner, shared = encoder.ner_and_rc(lower, mask, pairs)
    assert torch.isfinite(literal).all()
    assert (batched - literal).abs().max() < TOL
    assert (exact - literal).abs().max() < TOL
    assert (shared - literal).abs().max() < TOL
    assert (ner - encoder.ner(lower, mask)).abs().max() < TOL
    # The task mask matters: the relation [CLS] is not the NER pass's [CLS].
    assert (literal - ner[pairs.sentence, 0]).abs().max() > 1e-3


def test_eq14_padded_batch_has_no_nan_anywhere():
    encoder = StrEncoder(tiny_bert(), 2, "eq14", "batched")
    lengths = [15, 6]
    ids, mask = batch(lengths)
    pairs = random_pairs(lengths, 2)
    hidden = encoder.lower(ids, mask)[pairs.sentence]
    rc = rc_mask_4d(pairs, mask, "eq14", hidden.dtype)
    with torch.no_grad():
        for layer in encoder.task_layers:
            hidden = layer(hidden, attention_mask=rc)
    assert torch.isfinite(hidden).all()  # every row, including rows that attend to nothing


@pytest.mark.parametrize("rc_mask", ["eq13", "eq14"])
@pytest.mark.parametrize("k", [2, 3])
def test_exact_gradients_equal_batched_gradients(rc_mask, k):
    encoder = StrEncoder(tiny_bert(), k, rc_mask)
    lengths = [12, 7]
    ids, mask = batch(lengths)
    pairs = random_pairs(lengths, 3)
    grads = {}
    for strategy in ("batched", "exact"):
        encoder.zero_grad()
        cls = encoder.rc_cls(encoder.lower(ids, mask), mask, pairs, strategy=strategy)
        (cls.tanh().sum() + cls.pow(2).mean()).backward()
        grads[strategy] = {
            n: p.grad.clone() for n, p in encoder.named_parameters() if p.grad is not None
        }
    assert grads["exact"].keys() == grads["batched"].keys()
    assert any(name.startswith("bert.encoder.layer.0") for name in grads["exact"])
    for name, grad in grads["exact"].items():
        assert torch.isfinite(grad).all(), name
        assert (grad - grads["batched"][name]).abs().max() < 1e-4, name


def test_bad_span_is_refused_with_position():
    encoder = StrEncoder(tiny_bert(), 1)
    ids, mask = batch([6])
    pairs = PairIndex.from_spans([(0, (0, 2), (3, 4))])
    with pytest.raises(ValueError, match="first entity span"):
        encoder.rc_cls(encoder.lower(ids, mask), mask, pairs)


def test_no_pairs_gives_empty_output():
    encoder = StrEncoder(tiny_bert(), 2, "eq13")
    ids, mask = batch([6])
    pairs = PairIndex.from_spans([])
    for strategy in ("literal", "batched", "exact"):
        out = encoder.rc_cls(encoder.lower(ids, mask), mask, pairs, ids, strategy=strategy)
        assert out.shape == (0, 32)
