"""The encoder's layers run on a batch's real tokens only, its padding left out.

A batch of sentences is padded to its longest one; BertLayer.forward then runs every row of the
padded (B, T, H) tensor through its projections, output dense, LayerNorm and feed-forward, the
padding rows too, although nothing reads them: every key of a padding token is masked out, and
the NER head and the relation pairs read real tokens only. On the sample archive 13.5% of the
rows the NER pass computed were padding, in batches already sorted by length.

Here the rows stay packed, (R, H) for the R real tokens; only attention, which needs the
sentence's shape, spreads the projected queries, keys and values into the padded shape (zeros
at padding, whose keys the mask hides) and gathers the context back at the real rows. Every
step is the layer's own module (query/key/value weights, the attention function the config
selects, BertSelfOutput, the feed-forward), in BertLayer.forward's order, so the real rows
agree with it to float rounding. Used in eval mode (StrEncoder.lower and .ner); training keeps
BertLayer.forward, so its dropout draws are as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers.models.bert.modeling_bert import BertLayer

from extraction.bert_parts import attention_function, qkv_projection


def real_rows_layers(layers: Sequence[BertLayer], hidden: torch.Tensor,
                     attention_mask: torch.Tensor, mask: torch.Tensor, keep_first: bool = True
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`layers` over `hidden` (B, T, H) as BertLayer.forward with the additive `mask`
    (B, 1, 1, T, keys only), computed at the real tokens of `attention_mask` (B, T); the
    padding rows of the result are zero. Also returns the first layer's queries, keys and
    values of every token, (B, T, 3H) (zero at padding): the exact Eq.(14) relation pass
    reads the same projections of the same rows (`rc_shortcuts.rc_cls_eq14`); None with
    `keep_first=False` (then they are freed as the layer ends)."""
    batch, tokens, width = hidden.shape
    where = attention_mask.reshape(-1).nonzero().squeeze(1)  # (R,) into B * T
    rows = hidden.reshape(batch * tokens, width).index_select(0, where)
    first = None
    for i, layer in enumerate(layers):
        rows, spread = _layer(layer, rows, where, batch, tokens, mask)
        if i == 0 and keep_first:
            first = spread.view(batch, tokens, 3 * width)
        del spread
    out = hidden.new_zeros(batch * tokens, width).index_copy_(0, where, rows)
    return out.view(batch, tokens, width), first


def _layer(layer: BertLayer, rows: torch.Tensor, where: torch.Tensor, batch: int, tokens: int,
           mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's output at the real rows, and its projections spread out (B * T, 3H)."""
    sa = layer.attention.self
    width = rows.shape[-1]
    size = sa.attention_head_size
    # queries, keys and values in one product, then spread into the padded shape for attention
    projected = qkv_projection(sa, rows)
    spread = projected.new_zeros(batch * tokens, 3 * width).index_copy_(0, where, projected)
    del projected  # freed before attention and the feed-forward allocate theirs
    query, key, value = (part.view(batch, tokens, -1, size).transpose(1, 2)
                         for part in spread.view(batch, tokens, 3 * width).split(width, dim=-1))
    attend = attention_function(sa)
    context, _ = attend(sa, query, key, value, mask, dropout=0.0, scaling=sa.scaling)
    context = context.reshape(batch * tokens, width).index_select(0, where)
    attention_output = layer.attention.output(context, rows)
    return layer.feed_forward_chunk(attention_output), spread
