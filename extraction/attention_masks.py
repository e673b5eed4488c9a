"""Additive attention masks of the focused attention model, as 4D float tensors.

The paper writes attention as Softmax(QK^T/sqrt(d) + (MASK - 1) * inf) with MASK_ij = 0 meaning
token i ignores token j. We add `torch.finfo(dtype).min` instead of -inf: a row that may attend
to nothing then gets a uniform (finite) distribution instead of NaN, and a row with at least one
allowed key is unchanged, because exp(min - max) underflows to exactly 0.

Shapes: B sentences, P pairs, T tokens. `attention_mask` is the usual (B, T) 0/1 padding mask;
[CLS] is token 0 and the character i of the sentence is token i + 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from extraction.choices import RcMask


@dataclass(frozen=True)
class PairIndex:
    """Candidate pairs, one row per pair; entity spans are [start, end) token positions."""

    sentence: torch.LongTensor  # (P,) index into the batch of sentences
    first_start: torch.LongTensor  # (P,)
    first_end: torch.LongTensor  # (P,)
    second_start: torch.LongTensor  # (P,)
    second_end: torch.LongTensor  # (P,)

    def to(self, device: torch.device | str) -> PairIndex:
        return PairIndex(
            sentence=self.sentence.to(device),
            first_start=self.first_start.to(device),
            first_end=self.first_end.to(device),
            second_start=self.second_start.to(device),
            second_end=self.second_end.to(device),
        )

    def __len__(self) -> int:
        return int(self.sentence.shape[0])

    @staticmethod
    def from_spans(
        rows: list[tuple[int, tuple[int, int], tuple[int, int]]], device: torch.device | str = "cpu"
    ) -> PairIndex:
        """Build from (sentence, (start, end), (start, end)) token-position tuples."""
        cols = list(zip(*[(s, a, b, c, d) for s, (a, b), (c, d) in rows], strict=True)) or [[]] * 5
        tensors = [torch.tensor(col, dtype=torch.long, device=device) for col in cols]
        return PairIndex(*tensors)


def check_pairs(pairs: PairIndex, attention_mask: torch.Tensor) -> None:
    """Raise ValueError when a span is empty, covers [CLS] or runs past the real tokens."""
    if len(pairs) == 0:
        return
    lengths = attention_mask.sum(dim=1)[pairs.sentence]
    for name, start, end in (
        ("first", pairs.first_start, pairs.first_end),
        ("second", pairs.second_start, pairs.second_end),
    ):
        bad = (start < 1) | (end <= start) | (end > lengths)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"PairIndex row {i}: {name} entity span [{int(start[i])}, {int(end[i])}) is not "
                f"inside the real tokens 1..{int(lengths[i]) - 1} of sentence "
                f"{int(pairs.sentence[i])}; token positions count [CLS] as 0"
            )


def additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """0 where allowed, finfo(dtype).min where not; adds a head axis for 3D inputs."""
    mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    mask = mask.masked_fill(~allowed, torch.finfo(dtype).min)
    return mask.unsqueeze(1) if mask.dim() == 3 else mask


def all_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """MASK^all (= MASK^ner) as (B, 1, 1, T): every row sees every real token."""
    return additive(attention_mask.bool()[:, None, :], dtype)


def pair_members(pairs: PairIndex, seq_len: int) -> torch.Tensor:
    """(P, T) bool: token is [CLS] or inside entity 1 or entity 2 of the pair."""
    pos = torch.arange(seq_len, device=pairs.sentence.device)[None, :]
    first = (pos >= pairs.first_start[:, None]) & (pos < pairs.first_end[:, None])
    second = (pos >= pairs.second_start[:, None]) & (pos < pairs.second_end[:, None])
    return first | second | (pos == 0)


def rc_allowed(pairs: PairIndex, attention_mask: torch.Tensor, rc_mask: RcMask) -> torch.Tensor:
    """MASK^rc per pair as (P, T, T) bool: entry [p, i, j] = token i may attend token j."""
    real = attention_mask.bool()[pairs.sentence]  # (P, T)
    members = pair_members(pairs, real.shape[1]) & real
    if rc_mask == "eq14":
        # Eq.(14): only [CLS], e1, e2 attend, and only among themselves.
        return members[:, :, None] & members[:, None, :]
    if rc_mask == "eq13":
        # Eq.(13): row [CLS] sees [CLS], e1, e2; every other row sees all real tokens.
        allowed = real[:, None, :].expand(-1, real.shape[1], -1).clone()
        allowed[:, 0, :] = members
        return allowed
    raise ValueError(f"rc_mask must be 'eq13' or 'eq14', got {rc_mask!r}")


def rc_mask_4d(
    pairs: PairIndex, attention_mask: torch.Tensor, rc_mask: RcMask, dtype: torch.dtype
) -> torch.Tensor:
    """MASK^rc as an additive (P, 1, T, T) mask."""
    return additive(rc_allowed(pairs, attention_mask, rc_mask), dtype)
