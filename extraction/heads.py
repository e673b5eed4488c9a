"""The two task heads: a CRF over BIEOS tags for NER, and the [CLS] classifier for RC.

NER: emissions H_p = H_N^ner[1:T]·W + b (every token but [CLS]) into pytorch-crf's `CRF`.
Only the sentence's characters are inside the CRF mask; [SEP] and padding are outside it.
Transitions a well-formed BIEOS sequence cannot contain (O->I-x, B-x->B-y, ...; also a start on
I/E or an end on B/I) get a large negative score through a parametrization of the CRF's own
parameters, so they are forbidden in training (the partition function ignores them) and in
Viterbi decoding alike. The gold path never uses one, so the penalty costs no accuracy.

RC: p(r | pair) = softmax(tanh(H_N^rc[0]·W1 + b1)·W2 + b2) over the schema's relation labels,
NoRelation first.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize
from torchcrf import CRF

from ingest.bieos import allowed_end, allowed_start, allowed_transitions

FORBIDDEN = -10_000.0  # exp(-1e4) is 0 in float32, and finite: no NaN in logsumexp


class _AddPenalty(nn.Module):
    """Parametrization: the CRF sees `raw + penalty` (penalty is 0 or FORBIDDEN)."""

    def __init__(self, penalty: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("penalty", penalty)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return raw + self.penalty


def transition_penalties(
    tags: Sequence[str],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(start (C,), transitions (C, C) indexed [from, to], end (C,)): 0 allowed, FORBIDDEN not."""
    allowed = allowed_transitions(tags)
    starts, ends = allowed_start(tags), allowed_end(tags)
    trans = torch.tensor(
        [[0.0 if (a, b) in allowed else FORBIDDEN for b in tags] for a in tags]
    )
    start = torch.tensor([0.0 if t in starts else FORBIDDEN for t in tags])
    end = torch.tensor([0.0 if t in ends else FORBIDDEN for t in tags])
    return start, trans, end


def constrained_crf(tags: Sequence[str]) -> CRF:
    crf = CRF(len(tags), batch_first=True)
    start, trans, end = transition_penalties(tags)
    parametrize.register_parametrization(crf, "start_transitions", _AddPenalty(start))
    parametrize.register_parametrization(crf, "transitions", _AddPenalty(trans))
    parametrize.register_parametrization(crf, "end_transitions", _AddPenalty(end))
    return crf


def crf_marginals(crf: CRF, emissions: torch.Tensor, mask: torch.Tensor,
                  temperature: float = 1.0) -> torch.Tensor:
    """p(tag_t = c | sentence) by forward-backward, (B, L, C); rows outside `mask` are junk.

    emissions (B, L, C) float, mask (B, L) bool with every sentence a non-empty prefix.
    `temperature` divides every score (emissions and transitions): above 1 it softens the
    marginals (calibration, extraction/calibration.py); the Viterbi path does not change.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    start, trans, end = crf.start_transitions, crf.transitions, crf.end_transitions
    if temperature != 1.0:
        start, trans, end = start / temperature, trans / temperature, end / temperature
        emissions = emissions / temperature
    batch, length, _ = emissions.shape
    # Each step's log-sum-exp over the previous tag is a (B, C) x (C, C) product in probability
    # space, the scores shifted by their row's maximum first (so exp cannot overflow): five
    # times faster than a logsumexp over a (B, C, C) broadcast, as accurate against float64. A
    # forbidden transition's weight is exp(-1e4) = 0 either way.
    weights = trans.exp()  # [from, to]
    alphas = [start + emissions[:, 0]]  # (B, C) each
    for t in range(1, length):
        step = _log_matmul(alphas[-1], weights) + emissions[:, t]
        alphas.append(torch.where(mask[:, t : t + 1], step, alphas[-1]))
    betas = [end.expand(batch, -1)]
    backward = weights.T.contiguous()
    for t in range(length - 2, -1, -1):
        step = _log_matmul(emissions[:, t + 1] + betas[0], backward)
        betas.insert(0, torch.where(mask[:, t + 1 : t + 2], step, end.expand(batch, -1)))
    alpha = torch.stack(alphas, 1)
    beta = torch.stack(betas, 1)
    log_z = torch.logsumexp(alphas[-1] + end, dim=1)  # alphas carry the last real step forward
    return torch.exp(alpha + beta - log_z.view(batch, 1, 1))


def _log_matmul(scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """log(exp(scores) @ weights) for scores (B, C), weights (C, C) >= 0, without overflow."""
    top = scores.max(dim=1, keepdim=True).values
    return ((scores - top).exp() @ weights).log() + top


def viterbi_paths(crf: CRF, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
    """The best tag path of each sentence, as `crf.decode` finds it (the same recursion, the
    same ties), with the trace-back done on whole tensors instead of a Python loop per
    character; emissions (B, L, C), mask (B, L) bool, every sentence a non-empty prefix."""
    start, trans, end = crf.start_transitions, crf.transitions, crf.end_transitions
    batch, length, _ = emissions.shape
    score = start + emissions[:, 0]
    history = []
    for t in range(1, length):
        best, index = (score.unsqueeze(2) + trans + emissions[:, t].unsqueeze(1)).max(dim=1)
        score = torch.where(mask[:, t : t + 1], best, score)
        history.append(index)
    _, last_tag = (score + end).max(dim=1)
    lengths = mask.sum(dim=1)
    ends = lengths - 1
    tags = torch.empty(batch, length, dtype=torch.long, device=emissions.device)
    tag = last_tag
    for t in range(length - 1, -1, -1):
        if t < length - 1:  # the tag at t that led to the one chosen at t + 1
            tag = history[t].gather(1, tag.unsqueeze(1)).squeeze(1)
        tag = torch.where(ends == t, last_tag, tag)  # each sentence starts at its own end
        tags[:, t] = tag
    return [row[:n] for row, n in zip(tags.tolist(), lengths.tolist(), strict=True)]


class NerHead(nn.Module):
    def __init__(self, hidden_size: int, tags: Sequence[str], dropout: float = 0.1) -> None:
        super().__init__()
        self.tags = tuple(tags)
        self.dropout = nn.Dropout(dropout)
        self.emit = nn.Linear(hidden_size, len(self.tags))
        self.crf = constrained_crf(self.tags)

    def emissions(self, ner_hidden: torch.Tensor, char_mask: torch.Tensor) -> torch.Tensor:
        """(B, L, C) float32 for the L = char_mask.shape[1] character tokens 1..L."""
        chars = ner_hidden[:, 1 : 1 + char_mask.shape[1]]
        return self.emit(self.dropout(chars)).float()

    def loss(
        self, emissions: torch.Tensor, tags: torch.Tensor, char_mask: torch.Tensor
    ) -> torch.Tensor:
        """-log p(L'|S), mean over sentences."""
        return -self.crf(emissions, tags, mask=char_mask, reduction="mean")

    def decode(
        self, emissions: torch.Tensor, char_mask: torch.Tensor, temperature: float = 1.0
    ) -> tuple[list[list[int]], torch.Tensor]:
        """(best tag ids per sentence, marginals (B, L, C) at `temperature`)."""
        # The penalized transitions are computed once here, not at every step of the loops.
        with parametrize.cached():
            return (viterbi_paths(self.crf, emissions, char_mask),
                    crf_marginals(self.crf, emissions, char_mask, temperature))


class RcHead(nn.Module):
    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, num_labels)

    def forward(self, cls: torch.Tensor) -> torch.Tensor:
        """Logits (P, R) from the per-pair [CLS] states (P, H)."""
        return self.out(self.dropout(torch.tanh(self.dense(self.dropout(cls))))).float()
