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
    """p(tag_t = c | sentence) by forward-backward, (B, L, C); rows outside `mask` are 0.

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
    batch, length, classes = emissions.shape
    lengths = mask.sum(dim=1)
    # Each step's log-sum-exp over the previous tag is a (B, C) x (C, C) product in probability
    # space, the scores shifted by their row's maximum first (so exp cannot overflow): five
    # times faster than a logsumexp over a (B, C, C) broadcast, as accurate against float64. A
    # forbidden transition's weight is exp(-1e4) = 0 either way.
    weights = trans.exp()  # [from, to]
    # Forward, every sentence from its first character; past a sentence's end the steps
    # compute rows nobody reads (its log Z is taken at its own last character).
    alpha = start + emissions[:, 0]  # (B, C)
    alphas = [alpha]
    for t in range(1, length):
        alpha = _log_matmul(alpha, weights) + emissions[:, t]
        alphas.append(alpha)
    alpha = torch.stack(alphas, 1)
    rows = torch.arange(batch, device=emissions.device)
    log_z = torch.logsumexp(alpha[rows, lengths - 1] + end, dim=1)
    # Backward over each sentence reversed within its own length, so that every one starts at
    # step 0 from `end` (no per-step choice between a sentence's own step and its end); `mirror`
    # is an involution on each sentence's positions (padding maps to 0, unread).
    mirror = _mirrored(lengths, length)[..., None].expand(-1, -1, classes)
    reversed_emissions = emissions.gather(1, mirror)
    backward = weights.T.contiguous()
    beta = end.expand(batch, -1)
    betas = [beta]
    for r in range(1, length):
        beta = _log_matmul(reversed_emissions[:, r - 1] + beta, backward)
        betas.append(beta)
    beta = torch.stack(betas, 1).gather(1, mirror)
    marginals = torch.exp(alpha + beta - log_z.view(batch, 1, 1))
    return torch.where(mask[..., None], marginals, 0.0)


def _mirrored(lengths: torch.Tensor, length: int) -> torch.Tensor:
    """(B, L) positions that reverse each sentence within its own length (an involution on
    them; padding positions map to 0, which nobody reads)."""
    steps = torch.arange(length, device=lengths.device)
    return (lengths[:, None] - 1 - steps).clamp_min(0)


def _log_matmul(scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """log(exp(scores) @ weights) for scores (B, C), weights (C, C) >= 0, without overflow."""
    top = scores.max(dim=1, keepdim=True).values
    return ((scores - top).exp() @ weights).log() + top


def viterbi_paths(crf: CRF, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
    """The best tag path of each sentence, as `crf.decode` finds it (the same recursion, the
    same ties), with the trace-back done on whole tensors instead of a Python loop per
    character; emissions (B, L, C), mask (B, L) bool, every sentence a non-empty prefix."""
    start, trans, end = crf.start_transitions, crf.transitions, crf.end_transitions
    batch, length, classes = emissions.shape
    lengths = mask.sum(dim=1)
    # Every sentence from its first character; past its end the steps compute rows nobody
    # reads (its best last tag is taken at its own last character).
    score = start + emissions[:, 0]
    scores, history = [score], []
    for t in range(1, length):
        score, index = (score.unsqueeze(2) + trans + emissions[:, t].unsqueeze(1)).max(dim=1)
        scores.append(score)
        history.append(index)  # [b, tag at t] -> the best tag at t - 1
    rows = torch.arange(batch, device=emissions.device)
    _, last_tag = (torch.stack(scores, 1)[rows, lengths - 1] + end).max(dim=1)
    # The trace-back runs over each sentence reversed within its own length, so that every one
    # starts at step 0 from its own last tag; then the tags are put back in text order.
    back = [last_tag]
    if history:  # the L - 1 steps' choices, each sentence's reversed within its own L - 1
        mirror = _mirrored(lengths - 1, length - 1)[..., None]
        reversed_history = torch.stack(history, 1).gather(1, mirror.expand(-1, -1, classes))
        for r in range(length - 1):
            back.append(reversed_history[:, r].gather(1, back[-1].unsqueeze(1)).squeeze(1))
    in_text_order = torch.stack(back, 1).gather(1, _mirrored(lengths, length))
    return [row[:n] for row, n in zip(in_text_order.tolist(), lengths.tolist(), strict=True)]


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
