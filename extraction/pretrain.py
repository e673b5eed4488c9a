"""Masked-language-model pre-training of a small BERT on unlabelled reports (the paper's stage 1).

Used when Google's Chinese weights are not at hand: whole sentences, one token per character,
15% of the characters chosen, of those 80% -> [MASK], 10% -> a random character, 10% unchanged.
The encoder (without the MLM head) is saved with `save_pretrained`, so `load_bert` reads it like
any other checkpoint.
"""

from __future__ import annotations

import logging
import math
import random
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm
from transformers import BertForMaskedLM, get_linear_schedule_with_warmup

from extraction.bert_factory import BertSize, pick_device, save_bert, small_bert_config
from extraction.tokenizer import CharTokenizer
from ingest.atomic import atomic_directory
from ingest.examples import DEFAULT_MAX_CHARS
from ingest.sentences import sentence_boundaries

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainConfig:
    epochs: int = 3
    max_steps: int | None = None  # stops early when reached
    max_seconds: float | None = None  # wall-clock cap; a safety net, not the main stop
    batch_size: int = 64
    learning_rate: float = 5e-4
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    mask_prob: float = 0.15
    max_chars: int = DEFAULT_MAX_CHARS
    seed: int = 13


@dataclass(frozen=True)
class PretrainResult:
    out_dir: Path
    steps: int
    sentences: int
    final_loss: float
    seconds: float


def text_sentences(texts: Iterable[str], max_chars: int = DEFAULT_MAX_CHARS) -> list[str]:
    """Sentences (guideline boundaries) of the texts, cut into pieces of at most max_chars."""
    result = []
    for text in texts:
        for start, end in sentence_boundaries(text):
            sentence = text[start:end].strip()
            for i in range(0, len(sentence), max_chars):
                piece = sentence[i : i + max_chars]
                if piece.strip():
                    result.append(piece)
    return result


def mask_tokens(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    tokenizer: CharTokenizer,
    mask_prob: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked input_ids, labels with -100 where nothing is predicted); BERT's 80/10/10 rule."""
    special = torch.tensor(sorted(tokenizer.special_ids), dtype=torch.long)
    candidates = attention_mask.bool() & ~torch.isin(input_ids, special)
    chosen = (torch.rand(input_ids.shape, generator=generator) < mask_prob) & candidates
    if not chosen.any() and candidates.any():  # a batch with nothing to predict has no loss
        chosen[candidates.nonzero()[0].unbind()] = True
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    roll = torch.rand(input_ids.shape, generator=generator)
    masked = input_ids.clone()
    masked[chosen & (roll < 0.8)] = tokenizer.mask_id
    randomise = chosen & (roll >= 0.8) & (roll < 0.9)
    low = max(tokenizer.special_ids) + 1
    random_ids = torch.randint(low, len(tokenizer), input_ids.shape, generator=generator)
    masked[randomise] = random_ids[randomise]
    return masked, labels


def pretrain_mlm(
    sentences: Sequence[str],
    tokenizer: CharTokenizer,
    out_dir: str | Path,
    size: BertSize | None = None,
    config: PretrainConfig | None = None,
    device: str | None = None,
) -> PretrainResult:
    """Train BertForMaskedLM from scratch on `sentences`; save its encoder to `out_dir`."""
    if not sentences:
        raise ValueError("no sentences to pre-train on: is the archive empty?")
    size = size or BertSize()
    config = config or PretrainConfig()
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    dev = pick_device(device)
    model = BertForMaskedLM(small_bert_config(len(tokenizer), size)).to(dev)
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    # Batches of similar length waste little on padding; their order is shuffled each epoch.
    batches = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
    total = config.epochs * len(batches)
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    schedule = get_linear_schedule_with_warmup(
        optimizer, math.ceil(config.warmup_ratio * total), max(total, 1)
    )
    use_bf16 = dev.type == "cuda"
    began = time.monotonic()
    step, loss_value = 0, float("nan")
    bar = tqdm(total=total, desc="pretrain", disable=not sys.stderr.isatty(), unit="step")
    model.train()
    while step < total:
        rng.shuffle(batches)
        for batch in batches:
            if step >= total:
                break
            ids, mask = tokenizer.batch([sentences[i] for i in batch])
            masked, labels = mask_tokens(ids, mask, tokenizer, config.mask_prob, generator)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
                out = model(
                    input_ids=masked.to(dev), attention_mask=mask.to(dev), labels=labels.to(dev)
                )
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            step += 1
            loss_value = float(out.loss.detach())
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.3f}")
            if config.max_seconds is not None and time.monotonic() - began > config.max_seconds:
                logger.info("pre-training stopped at its time cap after %d steps", step)
                total = step
                break
    bar.close()
    target = Path(out_dir)
    with atomic_directory(target) as building:
        save_bert(model.bert, building)
        tokenizer.save(building)
    seconds = time.monotonic() - began
    logger.info("pre-trained %d steps in %.1fs, last MLM loss %.3f", step, seconds, loss_value)
    return PretrainResult(target, step, len(sentences), loss_value, seconds)
