"""Pieces of a BertLayer's self-attention that our own layer paths (real_rows, rc_shortcuts)
call the way BertLayer.forward does."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.bert.modeling_bert import BertSelfAttention, eager_attention_forward


def attention_function(sa: BertSelfAttention) -> Callable:
    """The attention the model's config selects (sdpa, eager, ...), as BertSelfAttention uses."""
    return ALL_ATTENTION_FUNCTIONS.get_interface(sa.config._attn_implementation,
                                                 eager_attention_forward)


def qkv_projection(sa: BertSelfAttention, rows: torch.Tensor) -> torch.Tensor:
    """Queries, keys and values of `rows` (..., H) in one product: (..., 3H)."""
    weight = torch.cat([sa.query.weight, sa.key.weight, sa.value.weight])
    bias = torch.cat([sa.query.bias, sa.key.bias, sa.value.bias])
    return nn.functional.linear(rows, weight, bias)
