"""Relation classification for all entity pairs: literal vs batched vs exact, one table.

    .venv/bin/python bench/bench_rc.py                     # project default size, CPU
    .venv/bin/python bench/bench_rc.py --size base         # bert-base size (12 x 768, 12 heads)
    .venv/bin/python bench/bench_rc.py --device cuda --bf16

Random weights and random character ids: timings do not depend on what the model learnt.
Per entity count, `--sentences` sentences of 60-100 characters carry n non-overlapping entities
of 2-4 characters and all n(n-1)/2 pairs. Columns:
  RC s        all-pairs RC time over those sentences (best of --repeats); for "literal" measured
              on the first --literal-pairs pairs and scaled to all (its cost per pair is fixed)
  pairs/s     pairs / RC s
  RC/NER      RC s / the NER-only pass (lower + ner) over the same sentences
  all/NER     (NER pass + RC) / NER pass; for "exact" Eq.(13) via ner_and_rc, which shares the
              first task layer with the NER pass
  vs literal  speed-up of RC s over "literal"
  max diff    max |[CLS] - literal [CLS]| on the pairs literal computed
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from common import bests, interleaved, machine_lines, peak_rss_mib
from transformers import BertConfig, BertModel

from extraction.attention_masks import PairIndex
from extraction.str_encoder import StrEncoder
from extraction.train_config import PROFILES, profile

STRATEGIES = ("literal", "batched", "exact")


@dataclass(frozen=True)
class Workload:
    entities: int
    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    pairs: PairIndex


def make_workload(entities: int, sentences: int, vocab: int, seed: int) -> Workload:
    """Sentences of 60-100 chars with `entities` disjoint 2-4 char spans, all unordered pairs."""
    g = torch.Generator().manual_seed(seed + entities)
    lengths = [int(torch.randint(60, 101, (1,), generator=g)) for _ in range(sentences)]
    width = max(lengths) + 2
    ids = torch.zeros(sentences, width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    rows = []
    for s, n in enumerate(lengths):
        ids[s, 1 : n + 1] = torch.randint(5, vocab, (n,), generator=g)
        ids[s, 0], ids[s, n + 1] = 2, 3  # [CLS], [SEP]: any fixed ids do for timing
        mask[s, : n + 2] = 1
        spans = _disjoint_spans(n, entities, g)
        rows += [(s, a, b) for i, a in enumerate(spans) for b in spans[i + 1 :]]
    return Workload(entities, ids, mask, PairIndex.from_spans(rows))


def _disjoint_spans(chars: int, count: int, g: torch.Generator) -> list[tuple[int, int]]:
    """`count` disjoint spans of 2-4 chars as token positions (char i is token i + 1)."""
    widths = torch.randint(2, 5, (count,), generator=g).tolist()
    slack = chars - sum(widths)
    if slack < 0:
        raise ValueError(f"{count} entities of 2-4 chars do not fit in {chars} chars")
    # Random gaps that sum to at most `slack`, then lay the spans out left to right.
    cuts = sorted(torch.randint(0, slack + 1, (count,), generator=g).tolist())
    gaps = [b - a for a, b in zip([0] + cuts[:-1], cuts, strict=True)]
    spans, pos = [], 1
    for gap, w in zip(gaps, widths, strict=True):
        pos += gap
        spans.append((pos, pos + w))
        pos += w
    return spans


def model_config(size: str, vocab: int) -> tuple[BertConfig, int]:
    """BERT config and the default K for `size`: "base", or a training profile's encoder."""
    if size == "base":
        config = BertConfig(
            vocab_size=vocab,
            hidden_size=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=3072,
        )
        return config, 4  # the paper's best RC setting
    trained = profile(size)
    config = BertConfig(
        vocab_size=vocab,
        hidden_size=trained.hidden_size,
        num_hidden_layers=trained.num_hidden_layers,
        num_attention_heads=trained.num_attention_heads,
        intermediate_size=trained.intermediate_size,
        max_position_embeddings=trained.max_position_embeddings,
    )
    return config, trained.k


def subset(pairs: PairIndex, count: int) -> PairIndex:
    return PairIndex(
        pairs.sentence[:count],
        pairs.first_start[:count],
        pairs.first_end[:count],
        pairs.second_start[:count],
        pairs.second_end[:count],
    )


@dataclass(frozen=True)
class RcSettings:
    entities: tuple[int, ...] = (5, 10, 20)
    sentences: int = 8  # per entity count
    repeats: int = 3  # literal: half as many
    literal_pairs: int = 120  # literal is timed on this many pairs, then scaled
    vocab: int = 8000
    seed: int = 0


@dataclass(frozen=True)
class RcRow:
    """One strategy x mask x entity count; times in seconds over the row's sentences."""

    strategy: str
    mask: str
    entities: int
    pairs: int
    rc_s: float  # all pairs
    ner_s: float  # the NER-only pass (lower + ner) over the same sentences
    all_s: float  # NER pass + RC (exact Eq.13: ner_and_rc, sharing the first task layer)
    literal_s: float
    max_diff: float  # max |[CLS] - literal [CLS]| on the pairs literal computed

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / self.rc_s

    @property
    def rc_over_ner(self) -> float:
        return self.rc_s / self.ner_s

    @property
    def all_over_ner(self) -> float:
        return self.all_s / self.ner_s

    @property
    def speedup(self) -> float:
        return self.literal_s / self.rc_s


def measure(
    bert: BertModel,
    k: int,
    settings: RcSettings,
    device: torch.device,
    bf16: bool = False,
    stat: Callable[[dict[str, list[float]]], dict[str, float]] = bests,
) -> tuple[list[RcRow], list[str]]:
    """(rows, notes): every strategy for Eq.(13) and Eq.(14) at each entity count; the jobs of
    one entity count are interleaved and `stat` reduces their repetitions (best or median)."""
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    rows, notes = [], []
    with torch.inference_mode(), autocast:
        for entities in settings.entities:
            load = make_workload(entities, settings.sentences, settings.vocab, settings.seed)
            ids = load.input_ids.to(device)
            mask = load.attention_mask.to(device)
            pairs = load.pairs.to(device)
            n_pairs = len(pairs)
            few = subset(pairs, min(settings.literal_pairs, n_pairs))
            if len(few) < n_pairs:
                notes.append(f"{entities} entities: {len(few)} of {n_pairs} pairs")
            encoders = {m: StrEncoder(bert, k, m) for m in ("eq13", "eq14")}
            lower = encoders["eq13"].lower(ids, mask)
            jobs = _jobs(encoders, ids, mask, lower, pairs, few)
            rounds = {name: settings.repeats for name in jobs}
            rounds.update({n: max(1, settings.repeats // 2) for n in jobs if "literal" in n})
            best = stat(interleaved(jobs, rounds, device))
            ner_s = best["ner"]
            for rc_mask, encoder in encoders.items():
                reference = encoder.rc_cls(None, mask, few, ids, strategy="literal").float()
                literal_s = best[f"literal {rc_mask}"] * n_pairs / max(1, len(few))
                for strategy in STRATEGIES:
                    rc_s = literal_s if strategy == "literal" else best[f"{strategy} {rc_mask}"]
                    out = encoder.rc_cls(lower, mask, few, ids, strategy=strategy).float()
                    diff = float((out - reference).abs().max()) if len(few) else 0.0
                    rows.append(RcRow(strategy, rc_mask, entities, n_pairs, rc_s, ner_s,
                                      best.get(f"{strategy}+ner {rc_mask}", ner_s + rc_s),
                                      literal_s, diff))
    return rows, notes


def run(args: argparse.Namespace) -> int:
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config, default_k = model_config(args.size, args.vocab)
    k = default_k if args.k is None else args.k
    bert = BertModel(config, add_pooling_layer=False).eval().to(device)

    for line in machine_lines(device):
        print(line)
    print(
        f"model: hidden {config.hidden_size}, {config.num_hidden_layers} layers, "
        f"{config.num_attention_heads} heads, K={k}, random weights, "
        f"attention {bert.config._attn_implementation}, "
        f"{'bf16 autocast' if args.bf16 else 'float32'} on {device}; "
        f"{args.sentences} sentences per row, best of {args.repeats}"
    )
    header = (
        f"{'strategy':<8} {'mask':<5} {'ents':>4} {'pairs':>6} {'RC s':>9} {'pairs/s':>9} "
        f"{'RC/NER':>7} {'all/NER':>7} {'vs literal':>10} {'max diff':>9}"
    )
    print(header)
    print("-" * len(header))
    settings = RcSettings(tuple(args.entities), args.sentences, args.repeats, args.literal_pairs,
                          args.vocab, args.seed)
    rows, literal_notes = measure(bert, k, settings, device, args.bf16)
    for r in rows:
        print(
            f"{r.strategy:<8} {r.mask:<5} {r.entities:>4} {r.pairs:>6} {r.rc_s:>9.4f} "
            f"{r.pairs_per_s:>9.0f} {r.rc_over_ner:>7.2f} {r.all_over_ner:>7.2f} "
            f"{r.speedup:>9.1f}x {r.max_diff:>9.1e}"
        )
    if literal_notes:
        print("literal timed on the first pairs and scaled: " + "; ".join(literal_notes))
    print(f"peak RSS: {peak_rss_mib():.0f} MiB")
    return 0


def _jobs(encoders, ids, mask, lower, pairs, few) -> dict[str, Callable[[], object]]:
    """Everything timed for one entity count, by name."""
    any_encoder = encoders["eq13"]
    jobs = {"ner": lambda: any_encoder.ner(any_encoder.lower(ids, mask), mask)}
    for rc_mask, e in encoders.items():
        jobs[f"literal {rc_mask}"] = lambda e=e: e.rc_cls(None, mask, few, ids, strategy="literal")
        for strategy in ("batched", "exact"):
            jobs[f"{strategy} {rc_mask}"] = lambda e=e, s=strategy: e.rc_cls(
                lower, mask, pairs, strategy=s
            )
        if rc_mask == "eq13" and e.k >= 2:
            # the NER pass and the relations together share the first task layer
            jobs["exact+ner eq13"] = lambda e=e: e.ner_and_rc(e.lower(ids, mask), mask, pairs)
    return jobs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("base", *PROFILES), default="default",
                        help="bert-base, or the encoder of a training profile")
    parser.add_argument("--k", type=int, default=None, help="task layers (default: per size)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
    parser.add_argument("--entities", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--sentences", type=int, default=8, help="sentences per entity count")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--literal-pairs",
        type=int,
        default=120,
        help="pairs the literal strategy is timed on (then scaled)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads (0: torch's default; 1 is steadier on a machine shared with others)",
    )
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(run(parse_args()))
