"""`angiokg experiment`: the paper's studies (Tables IV-VI) on any corpus, read top to bottom.

1. Load the corpus and split it as `angiokg train` does (8:1:1 by report id, `split_seed`).
2. Build the encoder ONCE (vocabulary + MLM pre-training, or the `--bert` checkpoint) and save it
   to OUT/encoder: every cell fine-tunes from that same checkpoint, so the grid costs
   fine-tuning only and the cells differ in nothing but what the grid varies.
3. The grid (Table V): K x rc_mask, each a joint model in OUT/models/<cell>. A K larger than the
   encoder's layer count cannot run; its cells are listed as "n/a (K > N layers)".
4. The chosen configuration: the cell with the best dev score, the mean of NER F1 and RC F1 on
   predicted entities (TrainConfig.early_stop_metric "mean"); its test scores make Table IV.
5. Separate training (Table VI): an NER-only and an RC-only model of the chosen configuration;
   NER is scored on the first, RC with gold entities on the second, and RC with predicted
   entities on the pipeline (the NER-only model's entities classified by the RC-only model).

Scores are fractions in the CSV and JSON files and percentages (as in the paper) in Markdown.
The grid, the winner and the tables are pure functions of their inputs; only `run_*` train.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from extraction.bert_factory import save_bert
from extraction.choices import RC_MASKS
from extraction.evaluate import EvaluationReport, evaluate_extractor
from extraction.predict import Extractor
from extraction.train import prepare_encoder, read_corpus, split_documents, train_documents
from extraction.train_config import TrainConfig
from ingest.atomic import atomic_directory, write_text_atomic
from ingest.document import Document
from ingest.schema import Schema, load_schema

logger = logging.getLogger(__name__)

TASKS = ("ner", "rc_gold", "rc_predicted")
TASK_LABELS = {"ner": "NER", "rc_gold": "RC (gold entities)",
               "rc_predicted": "RC (predicted entities)"}
# Table IV of the paper (12-layer BERT on its own corpus): precision, recall, F1.
PAPER_TABLE_IV = {"ner": (0.9669, 0.9709, 0.9689), "rc_gold": (0.9606, 0.9683, 0.9644),
                  "rc_predicted": (0.9541, 0.8254, 0.8851)}
# TrainConfig fields that describe the encoder; a --bert checkpoint's config.json overrides them
# so each cell's saved train_config.json says which encoder it really fine-tuned.
_SHAPE_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                 "intermediate_size", "max_position_embeddings")


# --- the grid (pure) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One configuration of Table V; `config` is None when it cannot run (`skipped` says why)."""

    name: str
    k: int
    rc_mask: str
    config: TrainConfig | None
    skipped: str = ""


def parse_ks(text: str) -> tuple[int, ...]:
    """"2,4,6" -> (2, 4, 6); a clear error for anything that is not a list of K >= 0."""
    try:
        ks = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"--k: expected comma-separated whole numbers, got {text!r}") from None
    if not ks or any(k < 0 for k in ks):
        raise ValueError(f"--k: expected one or more K >= 0, got {text!r}")
    return ks


def parse_masks(text: str) -> tuple[str, ...]:
    masks = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [m for m in masks if m not in RC_MASKS]
    if not masks or unknown:
        raise ValueError(f"--masks: expected some of {', '.join(RC_MASKS)}, got {text!r}")
    return masks


def grid(base: TrainConfig, ks: Iterable[int], masks: Iterable[str]) -> tuple[Cell, ...]:
    """K-major cells of joint models; a K above base.num_hidden_layers is an n/a cell."""
    layers = base.num_hidden_layers
    cells = []
    for k in dict.fromkeys(ks):
        for mask in dict.fromkeys(masks):
            if mask not in RC_MASKS:
                raise ValueError(f"rc_mask must be one of {RC_MASKS}, got {mask!r}")
            name = f"k{k}-{mask}"
            if not 0 <= k <= layers:
                cells.append(Cell(name, k, mask, None, f"n/a (K > {layers} layers)"))
            else:
                cells.append(Cell(name, k, mask, replace(base, k=k, rc_mask=mask, mode="joint")))
    return tuple(cells)


def checkpoint_shape(bert_dir: str | Path) -> dict[str, int]:
    """The encoder fields of TrainConfig as a checkpoint's config.json gives them."""
    path = Path(bert_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; --bert takes a directory written by "
                                "save_pretrained (e.g. bert-base-chinese or `angiokg pretrain`)")
    values = json.loads(path.read_text(encoding="utf-8"))
    return {name: int(values[name]) for name in _SHAPE_FIELDS if name in values}


def with_shape(base: TrainConfig, shape: dict[str, int]) -> TrainConfig:
    """`base` describing another encoder; its K is clipped so the config stays valid (the grid
    sets every cell's own K anyway)."""
    layers = shape.get("num_hidden_layers", base.num_hidden_layers)
    return replace(base, **shape, k=min(base.k, layers))


def separate_configs(chosen: TrainConfig) -> tuple[TrainConfig, TrainConfig]:
    """(NER-only, RC-only) configs of the chosen configuration.

    Each stops early on the task it trains (`extraction.train.dev_score`): NER F1 for the
    NER-only model, RC F1 with gold entities for the RC-only one.
    """
    return (replace(chosen, mode="ner_only", early_stop_metric="ner"),
            replace(chosen, mode="rc_only", early_stop_metric="rc"))


# --- scores and the winner (pure) -----------------------------------------------------------


@dataclass(frozen=True)
class TaskScores:
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class SplitScores:
    """The paper's three scores of one model on one split."""

    ner: TaskScores
    rc_gold: TaskScores
    rc_predicted: TaskScores

    @classmethod
    def of(cls, report: EvaluationReport) -> SplitScores:
        return cls(*(TaskScores(s.precision, s.recall, s.f1) for s in map(report.task, TASKS)))

    def task(self, name: str) -> TaskScores:
        return getattr(self, name)


@dataclass(frozen=True)
class CellResult:
    cell: Cell
    dev: SplitScores | None  # None: the cell did not run
    test: SplitScores | None
    model_dir: Path | None
    best_epoch: int | None
    seconds: float


@dataclass(frozen=True)
class SeparateResult:
    config: TrainConfig  # the NER-only model's; the RC-only model differs in mode only
    dev: SplitScores
    test: SplitScores
    ner_model_dir: Path
    rc_model_dir: Path
    seconds: float


def selection_score(scores: SplitScores) -> float:
    """The dev score the grid is ranked by: TrainConfig.early_stop_metric "mean"."""
    return (scores.ner.f1 + scores.rc_predicted.f1) / 2


def pick_winner(results: Sequence[CellResult]) -> CellResult:
    """The cell with the best dev score; on a tie the first in grid order (smaller K first)."""
    ran = [r for r in results if r.dev is not None]
    if not ran:
        raise ValueError("no cell of the grid was scored on dev; nothing to choose from")
    return max(ran, key=lambda r: selection_score(r.dev))  # type: ignore[arg-type]


# --- pipeline of separately trained models ------------------------------------------------


class PipelineExtractor:
    """NER by one extractor, relations between its entities by another: separate training.

    Has the two methods `evaluate_extractor` asks for, so the pipeline is scored exactly as a
    joint model is: NER = the NER model's entities, RC with gold entities = the RC model on the
    gold entities, RC with predicted entities = the RC model on the NER model's entities.
    """

    def __init__(self, ner: Extractor, rc: Extractor) -> None:
        if ner.schema.sha256 != rc.schema.sha256:
            raise ValueError("the NER and RC models were trained for different schemas")
        self.ner, self.rc = ner, rc
        self.schema = rc.schema
        self.max_chars = rc.max_chars
        self.model_version = f"{ner.model_version}+{rc.model_version}"

    def extract(self, documents: Iterable[Document], batch_size: int = 64) -> Iterator[Document]:
        for document in self.ner.extract(documents, batch_size=batch_size):
            # The NER model's own relations come from a head it never trained: replaced here.
            yield self.rc.predict_relations_gold(document)

    def predict_relations_gold(self, document: Document) -> Document:
        return self.rc.predict_relations_gold(document)


# --- running (trains models) ------------------------------------------------------------------


@dataclass(frozen=True)
class ExperimentResult:
    corpus: str
    split: dict[str, int]  # reports per side
    base: TrainConfig  # the profile/config file, with the encoder's real shape
    encoder_dir: Path
    encoder_source: str  # how the shared encoder was made, for the reader of the tables
    encoder_seconds: float  # vocabulary + pre-training, paid once
    cells: tuple[CellResult, ...]
    winner: CellResult
    separate: SeparateResult | None
    seconds: float


def build_shared_encoder(
    train_texts: Sequence[str], config: TrainConfig, out_dir: Path
) -> tuple[Path, float]:
    """Vocabulary + MLM pre-training (or a seeded random init when the profile pre-trains
    nothing) saved as one checkpoint every cell loads: (directory, seconds)."""
    began = time.monotonic()
    target = out_dir / "encoder"
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".encoder-work-") as work:
        bert, tokenizer, _ = prepare_encoder(config, train_texts, Path(work), None)
        with atomic_directory(target) as building:
            save_bert(bert, building)
            tokenizer.save(building)
    return target, time.monotonic() - began


def run_cell(documents: Sequence[Document], schema: Schema, cell: Cell, models_dir: Path,
             bert_dir: Path) -> CellResult:
    if cell.config is None:
        return CellResult(cell, None, None, None, None, 0.0)
    result = train_documents(documents, schema, models_dir / cell.name, cell.config, bert_dir)
    if result.dev is None or result.test is None:
        raise ValueError(f"{cell.name}: the corpus gave no dev or no test report; the "
                         "experiment needs both (a corpus of at least a few dozen reports)")
    return CellResult(cell, SplitScores.of(result.dev), SplitScores.of(result.test),
                      result.model_dir,
                      result.metrics.get("best_epoch"), result.seconds)


def run_separate(documents: Sequence[Document], schema: Schema, chosen: TrainConfig,
                 models_dir: Path, bert_dir: Path) -> SeparateResult:
    began = time.monotonic()
    ner_config, rc_config = separate_configs(chosen)
    sides = split_documents(documents, chosen.split_seed)
    ner = train_documents(documents, schema, models_dir / "ner-only", ner_config, bert_dir)
    rc = train_documents(documents, schema, models_dir / "rc-only", rc_config, bert_dir)
    pipeline = PipelineExtractor(Extractor.load(ner.model_dir, chosen.device, schema),
                                 Extractor.load(rc.model_dir, chosen.device, schema))
    dev, test = (SplitScores.of(evaluate_extractor(pipeline, sides[s]))
                 for s in ("dev", "test"))
    return SeparateResult(ner_config, dev, test, ner.model_dir, rc.model_dir,
                          time.monotonic() - began)


def run_experiment(
    corpus_dir: str | Path,
    out_dir: str | Path,
    base: TrainConfig,
    ks: Sequence[int] = (2, 4, 6),
    masks: Sequence[str] = RC_MASKS,
    separate: bool = True,
    bert_dir: str | Path | None = None,
    schema: Schema | None = None,
) -> ExperimentResult:
    began = time.monotonic()
    schema = schema or load_schema()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if base.torch_threads:
        torch.set_num_threads(base.torch_threads)
    if bert_dir is not None:
        base = with_shape(base, checkpoint_shape(bert_dir))
    cells = grid(base, ks, masks)
    if all(c.config is None for c in cells):
        raise ValueError(f"every K of {list(ks)} exceeds the encoder's {base.num_hidden_layers} "
                         "layers: choose smaller ones with --k")
    documents = read_corpus(corpus_dir, schema)
    sides = split_documents(documents, base.split_seed)
    split = {side: len(docs) for side, docs in sides.items()}
    empty = [side for side, n in split.items() if n == 0]
    if empty:
        raise ValueError(f"{corpus_dir}: the {' and '.join(empty)} split is empty ({split}); "
                         "the grid needs dev reports to choose and test reports to report: "
                         "add reports or change split_seed")
    if bert_dir is None:
        encoder_dir, encoder_seconds = build_shared_encoder([d.text for d in sides["train"]],
                                                            base, out)
        how = "MLM pre-training" if base.pretrain_epochs > 0 else "a seeded random init"
        source = f"vocabulary + {how}, built once in {encoder_seconds:.0f}s"
        logger.info("encoder: %s: %s", source, encoder_dir)
    else:
        encoder_dir, encoder_seconds, source = Path(bert_dir), 0.0, "the --bert checkpoint"
    results = []
    for number, cell in enumerate(cells, 1):
        logger.info("cell %d/%d %s%s", number, len(cells), cell.name,
                    f": {cell.skipped}" if cell.skipped else "")
        results.append(run_cell(documents, schema, cell, out / "models", encoder_dir))
    winner = pick_winner(results)
    logger.info("chosen on dev: %s", winner.cell.name)
    separate_result = None
    if separate:
        assert winner.cell.config is not None
        separate_result = run_separate(documents, schema, winner.cell.config, out / "models",
                                       encoder_dir)
    return ExperimentResult(str(corpus_dir), split, base, encoder_dir, source, encoder_seconds,
                            tuple(results), winner, separate_result, time.monotonic() - began)


# --- tables (pure) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    values: tuple[object, ...]
    missing: str = "—"  # what Markdown shows for a None value (the CSV leaves it empty)


@dataclass(frozen=True)
class Table:
    key: str  # file stem: table_iv -> table_iv.csv
    title: str
    columns: tuple[str, ...]  # CSV header
    headers: tuple[str, ...]  # Markdown header, one per column; "" leaves the column out
    rows: tuple[Row, ...]
    note: str = ""


def _prf(scores: TaskScores | None) -> tuple[float | None, ...]:
    return (None, None, None) if scores is None else (scores.precision, scores.recall,
                                                      scores.f1)


def describe(cell: Cell) -> str:
    return f"K={cell.k}, {cell.rc_mask}"


def table_iv(winner: CellResult) -> Table:
    assert winner.test is not None
    rows = tuple(Row((task, TASK_LABELS[task], *_prf(winner.test.task(task)),
                      *PAPER_TABLE_IV[task])) for task in TASKS)
    return Table(
        "table_iv", f"Table IV: the chosen configuration ({describe(winner.cell)}) on test",
        ("task", "label", "precision", "recall", "f1",
         "paper_precision", "paper_recall", "paper_f1"),
        ("", "Task", "P", "R", "F1", "paper P", "paper R", "paper F1"),
        rows,
        "Paper: 12-layer BERT on the authors' corpus.",
    )


def table_v(results: Sequence[CellResult], winner: CellResult) -> Table:
    rows = []
    for r in results:
        def f1s(scores: SplitScores | None) -> tuple[float | None, ...]:
            return tuple(None if scores is None else scores.task(t).f1 for t in TASKS)

        score = None if r.dev is None else selection_score(r.dev)
        rows.append(Row((r.cell.name, r.cell.k, r.cell.rc_mask, r.cell.skipped or "ok",
                         r is winner, *f1s(r.dev), score, *f1s(r.test)),
                        missing=r.cell.skipped or "—"))
    return Table(
        "table_v", "Table V: K (task layers) x RC mask, F1",
        ("cell", "k", "rc_mask", "status", "chosen", "dev_ner_f1", "dev_rc_gold_f1",
         "dev_rc_predicted_f1", "dev_score", "test_ner_f1", "test_rc_gold_f1",
         "test_rc_predicted_f1"),
        ("", "K", "mask", "", "chosen", "dev NER", "dev RC gold", "dev RC pred", "dev score",
         "test NER", "test RC gold", "test RC pred"),
        tuple(rows),
        "dev score = mean of dev NER F1 and dev RC F1 on predicted entities; the chosen cell "
        "has the best one.",
    )


def table_vi(winner: CellResult, separate: SeparateResult | None) -> Table:
    assert winner.test is not None

    def prfs(s: SplitScores | None) -> tuple[float | None, ...]:
        return tuple(v for t in TASKS for v in _prf(None if s is None else s.task(t)))

    if separate is None:
        other = Row(("separate", "ner-only+rc-only", "not run (--no-separate)", *prfs(None)),
                    missing="not run (--no-separate)")
    else:
        other = Row(("separate", "ner-only+rc-only", "ok", *prfs(separate.test)))
    return Table(
        "table_vi", f"Table VI: joint vs separate training ({describe(winner.cell)}) on test",
        ("training", "models", "status",
         *(f"{t}_{m}" for t in TASKS for m in ("precision", "recall", "f1"))),
        ("Training", "Models", "",
         *(f"{TASK_LABELS[t]} {m}" for t in TASKS for m in ("P", "R", "F1"))),
        (Row(("joint", winner.cell.name, "ok", *prfs(winner.test))), other),
        "Separate: NER from the NER-only model, RC (gold entities) from the RC-only model, RC "
        "(predicted entities) from the pipeline NER-only -> RC-only. Each model stops early on "
        "the dev score of its own task (NER F1; RC F1 with gold entities).",
    )


def _markdown_value(value: object, missing: str) -> str:
    if value is None:
        return missing
    if isinstance(value, bool):
        return "**yes**" if value else ""
    if isinstance(value, float):
        return f"{100 * value:.2f}"
    return str(value)


def to_markdown(table: Table) -> str:
    """Markdown of a table; a "" header leaves its column (a CSV key) out."""
    if len(table.headers) != len(table.columns):
        raise ValueError(f"{table.key}: {len(table.headers)} headers for "
                         f"{len(table.columns)} columns")
    shown = [i for i, h in enumerate(table.headers) if h]
    lines = [f"### {table.title}", "",
             "| " + " | ".join(table.headers[i] for i in shown) + " |",
             "|" + "|".join("---" for _ in shown) + "|"]
    for row in table.rows:
        cells = [_markdown_value(row.values[i], row.missing) for i in shown]
        lines.append("| " + " | ".join(cells) + " |")
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines)


def to_csv(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow("" if v is None else v for v in row.values)
    return buffer.getvalue()


def tables(result: ExperimentResult) -> tuple[Table, Table, Table]:
    return (table_iv(result.winner), table_v(result.cells, result.winner),
            table_vi(result.winner, result.separate))


def render_markdown(result: ExperimentResult) -> str:
    winner = result.winner
    assert winner.dev is not None
    head = [
        f"## Experiment on {result.corpus}", "",
        f"- reports: train {result.split['train']}, dev {result.split['dev']}, "
        f"test {result.split['test']}; profile `{result.base.profile}`",
        f"- encoder: {result.base.num_hidden_layers} layers, {result.encoder_source} "
        f"({result.encoder_dir}); every model fine-tunes from it",
        f"- chosen on dev: **{winner.cell.name}** ({describe(winner.cell)}), dev score "
        f"{100 * selection_score(winner.dev):.2f} (mean of NER F1 and RC F1 on predicted "
        "entities)",
        f"- wall time {result.seconds:.0f}s; scores in %",
    ]
    return "\n\n".join(["\n".join(head), *(to_markdown(t) for t in tables(result))]) + "\n"


def _scores_json(s: SplitScores | None) -> dict | None:
    if s is None:
        return None
    return {t: {"precision": s.task(t).precision, "recall": s.task(t).recall, "f1": s.task(t).f1}
            for t in TASKS}


def results_json(result: ExperimentResult) -> dict:
    def cell(r: CellResult) -> dict:
        return {"cell": r.cell.name, "k": r.cell.k, "rc_mask": r.cell.rc_mask,
                "status": r.cell.skipped or "ok",
                "model_dir": None if r.model_dir is None else str(r.model_dir),
                "best_epoch": r.best_epoch, "seconds": r.seconds,
                "dev_score": None if r.dev is None else selection_score(r.dev),
                "dev": _scores_json(r.dev), "test": _scores_json(r.test)}

    s = result.separate
    return {
        "corpus": result.corpus, "split": result.split, "base_config": result.base.to_dict(),
        "encoder_dir": str(result.encoder_dir), "encoder_source": result.encoder_source,
        "encoder_seconds": result.encoder_seconds,
        "selection": "dev mean of NER F1 and RC F1 on predicted entities",
        "winner": result.winner.cell.name,
        "winner_config": (result.winner.cell.config.to_dict()
                          if result.winner.cell.config else None),
        "cells": [cell(r) for r in result.cells],
        "separate": None if s is None else {
            "ner_model_dir": str(s.ner_model_dir), "rc_model_dir": str(s.rc_model_dir),
            "seconds": s.seconds, "dev": _scores_json(s.dev), "test": _scores_json(s.test)},
        "seconds": result.seconds,
    }


def write_outputs(result: ExperimentResult, out_dir: str | Path) -> str:
    """OUT/tables.md, table_iv.csv, table_v.csv, table_vi.csv, results.json; returns the
    Markdown."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for table in tables(result):
        write_text_atomic(out / f"{table.key}.csv", to_csv(table))
    write_text_atomic(out / "results.json",
                      json.dumps(results_json(result), ensure_ascii=False, indent=1) + "\n")
    markdown = render_markdown(result)
    write_text_atomic(out / "tables.md", markdown)
    return markdown
