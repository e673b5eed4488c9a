"""What a run shows in the Prefect UI: the run summary, the evaluation tables, the training curve.

Pure formatting (`*_rows`, `*_markdown`) is separate from publishing (`publish_*`), so the tables
are tested without a Prefect server. Artifact keys are lowercase with dashes, as Prefect requires;
a keyed artifact gets a history across nights in the UI.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from extraction.evaluate import RECORD_KEY, EvaluationReport, Prf, RecordScores, Scores
from ingest.atomic import atomic_path
from pipeline.summary import RunSummary

SUMMARY_COLUMNS = ("inputs", "processed", "extracted", "skipped", "quarantined", "failed",
                   "unmapped")


def summary_row(summary: RunSummary) -> dict[str, object]:
    """The run summary as one table row (reports in, ok, quarantined, failed)."""
    return {"run_id": summary.run_id, **{k: getattr(summary, k) for k in SUMMARY_COLUMNS}}


def unmapped_rows(summary: RunSummary) -> list[dict[str, object]]:
    """One row per unmapped coronary spelling (type, text, mentions), most frequent first."""
    return [{"type": kind, "text": text, "count": n}
            for kind, text, n in summary.unmapped_spellings]


def publish_run_summary(summary: RunSummary) -> None:
    create_table_artifact(
        table=[summary_row(summary)],
        key="angiokg-run-summary",
        description="Reports in, processed (extracted now + already done), quarantined, failed. "
        "processed + quarantined + failed == inputs. unmapped: vessel and location spellings "
        "not in ingest/data/coronary-synonyms.tsv (listed in angiokg-unmapped-spellings).",
    )
    create_table_artifact(
        table=unmapped_rows(summary) or [{"type": "", "text": "(none)", "count": 0}],
        key="angiokg-unmapped-spellings",
        description="Spellings the coronary synonym table lacks: their records have no artery "
        "or segments. Add each to ingest/data/coronary-synonyms.tsv.",
    )


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _prf_cells(prf: Prf) -> list[str]:
    return [_fmt(v) for v in (prf.precision, prf.recall, prf.f1, prf.tp + prf.fn)]


def evaluation_markdown(report: EvaluationReport) -> str:
    """Markdown tables of an evaluation: one table per score of the report (ner, rc_gold,
    rc_predicted, and any score a later field adds), the micro scores first, then one row per
    type (support: the gold items); the report's plain numbers as facts."""
    lines: list[str] = ["# Evaluation", ""]
    facts = []
    for item in fields(report):
        value = getattr(report, item.name)
        if isinstance(value, Scores):
            lines += [f"## {item.name}", "", "| type | precision | recall | f1 | support |",
                      "|---|---|---|---|---|",
                      "| **all (micro)** | " + " | ".join(_prf_cells(value.overall)) + " |"]
            lines += [f"| {name} | " + " | ".join(_prf_cells(prf)) + " |"
                      for name, prf in sorted(value.per_type)]
            lines.append("")
        elif isinstance(value, RecordScores):
            lines += [f"## {item.name} (matched on {', '.join(RECORD_KEY)})", "",
                      "| | precision | recall | f1 | support |", "|---|---|---|---|---|",
                      "| **records** | " + " | ".join(_prf_cells(value.overall)) + " |", "",
                      f"Per-field accuracy on {value.aligned} aligned pairs: "
                      + ", ".join(f"{name} {_fmt(acc)}" for name, acc in value.field_accuracy),
                      ""]
        elif isinstance(value, int | float | str):
            facts.append(f"- **{item.name}**: {_fmt(value)}")
    return "\n".join(lines + facts) + "\n"


def publish_evaluation(report: EvaluationReport, model_dir: Path) -> None:
    create_markdown_artifact(
        markdown=f"Model: `{model_dir}`\n\n" + evaluation_markdown(report),
        key="angiokg-evaluation",
        description="NER, relation and record P/R/F1 on the test split, overall and per type.",
    )


def training_curve_markdown(png: Path) -> str:
    """The PNG inlined as a data URI, so the UI shows it with no file server; the path too."""
    encoded = base64.b64encode(png.read_bytes()).decode("ascii")
    return f"![training curve](data:image/png;base64,{encoded})\n\nFile: `{png}`\n"


def publish_training_curve(png: Path) -> None:
    create_markdown_artifact(
        markdown=training_curve_markdown(png),
        key="angiokg-training-curve",
        description="Training loss (and dev F1 where recorded) per epoch.",
    )


_NOT_PLOTTED = ("lr", "seconds")


def training_history(log_lines: list[str]) -> list[dict[str, float]]:
    """Per-epoch rows from a `train_log.jsonl`: nested scores flattened (`dev.ner_f1` ->
    `dev_ner_f1`), the learning rate and timings left out, non-epoch lines skipped."""
    rows = []
    for line in log_lines:
        if not line.strip():
            continue
        entry = json.loads(line)
        if "epoch" not in entry:
            continue
        row: dict[str, float] = {}
        for name, value in entry.items():
            if isinstance(value, Mapping):
                row.update({f"{name}_{k}": v for k, v in value.items()
                            if isinstance(v, int | float)})
            elif name not in _NOT_PLOTTED and isinstance(value, int | float):
                row[name] = value
        rows.append(row)
    return rows


def plot_training_curve(history: list[Mapping[str, float]], png: Path) -> Path:
    """Plot each numeric series of `history` (one mapping per epoch) against the epoch number.

    Losses go on the left axis and scores (names containing f1, precision, recall) on the right,
    because they differ by orders of magnitude.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display on a worker
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[float, float]]] = {}
    for number, row in enumerate(history, start=1):
        x = float(row.get("epoch", number))
        for name, value in row.items():
            if name != "epoch" and isinstance(value, int | float):
                series.setdefault(name, []).append((x, float(value)))
    fig, loss_ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    score_ax = loss_ax.twinx()
    for name, points in sorted(series.items()):
        is_score = any(k in name for k in ("f1", "precision", "recall"))
        ax = score_ax if is_score else loss_ax
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name,
                linestyle="--" if is_score else "-")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    score_ax.set_ylabel("score")
    handles = loss_ax.get_legend_handles_labels()
    score_handles = score_ax.get_legend_handles_labels()
    if handles[0] or score_handles[0]:
        loss_ax.legend(handles[0] + score_handles[0], handles[1] + score_handles[1], fontsize=8)
    loss_ax.set_title("training curve")
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return png
