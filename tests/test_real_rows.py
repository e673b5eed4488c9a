"""The encoder's layers on the real tokens only give BertLayer.forward's rows, padding left out."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertModel

from extraction.attention_masks import PairIndex, all_mask
from extraction.real_rows import real_rows_layers
from extraction.str_encoder import StrEncoder

TOL = 1e-5


def tiny_bert(attn: str = "sdpa") -> BertModel:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=4,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=64, attn_implementation=attn)
    return BertModel(config, add_pooling_layer=False).eval()


def batch(lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ids, [CLS]=1 first and [SEP]=2 last, padded with 0; lengths count both."""
    g = torch.Generator().manual_seed(1)
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, n in enumerate(lengths):
        ids[b, :n] = torch.randint(3, 60, (n,), generator=g)
        ids[b, 0], ids[b, n - 1] = 1, 2
        mask[b, :n] = 1
    return ids, mask


def plain_layers(bert, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    additive = all_mask(mask, hidden.dtype)
    for layer in bert.encoder.layer:
        hidden = layer(hidden, attention_mask=additive)
    return hidden


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("lengths", [[12, 7, 5, 3], [9], [4, 4]])
def test_real_rows_equal_bert_layers_at_real_tokens_and_are_zero_at_padding(attn, lengths):
    bert = tiny_bert(attn=attn)
    ids, mask = batch(lengths)
    with torch.no_grad():
        embedded = bert.embeddings(input_ids=ids)
        expected = plain_layers(bert, embedded, mask)
        got, first = real_rows_layers(list(bert.encoder.layer), embedded, mask,
                               all_mask(mask, embedded.dtype))
    real = mask.bool()
    assert (got[real] - expected[real]).abs().max() < TOL
    assert not got[~real].any()
    sa = bert.encoder.layer[0].attention.self
    for projection, part in zip((sa.query, sa.key, sa.value), first.split(32, dim=-1),
                                strict=True):
        assert (part[real] - projection(embedded)[real]).abs().max() < TOL
    assert not first[~real].any()


def test_padding_does_not_change_a_sentence_s_rows():
    """A sentence alone and padded inside a batch of longer ones: the same rows."""
    bert = tiny_bert()
    encoder = StrEncoder(bert, 2).eval()
    ids, mask = batch([6, 15, 11])
    with torch.no_grad():
        together = encoder.ner(encoder.lower(ids, mask), mask)
        alone = encoder.ner(encoder.lower(ids[:1, :6], mask[:1, :6]), mask[:1, :6])
    assert (together[0, :6] - alone[0]).abs().max() < TOL


def test_training_mode_runs_bert_layers_themselves():
    """In training the layers' own forward runs, padding rows included (dropout draws as
    before), so a padding row is computed, not zero."""
    bert = tiny_bert()
    encoder = StrEncoder(bert, 2).train()
    ids, mask = batch([12, 5])
    torch.manual_seed(0)
    got = encoder.lower(ids, mask)
    torch.manual_seed(0)
    expected = plain_layers_lower(encoder, ids, mask)
    assert torch.equal(got, expected)
    assert got[1, 5:].abs().sum() > 0


def plain_layers_lower(encoder: StrEncoder, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    hidden = encoder.bert.embeddings(input_ids=ids)
    additive = all_mask(mask, hidden.dtype)
    for layer in encoder.lower_layers:
        hidden = layer(hidden, attention_mask=additive)
    return hidden


@pytest.mark.parametrize("k", [1, 2, 3])
def test_the_ner_pass_projections_give_the_pairs_the_same_cls(k):
    """The exact Eq.(14) relation pass reading the NER pass's first task layer projections
    gives each pair the [CLS] of the batched computation (every pair its full sequences)."""
    bert = tiny_bert()
    encoder = StrEncoder(bert, k, rc_mask="eq14").eval()
    lengths = [12, 7, 5]
    ids, mask = batch(lengths)
    g = torch.Generator().manual_seed(2)
    rows = []
    for s, n in enumerate(lengths):
        for _ in range(4):
            a = int(torch.randint(1, n - 2, (1,), generator=g))
            c = int(torch.randint(1, n - 2, (1,), generator=g))
            rows.append((s, (a, a + 2), (c, c + 1)))
    pairs = PairIndex.from_spans(rows)
    with torch.no_grad():
        lower = encoder.lower(ids, mask)
        _, projections = encoder.ner_and_projections(lower, mask)
        assert projections is not None and projections.shape == (*ids.shape, 3 * 32)
        reused = encoder.rc_cls(lower, mask, pairs, projections=projections)
        own = encoder.rc_cls(lower, mask, pairs)
        batched = encoder.rc_cls(lower, mask, pairs, strategy="batched")
    assert (reused - batched).abs().max() < TOL
    assert (reused - own).abs().max() < TOL
