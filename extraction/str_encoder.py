"""The STR-encoder of the focused attention model: one BERT split at layer N-K.

Layers 1..N-K run once per sentence with MASK^all (`lower`). The last K layers run with the same
weights once per task mask: MASK^ner (all real tokens, `ner`) and MASK^rc per candidate pair
(`rc_cls`, only the final [CLS] row is returned because the RC head reads nothing else).

We drive the model's own modules (`bert.embeddings`, `bert.encoder.layer[i]`) with additive 4D
float masks. Both "eager" and "sdpa" attention add a float mask to the scores unchanged, so the
encoder keeps the implementation the checkpoint was loaded with if it is one of those two and
switches to "sdpa" otherwise (flash-attention kernels take no arbitrary masks). The pooler is
not used.

Three strategies give the same [CLS] (to float rounding):
- "literal": the paper read literally, the whole encoder from the embeddings once per pair.
- "batched": lower layers once per sentence; the last K layers for all pairs as one batch of full
  sequences with per-pair masks.
- "exact": only the rows the [CLS] depends on (see `extraction.rc_shortcuts`).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertModel

from extraction import rc_shortcuts
from extraction.attention_masks import PairIndex, all_mask, check_pairs, rc_mask_4d
from extraction.choices import RcMask, RcStrategy
from extraction.real_rows import real_rows_layers

__all__ = ["PairIndex", "RcStrategy", "StrEncoder"]

_MASK_ATTENTION = ("eager", "sdpa")


class StrEncoder(nn.Module):
    """BERT with the focused-attention split; see the module docstring."""

    def __init__(
        self,
        bert: BertModel,
        k: int,
        rc_mask: RcMask = "eq14",
        rc_strategy: RcStrategy = "exact",
    ) -> None:
        super().__init__()
        n = bert.config.num_hidden_layers
        if not 0 <= k <= n:
            raise ValueError(f"K (task layers) must be between 0 and {n} layers, got {k}")
        if rc_mask not in ("eq13", "eq14"):
            raise ValueError(f"rc_mask must be 'eq13' or 'eq14', got {rc_mask!r}")
        if rc_strategy not in ("literal", "batched", "exact"):
            raise ValueError(
                f"rc_strategy must be 'literal', 'batched' or 'exact', got {rc_strategy!r}"
            )
        if bert.config._attn_implementation not in _MASK_ATTENTION:
            bert.set_attn_implementation("sdpa")
        self.bert = bert
        self.k = k
        self.rc_mask: RcMask = rc_mask
        self.rc_strategy: RcStrategy = rc_strategy

    @property
    def hidden_size(self) -> int:
        return self.bert.config.hidden_size

    @property
    def lower_layers(self) -> list[nn.Module]:
        return list(self.bert.encoder.layer[: self.bert.config.num_hidden_layers - self.k])

    @property
    def task_layers(self) -> list[nn.Module]:
        n = self.bert.config.num_hidden_layers
        return list(self.bert.encoder.layer[n - self.k :])

    def lower(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """H_{N-K} (B, T, H): embeddings and layers 1..N-K with MASK^all (in eval mode its
        padding rows are zero: `_all_mask_layers`)."""
        hidden = self.bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        return self._all_mask_layers(self.lower_layers, hidden, attention_mask,
                                     keep_first=False)[0]

    def ner(self, lower_hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """H_N^ner (B, T, H): the last K layers with MASK^ner (all real tokens)."""
        return self.ner_and_projections(lower_hidden, attention_mask)[0]

    def ner_and_projections(self, lower_hidden: torch.Tensor, attention_mask: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """H_N^ner, and (eval mode, K > 0) the first task layer's queries, keys and values of
        every token, (B, T, 3H): the exact Eq.(14) RC of the same sentences reuses them
        (`rc_cls(projections=...)`); None in training."""
        return self._all_mask_layers(self.task_layers, lower_hidden, attention_mask)

    def _all_mask_layers(self, layers: list[nn.Module], hidden: torch.Tensor,
                         attention_mask: torch.Tensor, keep_first: bool = True
                         ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`layers` with MASK^all, and their first layer's projections (`real_rows_layers`).
        In eval mode on the real tokens only (padding rows come out zero: nothing reads
        them); in training through BertLayer.forward, dropout as ever (no projections)."""
        mask = all_mask(attention_mask, hidden.dtype)
        if not self.training and layers:
            return real_rows_layers(layers, hidden, attention_mask, mask, keep_first)
        for layer in layers:
            hidden = layer(hidden, attention_mask=mask)
        return hidden, None

    def rc_cls(
        self,
        lower_hidden: torch.Tensor | None,
        attention_mask: torch.Tensor,
        pairs: PairIndex,
        input_ids: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        strategy: RcStrategy | None = None,
        projections: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Final [CLS] of H_N^rc per pair, (P, H); `strategy` overrides self.rc_strategy.
        `projections`: the NER pass's first task layer queries/keys/values of the same
        sentences (`ner_and_projections`), which the exact Eq.(14) then need not recompute."""
        strategy = strategy or self.rc_strategy
        check_pairs(pairs, attention_mask)
        if strategy == "literal":
            if input_ids is None:
                raise ValueError("rc_strategy 'literal' reruns the encoder: pass input_ids")
            return self._rc_literal(input_ids, attention_mask, pairs, token_type_ids)
        if lower_hidden is None:
            raise ValueError(f"rc_strategy {strategy!r} needs lower_hidden from lower()")
        if len(pairs) == 0:
            return lower_hidden.new_zeros(0, lower_hidden.shape[-1])
        if self.k == 0:
            return lower_hidden[pairs.sentence, 0]
        if strategy == "batched":
            return self._rc_batched(lower_hidden, attention_mask, pairs)
        if strategy == "exact":
            if self.rc_mask == "eq14":
                return rc_shortcuts.rc_cls_eq14(
                    self.task_layers, lower_hidden, attention_mask, pairs, projections
                )
            return rc_shortcuts.rc_cls_eq13(self.task_layers, lower_hidden, attention_mask, pairs)
        raise ValueError(f"unknown rc_strategy {strategy!r}")

    def ner_and_rc(
        self, lower_hidden: torch.Tensor, attention_mask: torch.Tensor, pairs: PairIndex
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(H_N^ner, rc [CLS]) sharing the NER pass's first task layer with the exact Eq.(13)."""
        if self.rc_strategy != "exact" or self.rc_mask != "eq13" or self.k < 2 or len(pairs) == 0:
            ner = self.ner(lower_hidden, attention_mask)
            return ner, self.rc_cls(lower_hidden, attention_mask, pairs)
        check_pairs(pairs, attention_mask)
        layers = self.task_layers
        mask = all_mask(attention_mask, lower_hidden.dtype)
        first = layers[0](lower_hidden, attention_mask=mask)
        hidden = first
        for layer in layers[1:]:
            hidden = layer(hidden, attention_mask=mask)
        cls = rc_shortcuts.rc_cls_eq13(layers, lower_hidden, attention_mask, pairs, first)
        return hidden, cls

    def _rc_batched(
        self, lower_hidden: torch.Tensor, attention_mask: torch.Tensor, pairs: PairIndex
    ) -> torch.Tensor:
        hidden = lower_hidden[pairs.sentence]  # (P, T, H)
        mask = rc_mask_4d(pairs, attention_mask, self.rc_mask, hidden.dtype)
        for layer in self.task_layers:
            hidden = layer(hidden, attention_mask=mask)
        return hidden[:, 0]

    def _rc_literal(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pairs: PairIndex,
        token_type_ids: torch.Tensor | None,
    ) -> torch.Tensor:
        outputs = []
        for p in range(len(pairs)):
            s = int(pairs.sentence[p])
            one = PairIndex(
                *(
                    t[p : p + 1] * 0 if i == 0 else t[p : p + 1]
                    for i, t in enumerate(_fields(pairs))
                )
            )
            types = None if token_type_ids is None else token_type_ids[s : s + 1]
            hidden = self.lower(input_ids[s : s + 1], attention_mask[s : s + 1], types)
            if self.k == 0:
                outputs.append(hidden[0, 0])
                continue
            mask = rc_mask_4d(one, attention_mask[s : s + 1], self.rc_mask, hidden.dtype)
            for layer in self.task_layers:
                hidden = layer(hidden, attention_mask=mask)
            outputs.append(hidden[0, 0])
        if not outputs:
            return self.bert.embeddings.word_embeddings.weight.new_zeros(0, self.hidden_size)
        return torch.stack(outputs)


def _fields(pairs: PairIndex) -> tuple[torch.Tensor, ...]:
    return (
        pairs.sentence,
        pairs.first_start,
        pairs.first_end,
        pairs.second_start,
        pairs.second_end,
    )
