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

5. `--seeds S1,S2,...`: the whole simulation once per seed, in OUT/seed-S (the pool shuffled
   by S, so another start set and order, and every model trained with seed S), all from the
   first seed's encoder; OUT/learning_curve.* then give each round's mean and spread over the
   seeds, and each seed's share of the budget to reach its own random whole-budget F1.
6. `--matched-steps`: every set trained for the whole budget's optimizer steps (more passes over
   a smaller set; TrainConfig.train_steps), so a point says what its reports give, not what its
   shorter training gives. The default trains each set for the config's epochs.

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
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch

from extraction.calibration import calibration_report
from extraction.experiment import build_shared_encoder
from extraction.predict import Extractor
from extraction.select import select_from_predictions
from extraction.train import epoch_steps, read_corpus, split_documents, train_documents
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
    # Optimizer steps of every training (--matched-steps: the whole budget's epochs); None: each
    # set trained for the config's epochs, so a smaller set got fewer steps.
    train_steps: int | None = None


def load_result(payload: dict) -> SimulationResult:
    """A `SimulationResult` from its learning_curve.json (one written before a field existed
    gets its default)."""
    values = {f.name: payload[f.name] for f in fields(SimulationResult) if f.name in payload}
    values["arms"] = tuple(values["arms"])
    values["rounds"] = tuple(RoundResult(**r) for r in values["rounds"])
    values["summaries"] = tuple(ArmSummary(**a) for a in values["summaries"])
    return SimulationResult(**values)


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
        ordered = sorted(labelled, key=lambda d: d.doc_id)  # same set, same model
        config = self._config_for(ordered)
        if name not in self.done:
            self.done[name] = self._reuse(name, config)
        if self.done[name] is None:
            result = train_documents([*ordered, *self.fixed], self.schema, self.models / name,
                                     config, self.encoder)
            self.done[name] = result.metrics
            logger.info("%s: test RC F1 %.4f", name, result.metrics["test"]["rc_predicted"]["f1"])
        return name, self.done[name]

    def _config_for(self, ordered: Sequence[Document]) -> TrainConfig:
        """The config a set trains with. `train_steps` equal to the steps of the set's own
        epochs (the whole budget under --matched-steps) trains the same model as no
        `train_steps`: it is then left out, so that model is the fixed-epoch one, and reused."""
        steps = self.config.train_steps
        if steps is not None and steps == epoch_steps(ordered, self.schema, self.config):
            return replace(self.config, train_steps=None)
        return self.config

    def _reuse(self, name: str, config: TrainConfig) -> dict | None:
        """The metrics of a model this set already has in OUT/models (an interrupted
        simulation started again), if it was trained with the same configuration."""
        folder = self.models / name
        try:
            saved = json.loads((folder / "train_config.json").read_text(encoding="utf-8"))
            metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
            same = TrainConfig.from_dict(saved) == config  # a newer field at its default
        except (OSError, ValueError, TypeError):
            return None
        return metrics if same and "test" in metrics else None


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
                   bert_dir: str | Path | None = None, schema: Schema | None = None,
                   matched_steps: bool = False) -> SimulationResult:
    """The rounds of every arm and their test scores; `matched_steps` trains every set for the
    optimizer steps of the whole budget's `config.epochs` (TrainConfig.train_steps)."""
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
    if matched_steps:
        whole = sorted(pool[: sizes[-1]], key=lambda d: d.doc_id)  # as _Trainer orders a set
        config = replace(config, train_steps=epoch_steps(whole, schema, config))
        logger.info("every training: %d optimizer steps (the whole budget's %d epochs)",
                    config.train_steps, config.epochs)
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
                            summaries, target, calibration, time.monotonic() - began,
                            config.train_steps)


# --- outputs (pure, but for the plot) ----------------------------------------------------------


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _protocol(result: SimulationResult) -> str:
    if result.train_steps is None:
        return "the config's epochs over each labelled set (a smaller set, fewer steps)"
    return (f"{result.train_steps} optimizer steps for every labelled set, the whole budget's "
            "epochs (--matched-steps)")


def render_markdown(result: SimulationResult) -> str:
    sizes = sorted({r.reports for r in result.rounds})
    by = {(r.arm, r.reports): r for r in result.rounds}
    head = ["## Learning curve and active-learning simulation", "",
            f"- corpus {result.corpus}: pool (train split) {result.split['train']}, dev "
            f"{result.split['dev']}, test {result.split['test']} reports",
            f"- rounds: start {result.start} random reports, + {result.step} per round, budget "
            f"{result.budget}; scores on test, in %", f"- training: {_protocol(result)}",
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


def _new_plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6.5, 4), dpi=100)


def _save_plot(fig, ax, target_f1: float, title: str, png: Path) -> Path:
    """The simulation plots' common frame: random's whole-budget target, axes, legend; saved."""
    import matplotlib.pyplot as plt

    ax.axhline(target_f1, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("labelled reports")
    ax.set_ylabel("test RC F1 on predicted entities (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
    return png


def plot(result: SimulationResult, png: Path) -> Path:
    fig, ax = _new_plot()
    for arm in result.arms:
        points = sorted((r.reports, 100 * r.rc_f1) for r in result.rounds if r.arm == arm)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                linestyle="--" if arm == RANDOM else "-",
                label=f"{arm} (= learning curve)" if arm == RANDOM else arm)
    return _save_plot(fig, ax, 100 * result.target_f1,
                      "active learning vs random (same start, same encoder)", png)


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


# --- several seeds: mean and spread ------------------------------------------------------------


@dataclass(frozen=True)
class SpreadPoint:
    """One arm at one round size over the seeds."""

    arm: str
    reports: int
    share_of_budget: float
    rc_f1: tuple[float, ...]  # one per seed, in the seeds' order
    ner_f1: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.rc_f1)

    @property
    def sd(self) -> float:  # sample standard deviation; 0 for one seed
        return statistics.stdev(self.rc_f1) if len(self.rc_f1) > 1 else 0.0


@dataclass(frozen=True)
class SeedsSummary:
    arm: str
    shares: tuple[float | None, ...]  # per seed: share of the budget to reach its random target
    mean_curve_reports: int | None  # the first round whose mean F1 >= the mean target
    mean_curve_share: float | None


@dataclass(frozen=True)
class SeedsResult:
    seeds: tuple[int, ...]
    runs: tuple[SimulationResult, ...]
    points: tuple[SpreadPoint, ...]
    summaries: tuple[SeedsSummary, ...]

    @property
    def targets(self) -> tuple[float, ...]:
        return tuple(r.target_f1 for r in self.runs)


def aggregate(seeds: Sequence[int], runs: Sequence[SimulationResult]) -> SeedsResult:
    """Mean and spread over simulations that differ only by their seed (same corpus, split,
    schedule and arms; refused otherwise)."""
    first = runs[0]
    sizes = sorted({r.reports for r in first.rounds})
    for run in runs[1:]:
        if run.arms != first.arms or sorted({r.reports for r in run.rounds}) != sizes:
            raise ValueError("the seeds' simulations differ in arms or rounds; run them with the "
                             "same --start, --step, --budget and --strategies")
    points = []
    for arm in first.arms:
        for size in sizes:
            at = [next(r for r in run.rounds if r.arm == arm and r.reports == size)
                  for run in runs]
            points.append(SpreadPoint(arm, size, size / first.budget,
                                      tuple(r.rc_f1 for r in at), tuple(r.ner_f1 for r in at)))
    target = statistics.fmean(r.target_f1 for r in runs)
    summaries = []
    for arm in first.arms:
        shares = tuple(next(s.share_of_budget for s in run.summaries if s.arm == arm)
                       for run in runs)
        reached = [p for p in points if p.arm == arm and round(p.mean, 4) >= round(target, 4)]
        reports = min((p.reports for p in reached), default=None)
        summaries.append(SeedsSummary(arm, shares, reports,
                                      None if reports is None else reports / first.budget))
    return SeedsResult(tuple(seeds), tuple(runs), tuple(points), tuple(summaries))


def run_seeds(corpus_dir: str | Path, out_dir: str | Path, config: TrainConfig,
              seeds: Sequence[int], *, bert_dir: str | Path | None = None, **simulation
              ) -> SeedsResult:
    """`run_simulation` once per seed in OUT/seed-S (each resumable), then the aggregate."""
    out = Path(out_dir)
    runs = []
    for seed in seeds:
        run = run_simulation(corpus_dir, out / f"seed-{seed}", replace(config, seed=seed),
                             seed=seed, bert_dir=bert_dir, **simulation)
        write_outputs(run, out / f"seed-{seed}")
        runs.append(run)
        if bert_dir is None:  # the first seed built it: every other seed fine-tunes it too
            bert_dir = out / f"seed-{seed}" / "encoder"
    return aggregate(seeds, runs)


def _spread(point: SpreadPoint) -> str:
    return (f"{100 * point.mean:.2f} ± {100 * point.sd:.2f} "
            f"({100 * min(point.rc_f1):.1f}–{100 * max(point.rc_f1):.1f})")


def render_seeds_markdown(result: SeedsResult) -> str:
    first = result.runs[0]
    arms = first.arms
    targets = result.targets
    target_sd = statistics.stdev(targets) if len(targets) > 1 else 0.0
    lines = ["## Learning curve and active-learning simulation, several seeds", "",
             f"- corpus {first.corpus}: pool (train split) {first.split['train']}, dev "
             f"{first.split['dev']}, test {first.split['test']} reports",
             f"- rounds: start {first.start} random reports, + {first.step} per round, budget "
             f"{first.budget}; scores on test, in %", f"- training: {_protocol(first)}",
             f"- seeds {', '.join(map(str, result.seeds))}: each shuffles the pool (another "
             "start and order) and seeds the training",
             f"- F1 with the whole budget at random (RC on predicted entities): "
             f"**{100 * statistics.fmean(targets):.2f} ± {100 * target_sd:.2f}** "
             f"({', '.join(f'{100 * t:.2f}' for t in targets)})",
             f"- wall time {sum(r.seconds for r in result.runs):.0f}s", "",
             "### Test RC F1 (predicted entities): mean ± sd (min–max) over the seeds", "",
             "| reports | share | " + " | ".join(arms) + " |",
             "|---:|---:|" + "---:|" * len(arms)]
    by = {(p.arm, p.reports): p for p in result.points}
    for size in sorted({p.reports for p in result.points}):
        lines.append(f"| {size} | {_pct(size / first.budget)} | "
                     + " | ".join(_spread(by[(a, size)]) for a in arms) + " |")
    lines += ["", "### Budget needed to reach the random arm's whole-budget F1", "",
              "| arm | each seed (its own target) | mean curve vs mean target |",
              "|---|---|---:|"]
    for s in result.summaries:
        each = ", ".join(_pct(share) if share is not None else "not reached"
                         for share in s.shares)
        mean = (f"{s.mean_curve_reports} ({_pct(s.mean_curve_share)})"
                if s.mean_curve_reports else "not reached")
        lines.append(f"| {s.arm} | {each} | {mean} |")
    lines += ["", "### Calibration of each seed's whole-budget model on test", "",
              "| seed | head | temperature | annotations | wrong | ECE before | ECE after |",
              "|---:|---|---:|---:|---:|---:|---:|"]
    for seed, run in zip(result.seeds, result.runs, strict=True):
        for name, c in run.calibration.items():
            lines.append(f"| {seed} | {'entities' if name == 'ner' else 'relations'} | "
                         f"{c['temperature']:.2f} | {c['items']} | {c['errors']} | "
                         f"{c['ece_before']:.4f} | {c['ece_after']:.4f} |")
    return "\n".join(lines) + "\n"


def plot_seeds(result: SeedsResult, png: Path) -> Path:
    fig, ax = _new_plot()
    for arm in result.runs[0].arms:
        points = sorted((p for p in result.points if p.arm == arm), key=lambda p: p.reports)
        x = [p.reports for p in points]
        line, = ax.plot(x, [100 * p.mean for p in points], marker="o",
                        linestyle="--" if arm == RANDOM else "-",
                        label=f"{arm} (= learning curve)" if arm == RANDOM else arm)
        ax.fill_between(x, [100 * min(p.rc_f1) for p in points],
                        [100 * max(p.rc_f1) for p in points], color=line.get_color(), alpha=0.15)
    return _save_plot(fig, ax, 100 * statistics.fmean(result.targets),
                      f"active learning vs random: mean, min–max over {len(result.seeds)} seeds",
                      png)


def write_seeds_outputs(result: SeedsResult, out_dir: str | Path) -> str:
    """OUT/learning_curve.md, .csv (every seed's rounds), .json, .png of the aggregate."""
    out = Path(out_dir)
    markdown = render_seeds_markdown(result)
    write_text_atomic(out / "learning_curve.md", markdown)
    rows = ["seed,arm,round,reports,characters,ner_f1,rc_f1,model"]
    rows += [f"{seed},{r.arm},{r.round},{r.reports},{r.characters},{r.ner_f1:.6f},"
             f"{r.rc_f1:.6f},{r.model}"
             for seed, run in zip(result.seeds, result.runs, strict=True) for r in run.rounds]
    write_text_atomic(out / "learning_curve.csv", "\n".join(rows) + "\n")
    payload = {**asdict(result), "targets": result.targets,
               "means": [{"arm": p.arm, "reports": p.reports, "rc_f1_mean": p.mean,
                          "rc_f1_sd": p.sd} for p in result.points]}
    write_text_atomic(out / "learning_curve.json",
                      json.dumps(payload, ensure_ascii=False, indent=1) + "\n")
    plot_seeds(result, out / "learning_curve.png")
    return markdown
