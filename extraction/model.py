"""The focused attention model: STR-encoder + CRF NER head + [CLS] RC head, L_all = L_ner + L_rc.

Modes (the paper's Table VI): "joint" trains both heads through the shared encoder, "ner_only"
and "rc_only" train one head (the other head's loss is not computed; in prediction an untrained
head is simply never asked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from extraction.batching import Batch
from extraction.choices import MODES, Mode
from extraction.heads import NerHead, RcHead
from extraction.str_encoder import PairIndex, StrEncoder


@dataclass(frozen=True)
class Losses:
    total: torch.Tensor
    ner: torch.Tensor | None
    rc: torch.Tensor | None


@dataclass(frozen=True)
class NerOutput:
    lower: torch.Tensor  # H_{N-K} (B, T, H): reused for the pairs of the predicted entities
    paths: list[list[int]]  # best tag ids per sentence (its characters only)
    marginals: torch.Tensor  # (B, L, C) p(tag at char | sentence)
    # the first task layer's queries/keys/values of every token (B, T, 3H), for the pairs
    projections: torch.Tensor | None = None


class FocusedAttentionModel(nn.Module):
    def __init__(
        self,
        encoder: StrEncoder,
        tags: Sequence[str],
        relation_labels: Sequence[str],
        mode: Mode = "joint",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.encoder = encoder
        self.tags = tuple(tags)
        self.relation_labels = tuple(relation_labels)
        self.mode = mode
        hidden = encoder.hidden_size
        self.ner_head = NerHead(hidden, self.tags, dropout)
        self.rc_head = RcHead(hidden, len(self.relation_labels), dropout)

    @property
    def trains_ner(self) -> bool:
        return self.mode in ("joint", "ner_only")

    @property
    def trains_rc(self) -> bool:
        return self.mode in ("joint", "rc_only")

    def losses(self, batch: Batch) -> Losses:
        """Training losses of a labelled batch (CRF NLL mean over sentences, CE mean over pairs)."""
        lower = self.encoder.lower(batch.input_ids, batch.attention_mask)
        has_pairs = self.trains_rc and len(batch.pairs) > 0
        ner_loss = rc_loss = None
        if self.trains_ner and has_pairs:
            ner_hidden, cls = self.encoder.ner_and_rc(lower, batch.attention_mask, batch.pairs)
        else:
            ner_hidden = self.encoder.ner(lower, batch.attention_mask) if self.trains_ner else None
            cls = (self.encoder.rc_cls(lower, batch.attention_mask, batch.pairs, batch.input_ids)
                   if has_pairs else None)
        if ner_hidden is not None:
            if batch.tags is None:
                raise ValueError("a training batch needs tags for the NER loss")
            emissions = self.ner_head.emissions(ner_hidden, batch.char_mask)
            ner_loss = self.ner_head.loss(emissions, batch.tags, batch.char_mask)
        if cls is not None:
            if batch.pair_labels is None:
                raise ValueError("a training batch needs pair labels for the RC loss")
            logits = self.rc_head(cls)
            rc_loss = nn.functional.cross_entropy(logits, batch.pair_labels)
        parts = [x for x in (ner_loss, rc_loss) if x is not None]
        total = sum(parts) if parts else lower.sum() * 0.0  # a batch with nothing to learn
        return Losses(total=total, ner=ner_loss, rc=rc_loss)

    @torch.no_grad()
    def tag(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
            char_mask: torch.Tensor, temperature: float = 1.0) -> NerOutput:
        lower = self.encoder.lower(input_ids, attention_mask)
        ner_hidden, projections = self.encoder.ner_and_projections(lower, attention_mask)
        emissions = self.ner_head.emissions(ner_hidden, char_mask)
        paths, marginals = self.ner_head.decode(emissions, char_mask, temperature)
        return NerOutput(lower=lower, paths=paths, marginals=marginals,
                         projections=projections)

    @torch.no_grad()
    def relation_probs(
        self,
        lower: torch.Tensor,
        attention_mask: torch.Tensor,
        pairs: PairIndex,
        input_ids: torch.Tensor | None = None,
        temperature: float = 1.0,
        projections: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """p(label | pair), (P, R), from the lower layers' output of the pairs' sentences;
        `temperature` divides the logits (calibration; the argmax does not change);
        `projections` as `tag` returns them for these sentences, if at hand."""
        if len(pairs) == 0:
            return torch.zeros(0, len(self.relation_labels), device=lower.device)
        cls = self.encoder.rc_cls(lower, attention_mask, pairs, input_ids,
                                  projections=projections)
        return torch.softmax(self.rc_head(cls) / temperature, dim=-1)
