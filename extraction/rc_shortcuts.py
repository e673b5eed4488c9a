"""Exact shortcuts for the relation [CLS] of the last K (task) layers.

Notation: H^0 = H_{N-K} (output of the shared lower layers), N^t = the NER pass after task layer
t (MASK^all), X^t = the pair's RC pass after task layer t (MASK^rc), S = {[CLS]} u e1 u e2.
Only X^K[0] (the final [CLS]) is wanted.

Eq.(14): rows in S attend only S, and no row outside S is ever read by a row in S, so the pair is
the short sequence H^0[S] (positions are already inside H^0) run through K layers with a padding
mask. Rows outside S attend nothing in the full computation; here they simply do not exist.

Eq.(13): the [CLS] row attends S, other rows attend everything. Working forward:
  X^1 = N^1 except row 0 (only [CLS] has a different mask, and the inputs H^0 are shared);
  from X^2 on every row differs (every row attends the changed [CLS]).
Working backward from what is wanted:
  layer K needs row 0 only, which reads X^{K-1}[S];
  layer K-1 needs rows S, which read all rows of X^{K-2};
  layers below need all rows.
So layer 1 computes one row per pair (row 0 against H^0[S]) and borrows the rest from N^1;
layers 2..K-2 run full sequences; layer K-1 computes |S| rows; layer K one row. For K <= 3 no
layer runs a full sequence per pair. Keys/values of layer K-1 when its input is X^1 come from the
shared N^1 projections with only row 0 replaced (N^1 keys/values are computed once per sentence).

Every row is computed by the layer's own modules (query/key/value, the transformers attention
function selected by config._attn_implementation, BertSelfOutput, intermediate, output) in the
same order as BertLayer.forward, so results agree with the full computation to float rounding.
In training mode dropout is applied with the same probabilities, but rows borrowed from the NER
pass share their dropout draws with it; the equivalence tests run in eval mode.

Two rearrangements save work without changing what is computed (only float rounding):
- Layer K needs only the [CLS] row's output (`cls_row`), so its keys and values are never
  projected: the [CLS] query is carried through the key weights instead (q.(W_k x + b_k) =
  (q W_k).x + q.b_k), and
  the value projection is applied once to the attention-weighted sum of the rows. Projecting
  every row of S cost two H x H products per row; this costs two per pair.
- Eq.(14)'s first task layer projects queries, keys and values only at the tokens some pair of
  the batch reads (`member_rows`), not at every token of every sentence, with one product; in
  extraction it reads them from the NER pass, which has projected every token with the same
  layer (`shared_rows`), and runs the row-wise rest on the pairs' real slots only
  (`first_layer_rows`).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.models.bert.modeling_bert import BertLayer
from transformers.pytorch_utils import apply_chunking_to_forward

from extraction.attention_masks import PairIndex, additive, pair_members
from extraction.bert_parts import attention_function, qkv_projection


def _heads(layer: BertLayer, hidden: torch.Tensor) -> torch.Tensor:
    """(M, L, H) -> (M, heads, L, head_dim), as BertSelfAttention reshapes."""
    size = layer.attention.self.attention_head_size
    return hidden.view(*hidden.shape[:-1], -1, size).transpose(1, 2)


def project_kv(layer: BertLayer, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys and values of `hidden` (M, L, H) for `layer`, (M, L, H) each (heads not split)."""
    sa = layer.attention.self
    return sa.key(hidden), sa.value(hidden)


def layer_rows(
    layer: BertLayer,
    query_hidden: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor,
    query: torch.Tensor | None = None,
    rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """BertLayer output for selected query rows.

    query_hidden (M, Lq, H) are the layer inputs at the rows wanted; key/value (M, Lk, H) are the
    projections (`project_kv`) of the layer inputs at the rows they may attend; mask is additive
    (M, 1, Lq or 1, Lk); query, if given, is `query_hidden` already projected by the layer's
    query dense. `rows` (M, Lq) bool, if given, says which query rows are real: the row-wise
    rest of the layer (output dense, feed-forward) runs on those only and the others come out
    zero, so padding costs attention only. Returns (M, Lq, H).
    """
    sa = layer.attention.self
    query = sa.query(query_hidden) if query is None else query
    attend = attention_function(sa)
    context, _ = attend(
        sa,
        _heads(layer, query),
        _heads(layer, key),
        _heads(layer, value),
        mask,
        dropout=0.0 if not sa.training else sa.dropout.p,
        scaling=sa.scaling,
    )
    context = context.reshape(*query_hidden.shape[:-1], -1).contiguous()
    if rows is None:
        return _output_and_feed_forward(layer, context, query_hidden)
    # Packed as one sequence of the real rows: every step from here on is row by row.
    packed = _output_and_feed_forward(layer, context[rows][None], query_hidden[rows][None])[0]
    out = query_hidden.new_zeros(*query_hidden.shape[:-1], packed.shape[-1])
    out[rows] = packed
    return out


def _output_and_feed_forward(
    layer: BertLayer, context: torch.Tensor, query_hidden: torch.Tensor
) -> torch.Tensor:
    """The rest of BertLayer.forward after attention: output dense + residual LayerNorm, then
    the feed-forward block (all row-wise)."""
    attention_output = layer.attention.output(context, query_hidden)
    return apply_chunking_to_forward(
        layer.feed_forward_chunk, layer.chunk_size_feed_forward, layer.seq_len_dim, attention_output
    )


def cls_row(layer: BertLayer, rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BertLayer output at row 0 of `rows` (M, L, H) attending to all of `rows` under the
    additive `mask` (M, 1, 1, L); (M, H). The same as `layer_rows` on row 0 with the rows' keys
    and values, without projecting them (see the module docstring)."""
    sa = layer.attention.self
    m, length, hidden = rows.shape
    heads, size = sa.num_attention_heads, sa.attention_head_size
    cls = rows[:, :1]
    query = sa.query(cls).view(m, heads, size)
    carried = torch.einsum("mhd,hdi->mhi", query, sa.key.weight.view(heads, size, hidden))
    # q.b_k is the same for every key (softmax ignores it); kept so that training sees the
    # same graph, the key bias included, as the full layer
    shift = (query * sa.key.bias.view(heads, size)).sum(-1, keepdim=True)
    scores = ((torch.einsum("mhi,mli->mhl", carried, rows) + shift) * sa.scaling
              + mask.view(m, 1, length))
    probs = nn.functional.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    probs = nn.functional.dropout(probs, p=sa.dropout.p, training=sa.training)
    mixed = torch.einsum("mhl,mli->mhi", probs, rows)  # attention-weighted rows, per head
    context = torch.einsum("mhi,hdi->mhd", mixed, sa.value.weight.view(heads, size, hidden))
    # the value bias weighted by the probabilities' sum (1, less what dropout took)
    context = context + probs.sum(-1, keepdim=True) * sa.value.bias.view(heads, size)
    return _output_and_feed_forward(layer, context.reshape(m, 1, hidden), cls)[:, 0]


def member_rows(
    layer: BertLayer, lower_hidden: torch.Tensor, sentence: torch.Tensor, index: torch.Tensor,
    valid: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The pairs' rows of `lower_hidden` (B, T, H) for `layer`: `index` (P, Ls) token
    positions into sentence `sentence` (P,), `valid` marking the real ones. Returns (hidden
    (U, H), projections (P, Ls, 3H): queries, keys and values, take (P, Ls)): each token some
    pair reads is taken once, as one of the U rows, and projected once (one product for the
    three projections); `take` says which of them each slot of a pair is (padding slots: the
    first)."""
    batch, tokens, hidden = lower_hidden.shape
    flat = sentence[:, None] * tokens + index  # (P, Ls) into (B * T)
    used = torch.zeros(batch * tokens, dtype=torch.bool, device=flat.device)
    used[flat[valid]] = True
    wanted = used.nonzero().squeeze(1)  # (U,)
    slot = torch.zeros(batch * tokens, dtype=torch.long, device=flat.device)
    slot[wanted] = torch.arange(len(wanted), device=flat.device)
    rows = lower_hidden.reshape(batch * tokens, hidden).index_select(0, wanted)  # (U, H)
    sa = layer.attention.self
    take = torch.where(valid, slot[flat], 0)
    projected = qkv_projection(sa, rows)[take]  # (P, Ls, 3H)
    return rows, projected, take


def shared_rows(
    lower_hidden: torch.Tensor, projections: torch.Tensor, sentence: torch.Tensor,
    index: torch.Tensor, valid: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What `member_rows` returns, read from projections already made for every token
    (B, T, 3H): the U rows are then all B * T of them, `take` the slots' positions."""
    batch, tokens, hidden = lower_hidden.shape
    flat = sentence[:, None] * tokens + index  # (P, Ls) into (B * T)
    take = torch.where(valid, flat, flat[:, :1])  # padding slots: the pair's [CLS]
    projected = projections.reshape(batch * tokens, -1)[take]  # (P, Ls, 3H)
    return lower_hidden.reshape(batch * tokens, hidden), projected, take


def first_layer_rows(layer: BertLayer, rows: torch.Tensor, projected: torch.Tensor,
                     take: torch.Tensor, valid: torch.Tensor, mask: torch.Tensor
                     ) -> torch.Tensor:
    """`layer`'s output at every slot of every pair, (P, Ls, H), from `member_rows`: each
    pair's real slots attend each other (`mask`, additive (P, 1, 1, Ls)); the row-wise rest of
    the layer (output dense, feed-forward) runs on the real slots only, packed, and padding
    slots come out zero."""
    pairs, width = valid.shape
    hidden = rows.shape[-1]
    query, key, value = projected.split(hidden, dim=-1)
    sa = layer.attention.self
    attend = attention_function(sa)
    context, _ = attend(sa, _heads(layer, query), _heads(layer, key), _heads(layer, value),
                        mask, dropout=0.0 if not sa.training else sa.dropout.p,
                        scaling=sa.scaling)
    real = valid.reshape(-1).nonzero().squeeze(1)  # (R,) slots, pair by pair
    context = context.reshape(pairs * width, hidden).index_select(0, real)
    residual = rows.index_select(0, take.reshape(-1).index_select(0, real))
    packed = _output_and_feed_forward(layer, context, residual)
    out = packed.new_zeros(pairs * width, hidden).index_copy_(0, real, packed)
    return out.view(pairs, width, hidden)


def full_layer(layer: BertLayer, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Every row of `layer` through its own forward (mask additive, 4D)."""
    return layer(hidden, attention_mask=mask)


def gather_members(
    pairs: PairIndex, attention_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token positions of S per pair, [CLS] first, padded.

    Returns index (P, Ls) into the sentence's tokens, valid (P, Ls) bool, and the (P, T) member
    mask. A token in both entities (nested spans) is taken once, as the full mask counts it once.
    """
    real = attention_mask.bool()[pairs.sentence]
    members = pair_members(pairs, real.shape[1]) & real
    counts = members.sum(dim=1)
    width = int(counts.max())
    # Stable sort of "not a member" puts members first in position order, so [CLS] is column 0.
    order = torch.sort((~members).to(torch.uint8), dim=1, stable=True).indices[:, :width]
    valid = torch.arange(width, device=order.device)[None, :] < counts[:, None]
    return order, valid, members


def _take(states: torch.Tensor, sentence: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """states (B, T, H) -> (P, L, H): rows `index` (P, L) of sentence `sentence` (P,)."""
    return states[sentence[:, None], index]


def rc_cls_eq14(
    layers: list[BertLayer],
    lower_hidden: torch.Tensor,
    attention_mask: torch.Tensor,
    pairs: PairIndex,
    projections: torch.Tensor | None = None,
) -> torch.Tensor:
    """Final [CLS] per pair under Eq.(14): each pair as its own short sequence H^0[S].

    projections: the first task layer's queries, keys and values of every token of H^0,
    (B, T, 3H), as the NER pass computed them (`StrEncoder.ner_and_projections`); without
    them they are computed here, once per token some pair reads."""
    index, valid, _ = gather_members(pairs, attention_mask)
    mask = additive(valid[:, None, :], lower_hidden.dtype)  # (P, 1, 1, Ls): padding keys only
    # First task layer: H^0 is shared, so its projections are computed once per token.
    first = layers[0]
    if projections is None:
        rows, projected, take = member_rows(first, lower_hidden, pairs.sentence, index, valid)
    else:
        rows, projected, take = shared_rows(lower_hidden, projections, pairs.sentence, index,
                                            valid)
    if len(layers) == 1:
        query, key, value = projected.split(rows.shape[-1], dim=-1)
        return layer_rows(first, rows[take[:, :1]], key, value, mask, query[:, :1])[:, 0]
    hidden = first_layer_rows(first, rows, projected, take, valid, mask)
    for layer in layers[1:-1]:
        hidden = full_layer(layer, hidden, mask)
    return cls_row(layers[-1], hidden, mask)


def rc_cls_eq13(
    layers: list[BertLayer],
    lower_hidden: torch.Tensor,
    attention_mask: torch.Tensor,
    pairs: PairIndex,
    ner_first: torch.Tensor | None = None,
) -> torch.Tensor:
    """Final [CLS] per pair under Eq.(13), computing only the rows it depends on.

    ner_first: N^1 (B, T, H), the NER pass after the first task layer, if already computed.
    """
    k = len(layers)
    dtype = lower_hidden.dtype
    sentence = pairs.sentence
    index, valid, members = gather_members(pairs, attention_mask)
    s_mask = additive(valid[:, None, :], dtype)  # (P, 1, 1, Ls)

    def with_cls(rows: torch.Tensor, cls_row: torch.Tensor) -> torch.Tensor:
        """Replace column 0 (the [CLS] row) of (P, L, ...) by the pair's own."""
        return torch.cat([cls_row[:, None], rows[:, 1:]], dim=1)

    # Layer 1, row 0: [CLS] against H^0[S]; keys/values of H^0 are shared per sentence.
    first = layers[0]
    key, value = (_take(x, sentence, index) for x in project_kv(first, lower_hidden))
    cls_in = lower_hidden[sentence, :1]
    cls = layer_rows(first, cls_in, key, value, s_mask)[:, 0]  # (P, H)
    if k == 1:
        return cls

    if ner_first is None:
        real_keys = additive(attention_mask.bool()[:, None, :], dtype)
        ner_first = full_layer(first, lower_hidden, real_keys)
    real = attention_mask.bool()[sentence]  # (P, T)

    if k == 2:
        # Layer 2 = layer K, row 0 against X^1[S] = [its own [CLS], N^1 at e1, e2]: the entity
        # rows are the NER pass's, so their keys/values are projected once per sentence.
        last = layers[1]
        key_ner, value_ner = project_kv(last, ner_first)
        key_cls, value_cls = project_kv(last, cls[:, None])
        key = with_cls(_take(key_ner, sentence, index), key_cls[:, 0])
        value = with_cls(_take(value_ner, sentence, index), value_cls[:, 0])
        return layer_rows(last, cls[:, None], key, value, s_mask)[:, 0]

    if k == 3:
        # Layer 2 rows S read X^1 = N^1 with row 0 replaced; projections shared per sentence.
        middle = layers[1]
        key_ner, value_ner = project_kv(middle, ner_first)  # (B, T, H), once
        key_cls, value_cls = project_kv(middle, cls[:, None])  # (P, 1, H)
        key = torch.cat([key_cls, key_ner[sentence][:, 1:]], dim=1)
        value = torch.cat([value_cls, value_ner[sentence][:, 1:]], dim=1)
        query_rows = with_cls(_take(ner_first, sentence, index), cls)
    else:
        # Layers 2..K-2: every row changes; run full sequences X^1 = N^1 with row 0 replaced.
        full = with_cls(ner_first[sentence], cls)
        allowed = real[:, None, :].expand(-1, real.shape[1], -1).clone()
        allowed[:, 0, :] = members
        rc_full_mask = additive(allowed, dtype)
        for layer in layers[1 : k - 2]:
            full = full_layer(layer, full, rc_full_mask)
        key, value = project_kv(layers[k - 2], full)  # X^{K-2}, (P, T, H)
        query_rows = _take(full, torch.arange(len(pairs), device=full.device), index)

    # Layer K-1 rows S: [CLS] row attends S, entity rows (and padding rows) attend all.
    allowed = real[:, None, :].expand(-1, index.shape[1], -1).clone()
    allowed[:, 0, :] = members
    rows_s = layer_rows(layers[k - 2], query_rows, key, value, additive(allowed, dtype),
                        rows=valid)

    # Layer K, row 0 against rows S.
    return cls_row(layers[-1], rows_s, s_mask)
