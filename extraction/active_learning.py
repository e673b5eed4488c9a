"""`angiokg experiment CORPUS --learning-curve`: how much to annotate, and in which order.

1. Split the corpus as `angiokg train` does; dev (early stopping, calibration) and test (every
   score below) stay fixed; the train split is the pool of reports an annotator could label.
2. One shared encoder (vocabulary + MLM pre-training on the pool's text, which is unlabelled
   text and free) that every model fine-tunes from, as `angiokg experiment` does.
3. Rounds from the same start: the first `start` reports of a seeded shuffle of the pool; each
   round adds `step` reports until the budget (default: the whole pool). The `random` arm adds
   the next ones of the shuffle, so its rounds are the learning curve (nested random parts of
   the training split). Each selection arm adds the `step` reports `select` would queue: the
   round's model predicts the rest of the pool, near-duplicates of labelled reports are skipped
   and the best-scoring ones are taken (extraction.select).
4. Every round's model is scored on test. The answer for an annotation lead: F1 with the whole
   budget at random, and the share of that budget each selection arm needs to reach it.

The headline F1 is RC on predicted entities (a triple is right only with both spans, types and
the relation right: what the records are built from); NER F1 is in the tables too. A training
set met twice (the shared start, the whole pool) is trained once, and a simulation started again
in the same folder reuses the models it already trained.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from extraction.calibration import calibration_report
from extraction.experiment import build_shared_encoder
from extraction.predict import Extractor
from extraction.select import select_from_predictions
from extraction.train import read_corpus, split_documents, train_documents
from extraction.train_config import TrainConfig
from extraction.uncertainty import STRATEGIES
from ingest.atomic import write_text_atomic
from ingest.document import Document
from ingest.near_duplicates import DEFAULT_THRESHOLD, NearDuplicateIndex
from ingest.schema import Schema, load_schema

logger = logging.getLogger(__name__)
RANDOM = "random"
DEFAULT_ARMS = ("expected-errors", "entropy", RANDOM)


@dataclass(frozen=True)
class RoundResult:
    arm: str
    round: int
    reports: int
    characters: int
    ner_f1: float
    rc_f1: float  # RC on predicted entities, test split
    model: str  # model directory name (shared between arms for the same training set)


@dataclass(frozen=True)
class ArmSummary:
    arm: str
    reports_to_reach: int | None  # the first round whose F1 >= the random arm's final F1
    share_of_budget: float | None
    characters_share: float | None


@dataclass(frozen=True)
class SimulationResult:
    corpus: str
    split: dict[str, int]
    start: int
    step: int
    budget: int
    arms: tuple[str, ...]
    rounds: tuple[RoundResult, ...]
    summaries: tuple[ArmSummary, ...]
    target_f1: float  # the random arm's F1 with the whole budget
    calibration: dict  # the whole-budget model on test: ECE before and after, temperatures
    seconds: float


def parse_arms(text: str) -> tuple[str, ...]:
    arms = tuple(dict.fromkeys(a.strip() for a in text.split(",") if a.strip()))
    unknown = [a for a in arms if a not in STRATEGIES]
    if not arms or unknown:
        raise ValueError(f"--strategies: expected some of {', '.join(STRATEGIES)}, got {text!r}")
    return arms if RANDOM in arms else (*arms, RANDOM)  # random is the yardstick


def schedule(pool: int, start: int, step: int, budget: int | None = None) -> tuple[int, ...]:
    """Labelled-set sizes of the rounds: start, start + step, ..., budget (always the last)."""
    budget = pool if budget is None else min(budget, pool)
    if start < 1 or step < 1 or start > budget:
        raise ValueError(f"need 1 <= start <= budget and step >= 1 (start {start}, step {step}, "
                         f"budget {budget}, pool {pool})")
    sizes = list(range(start, budget, step))
    return (*sizes, budget)


def reach(rounds: Sequence[RoundResult], target: float, budget_chars: int
          ) -> tuple[int | None, float | None, float | None]:
    """(reports, share of the budget's reports, share of its characters) of the first round
    whose F1 is at least `target` (rounded to 4 decimals, the tables' precision)."""
    budget = max(r.reports for r in rounds)
    for r in sorted(rounds, key=lambda r: r.reports):
        if round(r.rc_f1, 4) >= round(target, 4):
            return r.reports, r.reports / budget, r.characters / budget_chars
    return None, None, None


def _subset_name(documents: Sequence[Document]) -> str:
    digest = hashlib.sha256("\n".join(sorted(d.doc_id for d in documents)).encode())
    return f"n{len(documents):04d}-{digest.hexdigest()[:10]}"


class _Trainer:
    """Fine-tunes a model per labelled set (once per distinct set) and scores it on test."""

    def __init__(self, fixed: list[Document], schema: Schema, config: TrainConfig,
                 encoder: Path, models: Path) -> None:
        self.fixed, self.schema, self.config = fixed, schema, config
        self.encoder, self.models = encoder, models
        self.done: dict[str, dict | None] = {}

    def train(self, labelled: Sequence[Document]) -> tuple[str, dict]:
        name = _subset_name(labelled)
        if name not in self.done:
            self.done[name] = self._reuse(name)
        if self.done[name] is None:
            ordered = sorted(labelled, key=lambda d: d.doc_id)  # same set, same model
            result = train_documents([*ordered, *self.fixed], self.schema, self.models / name,
                                     self.config, self.encoder)
            self.done[name] = result.metrics
            logger.info("%s: test RC F1 %.4f", name, result.metrics["test"]["rc_predicted"]["f1"])
        return name, self.done[name]

    def _reuse(self, name: str) -> dict | None:
        """The metrics of a model this set already has in OUT/models (an interrupted
        simulation started again), if it was trained with the same configuration."""
        folder = self.models / name
        try:
            saved = json.loads((folder / "train_config.json").read_text(encoding="utf-8"))
            metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return metrics if saved == self.config.to_dict() and "test" in metrics else None


def _bare(documents: Sequence[Document]) -> list[Document]:
    return [replace(d, entities=(), relations=(), others=(), doubt=None, annotated=False)
            for d in documents]


def choose_next(extractor: Extractor, labelled: Sequence[Document], rest: Sequence[Document],
                step: int, strategy: str, threshold: float = DEFAULT_THRESHOLD
                ) -> list[Document]:
    """The `step` reports of `rest` that `select` would queue after `labelled`."""
    index = NearDuplicateIndex(threshold)
    for document in labelled:
        index.add_text(document.doc_id, document.text)
    fresh = [d for d in rest if not index.near(index.hasher.signature(d.text))]
    predictions = extractor.extract(_bare(fresh))
    picks = select_from_predictions(predictions, step, strategy=strategy,
                                    threshold=threshold).picks
    chosen = {p.document.doc_id for p in picks}
    if len(chosen) < step:  # everything left is a near-duplicate: fill in pool order
        chosen |= {d.doc_id for d in rest if d.doc_id not in chosen}
        chosen = set(sorted(chosen, key=[d.doc_id for d in rest].index)[:step])
    return [d for d in rest if d.doc_id in chosen]


def run_simulation(corpus_dir: str | Path, out_dir: str | Path, config: TrainConfig, *,
                   start: int | None = None, step: int | None = None, budget: int | None = None,
                   arms: Sequence[str] = DEFAULT_ARMS, seed: int = 0,
                   bert_dir: str | Path | None = None, schema: Schema | None = None
                   ) -> SimulationResult:
    began = time.monotonic()
    schema = schema or load_schema()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    documents = read_corpus(corpus_dir, schema)
    sides = split_documents(documents, config.split_seed)
    split = {side: len(docs) for side, docs in sides.items()}
    if not sides["dev"] or not sides["test"] or len(sides["train"]) < 2:
        raise ValueError(f"{corpus_dir}: the simulation needs dev and test reports and at least "
                         f"two training reports, got {split}")
    pool = sorted(sides["train"], key=lambda d: d.doc_id)
    random.Random(seed).shuffle(pool)
    start = start or max(1, math.ceil(len(pool) / 10))
    step = step or start
    sizes = schedule(len(pool), start, step, budget)
    budget_chars = sum(len(d.text) for d in pool[: sizes[-1]])
    if bert_dir is None and (out / "encoder" / "config.json").is_file():
        encoder = out / "encoder"  # started again: the models already trained fine-tuned it
    elif bert_dir is None:
        encoder, _ = build_shared_encoder([d.text for d in pool], config, out)
    else:
        encoder = Path(bert_dir)
    trainer = _Trainer([*sides["dev"], *sides["test"]], schema, config, encoder, out / "models")
    arms = tuple(parse_arms(",".join(arms)))
    rounds: list[RoundResult] = []
    for arm in arms:
        labelled = list(pool[:start])
        previous = ""  # the model of the round before: it chooses the next reports
        for number, size in enumerate(sizes):
            if len(labelled) < size:
                rest = [d for d in pool if d.doc_id not in {x.doc_id for x in labelled}]
                need = size - len(labelled)
                if arm == RANDOM:
                    labelled += rest[:need]
                else:
                    extractor = Extractor.load(out / "models" / previous, device=config.device,
                                               schema=schema)
                    labelled += choose_next(extractor, labelled, rest, need, arm)
            previous, metrics = trainer.train(labelled)
            test = metrics["test"]
            rounds.append(RoundResult(arm, number, len(labelled),
                                      sum(len(d.text) for d in labelled),
                                      test["ner"]["f1"], test["rc_predicted"]["f1"], previous))
            logger.info("%s round %d: %d reports, RC F1 %.4f", arm, number, len(labelled),
                        test["rc_predicted"]["f1"])
    random_rounds = [r for r in rounds if r.arm == RANDOM]
    target = max(random_rounds, key=lambda r: r.reports).rc_f1
    summaries = tuple(ArmSummary(arm, *reach([r for r in rounds if r.arm == arm], target,
                                             budget_chars)) for arm in arms)
    final = Extractor.load(out / "models" / random_rounds[-1].model, device=config.device,
                           schema=schema)
    report = calibration_report(final, sides["test"]).to_dict()
    calibration = {head: {k: report[head][k] for k in ("temperature", "items", "errors",
                                                        "ece_before", "ece_after")}
                   for head in ("ner", "rc")}
    return SimulationResult(str(corpus_dir), split, start, step, sizes[-1], arms, tuple(rounds),
                            summaries, target, calibration, time.monotonic() - began)


# --- outputs (pure, but for the plot) ----------------------------------------------------------


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def render_markdown(result: SimulationResult) -> str:
    sizes = sorted({r.reports for r in result.rounds})
    by = {(r.arm, r.reports): r for r in result.rounds}
    head = ["## Learning curve and active-learning simulation", "",
            f"- corpus {result.corpus}: pool (train split) {result.split['train']}, dev "
            f"{result.split['dev']}, test {result.split['test']} reports",
            f"- rounds: start {result.start} random reports, + {result.step} per round, budget "
            f"{result.budget}; scores on test, in %",
            f"- F1 with the whole budget at random (RC on predicted entities): "
            f"**{100 * result.target_f1:.2f}**", f"- wall time {result.seconds:.0f}s", ""]
    lines = ["### Test RC F1 (predicted entities) by labelled reports", "",
             "| reports | " + " | ".join(result.arms) + " |",
             "|---:|" + "---:|" * len(result.arms)]
    for size in sizes:
        cells = [f"{100 * by[(a, size)].rc_f1:.2f}" if (a, size) in by else "—"
                 for a in result.arms]
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    lines += ["", "### Test NER F1 by labelled reports", "",
              "| reports | " + " | ".join(result.arms) + " |",
              "|---:|" + "---:|" * len(result.arms)]
    for size in sizes:
        cells = [f"{100 * by[(a, size)].ner_f1:.2f}" if (a, size) in by else "—"
                 for a in result.arms]
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    lines += ["", "### Budget needed to reach the random arm's whole-budget F1", "",
              "| arm | reports | share of the budget | share of its characters |",
              "|---|---:|---:|---:|"]
    for s in result.summaries:
        lines.append(f"| {s.arm} | {s.reports_to_reach if s.reports_to_reach else 'not reached'}"
                     f" | {_pct(s.share_of_budget)} | {_pct(s.characters_share)} |")
    lines += ["", "### Calibration of the whole-budget model on test", "",
              "| head | temperature | annotations | wrong | ECE before | ECE after |",
              "|---|---:|---:|---:|---:|---:|"]
    for name, c in result.calibration.items():
        lines.append(f"| {'entities' if name == 'ner' else 'relations'} | "
                     f"{c['temperature']:.2f} | {c['items']} | {c['errors']} | "
                     f"{c['ece_before']:.4f} | {c['ece_after']:.4f} |")
    return "\n".join(head + lines) + "\n"


def plot(result: SimulationResult, png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=100)
    for arm in result.arms:
        points = sorted((r.reports, 100 * r.rc_f1) for r in result.rounds if r.arm == arm)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                linestyle="--" if arm == RANDOM else "-",
                label=f"{arm} (= learning curve)" if arm == RANDOM else arm)
    ax.axhline(100 * result.target_f1, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("labelled reports")
    ax.set_ylabel("test RC F1 on predicted entities (%)")
    ax.set_title("active learning vs random (same start, same encoder)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
    return png


def write_outputs(result: SimulationResult, out_dir: str | Path) -> str:
    """OUT/learning_curve.md, learning_curve.csv, learning_curve.json, learning_curve.png."""
    out = Path(out_dir)
    markdown = render_markdown(result)
    write_text_atomic(out / "learning_curve.md", markdown)
    rows = ["arm,round,reports,characters,ner_f1,rc_f1,model"]
    rows += [f"{r.arm},{r.round},{r.reports},{r.characters},{r.ner_f1:.6f},{r.rc_f1:.6f},"
             f"{r.model}" for r in result.rounds]
    write_text_atomic(out / "learning_curve.csv", "\n".join(rows) + "\n")
    write_text_atomic(out / "learning_curve.json",
                      json.dumps(asdict(result), ensure_ascii=False, indent=1) + "\n")
    plot(result, out / "learning_curve.png")
    return markdown
