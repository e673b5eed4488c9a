"""Sentence examples -> tensors, keeping each sentence together with its candidate pairs.

A batch is a set of sentences and every candidate pair inside them, so layers 1..N-K run once per
sentence (the STR-encoder's `lower`) and the pairs reuse that output. Token positions follow the
encoder's convention: [CLS] is token 0 and character i of the sentence is token i + 1.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from extraction.str_encoder import PairIndex
from extraction.tokenizer import CharTokenizer
from ingest.examples import SentenceExample

PairSpan = tuple[int, int, int, int]  # first_start, first_end, second_start, second_end (tokens)


@dataclass(frozen=True)
class EncodedSentence:
    input_ids: tuple[int, ...]  # [CLS] chars [SEP]
    tag_ids: tuple[int, ...] | None  # one per character; None when unlabelled
    pairs: tuple[PairSpan, ...]
    pair_labels: tuple[int, ...]  # empty when unlabelled

    @property
    def num_chars(self) -> int:
        return len(self.input_ids) - 2


@dataclass(frozen=True)
class Batch:
    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T) 1 on [CLS], characters and [SEP]
    char_mask: torch.Tensor  # (B, L) bool, L = longest sentence: the CRF's mask
    tags: torch.Tensor | None  # (B, L) tag ids, 0 (O) on padding
    pairs: PairIndex  # P rows
    pair_labels: torch.Tensor | None  # (P,)

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            input_ids=self.input_ids.to(device),
            attention_mask=self.attention_mask.to(device),
            char_mask=self.char_mask.to(device),
            tags=None if self.tags is None else self.tags.to(device),
            pairs=self.pairs.to(device),
            pair_labels=None if self.pair_labels is None else self.pair_labels.to(device),
        )


def encode_example(
    example: SentenceExample,
    tokenizer: CharTokenizer,
    tag_index: dict[str, int],
    label_index: dict[str, int],
) -> EncodedSentence:
    mentions = example.mentions
    pairs = tuple(
        pair_span(mentions[c.first].start, mentions[c.first].end,
                  mentions[c.second].start, mentions[c.second].end)
        for c in example.candidates
    )
    return EncodedSentence(
        input_ids=tuple(tokenizer.encode(example.sentence.text)),
        tag_ids=tuple(tag_index[t] for t in example.tags),
        pairs=pairs,
        pair_labels=tuple(label_index[c.label] for c in example.candidates),
    )


def pair_span(first_start: int, first_end: int, second_start: int, second_end: int) -> PairSpan:
    """Character offsets within a sentence -> token positions (shifted past [CLS])."""
    return (first_start + 1, first_end + 1, second_start + 1, second_end + 1)


def collate(
    sentences: Sequence[EncodedSentence],
    pad_id: int,
    pairs: Sequence[Sequence[PairSpan]] | None = None,
) -> Batch:
    """Pad a list of sentences into one Batch; `pairs` overrides each sentence's own pairs."""
    width = max(len(s.input_ids) for s in sentences)
    chars = width - 2
    ids = torch.full((len(sentences), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(sentences), width), dtype=torch.long)
    char_mask = torch.zeros((len(sentences), chars), dtype=torch.bool)
    labelled = all(s.tag_ids is not None for s in sentences)
    tags = torch.zeros((len(sentences), chars), dtype=torch.long) if labelled else None
    rows: list[tuple[int, int, int, int, int]] = []
    labels: list[int] = []
    for b, s in enumerate(sentences):
        ids[b, : len(s.input_ids)] = torch.tensor(s.input_ids, dtype=torch.long)
        attention[b, : len(s.input_ids)] = 1
        char_mask[b, : s.num_chars] = True
        if tags is not None and s.tag_ids:
            tags[b, : s.num_chars] = torch.tensor(s.tag_ids, dtype=torch.long)
        own = s.pairs if pairs is None else pairs[b]
        rows.extend((b, *p) for p in own)
        if pairs is None:
            labels.extend(s.pair_labels)
    cols = [torch.tensor([r[i] for r in rows], dtype=torch.long) for i in range(5)]
    has_labels = pairs is None and len(labels) == len(rows)
    return Batch(
        input_ids=ids,
        attention_mask=attention,
        char_mask=char_mask,
        tags=tags,
        pairs=PairIndex(*cols),
        pair_labels=torch.tensor(labels, dtype=torch.long) if has_labels else None,
    )


def length_batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random | None = None
) -> list[list[int]]:
    """Index batches of similar-length sentences (little padding); shuffled when rng is given."""
    order = list(range(len(lengths)))
    if rng is None:
        order.sort(key=lambda i: lengths[i])
    else:
        # Shuffle, then stable-sort by coarse length: batches differ between epochs yet pad little.
        rng.shuffle(order)
        order.sort(key=lambda i: lengths[i] // 8)
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches
