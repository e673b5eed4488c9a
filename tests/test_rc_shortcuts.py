"""Each exact shortcut equals the straightforward computation it replaces."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertModel

from extraction.attention_masks import PairIndex, all_mask, rc_mask_4d
from extraction.rc_shortcuts import gather_members, layer_rows, project_kv
from extraction.str_encoder import StrEncoder

TOL = 1e-5


def bert(layers: int = 3, dropout: float = 0.1, attn: str = "sdpa", seed: int = 0) -> BertModel:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=40,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        attn_implementation=attn,
    )
    return BertModel(config, add_pooling_layer=False).eval()


def inputs(lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, n in enumerate(lengths):
        ids[b, :n] = torch.randint(3, 40, (n,), generator=g)
        mask[b, :n] = 1
    return ids, mask


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_layer_rows_on_every_row_equals_bert_layer(attn):
    model = bert(attn=attn)
    ids, mask = inputs([9, 5])
    layer = model.encoder.layer[0]
    hidden = model.embeddings(input_ids=ids)
    additive = all_mask(mask, hidden.dtype)
    with torch.no_grad():
        expected = layer(hidden, attention_mask=additive)
        key, value = project_kv(layer, hidden)
        rows = layer_rows(layer, hidden[:, [0, 3, 4]], key, value, additive)
    assert (rows - expected[:, [0, 3, 4]]).abs().max() < TOL


def test_gather_members_takes_cls_first_and_overlapping_tokens_once():
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0, 0, 0]])
    pairs = PairIndex.from_spans([(0, (2, 5), (3, 4)), (1, (1, 2), (2, 3))])
    index, valid, members = gather_members(pairs, mask)
    assert index[0, valid[0]].tolist() == [0, 2, 3, 4]
    assert index[1, valid[1]].tolist() == [0, 1, 2]
    assert members.sum(dim=1).tolist() == [4, 3]


@pytest.mark.parametrize("rc_mask", ["eq13", "eq14"])
@pytest.mark.parametrize("k", [1, 2, 3, 5, 6])
def test_exact_equals_batched_up_to_every_layer_being_a_task_layer(rc_mask, k):
    encoder = StrEncoder(bert(layers=6), k, rc_mask)
    lengths = [14, 8]
    ids, mask = inputs(lengths)
    pairs = PairIndex.from_spans(
        [(0, (1, 3), (5, 9)), (0, (5, 9), (1, 3)), (0, (12, 13), (2, 5)), (1, (4, 6), (4, 6))]
    )
    with torch.no_grad():
        lower = encoder.lower(ids, mask)
        batched = encoder.rc_cls(lower, mask, pairs, strategy="batched")
        exact = encoder.rc_cls(lower, mask, pairs, strategy="exact")
    assert (exact - batched).abs().max() < TOL


@pytest.mark.parametrize("rc_mask", ["eq13", "eq14"])
def test_training_mode_without_dropout_is_still_exact(rc_mask):
    """The training code path (dropout wired through) computes the same function."""
    encoder = StrEncoder(bert(dropout=0.0), 3, rc_mask).train()
    ids, mask = inputs([11, 7])
    pairs = PairIndex.from_spans([(0, (1, 4), (6, 8)), (1, (2, 3), (4, 6))])
    lower = encoder.lower(ids, mask)
    batched = encoder.rc_cls(lower, mask, pairs, strategy="batched")
    exact = encoder.rc_cls(lower, mask, pairs, strategy="exact")
    assert (exact - batched).abs().max() < TOL


def test_training_mode_with_dropout_gives_finite_gradients():
    encoder = StrEncoder(bert(dropout=0.3), 2, "eq14").train()
    ids, mask = inputs([11, 7])
    pairs = PairIndex.from_spans([(0, (1, 4), (6, 8)), (1, (2, 3), (4, 6))])
    cls = encoder.rc_cls(encoder.lower(ids, mask), mask, pairs)
    cls.square().sum().backward()
    grads = [p.grad for p in encoder.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_eq14_exact_ignores_tokens_outside_the_pair():
    """Changing a token outside [CLS], e1, e2 after the lower layers leaves the [CLS] unchanged."""
    encoder = StrEncoder(bert(), 2, "eq14")
    ids, mask = inputs([10])
    pairs = PairIndex.from_spans([(0, (1, 3), (6, 7))])
    with torch.no_grad():
        lower = encoder.lower(ids, mask)
        changed = lower.clone()
        changed[0, 4] += 1.0
        before = encoder.rc_cls(lower, mask, pairs)
        after = encoder.rc_cls(changed, mask, pairs)
        full = rc_mask_4d(pairs, mask, "eq14", lower.dtype)
        hidden = changed
        for layer in encoder.task_layers:
            hidden = layer(hidden, attention_mask=full)
    assert torch.equal(before, after)
    assert (hidden[:, 0] - after).abs().max() < TOL
