"""What a run shows in the Prefect UI: the run summary, the evaluation tables, the training curve.

Pure formatting (`*_rows`, `*_markdown`) is separate from publishing (`publish_*`), so the tables
are tested without a Prefect server. Artifact keys are lowercase with dashes, as Prefect requires;
a keyed artifact gets a history across nights in the UI.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class RunLink:
    """A flow run the night's summary points to (its own artifacts are on it)."""

    id: str
    name: str
    title: str = ""

    @classmethod
    def of(cls, state: Any, title: str = "") -> RunLink:
        """The run a subflow's final state belongs to."""
        run_id = str(state.state_details.flow_run_id)
        return cls(run_id, _flow_run_name(run_id), title)

    def titled(self, title: str) -> RunLink:
        return RunLink(self.id, self.name, title)

    def markdown(self, ui_url: str | None) -> str:
        if ui_url:
            return f"[{self.name}]({ui_url.rstrip('/')}/runs/flow-run/{self.id})"
        return f"{self.name} (`{self.id}`)"


def _flow_run_name(run_id: str) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id).name


@dataclass(frozen=True)
class NightSummary:
    """What one night did, for the summary on the nightly run's Artifacts tab."""

    night: str
    problems: tuple[str, ...]
    retrained: bool
    retrain_reason: str
    trained_where: str
    model_dir: str | None
    model_version: str | None
    model_profile: str | None
    model_trained_at: str | None
    scores: str
    corpus: tuple[int, int, int]  # annotated reports, valid, quarantined
    splits: dict[str, int]
    extraction: RunSummary | None  # None when nothing ran
    graph: str
    links: tuple[RunLink, ...] = ()
    # Slots for what other steps add: the annotation queue (reports to annotate next).
    queue: Mapping[str, object] | None = None
    memory: str | None = None  # peak RSS per step (pipeline.peak_memory)


REPORT_COLUMNS = (("inputs", "reports in"), ("processed", "processed"),
                  ("extracted", "extracted now"), ("skipped", "already done"),
                  ("quarantined", "quarantined"), ("failed", "failed"))


def night_summary_markdown(night: NightSummary, ui_url: str | None = None) -> str:
    status = "**Failed**" if night.problems else "completed"
    lines = [f"# {night.night}: {status}", ""]
    for problem in night.problems:
        lines.append(f"> {problem}")
    if night.problems:
        lines.append("")
    lines += ["## Training", "",
              f"- retrain: **{'yes' if night.retrained else 'no'}**, {night.retrain_reason}",
              f"- trained: {night.trained_where}", "", "## Model", ""]
    if night.model_dir:
        lines += [f"- `{night.model_version or night.model_dir}` (profile {night.model_profile}, "
                  f"trained {night.model_trained_at})", f"- directory: `{night.model_dir}`",
                  f"- {night.scores}"]
    else:
        lines.append("- none yet")
    reports, valid, quarantined = night.corpus
    lines += ["", "## Reports", "",
              f"Annotated corpus: {reports} reports, {valid} valid, {quarantined} quarantined; "
              f"split {', '.join(f'{k} {v}' for k, v in night.splits.items())}.", ""]
    summary = night.extraction
    if summary is None:
        lines.append("Archive: nothing extracted tonight (no model).")
    else:
        lines += ["| " + " | ".join(label for _, label in REPORT_COLUMNS) + " |",
                  "|" + "---|" * len(REPORT_COLUMNS),
                  "| " + " | ".join(str(getattr(summary, k)) for k, _ in REPORT_COLUMNS) + " |",
                  ""]
        if summary.nothing_new:
            lines.append("**Nothing new**: every report in the archive was done before with "
                         "this model; no run was published.")
        else:
            lines.append(f"Run `{summary.run_id}`, model `{summary.model_version}`.")
    lines += ["", "## Graph", "", f"- {night.graph}", "", "## Unmapped spellings", ""]
    if summary is not None and summary.unmapped:
        lines += [f"{summary.unmapped} spelling(s) not in the coronary synonym table: their "
                  "records have no artery or segments until each is added to "
                  "ingest/data/coronary-synonyms.tsv.", "", "| type | text | mentions |",
                  "|---|---|---|"]
        lines += [f"| {kind} | {text} | {n} |" for kind, text, n in summary.unmapped_spellings]
    else:
        lines.append("- none")
    lines += ["", "## Annotation queue", ""]
    if night.queue:
        lines += [f"- {key}: {value}" for key, value in night.queue.items()]
    else:
        lines.append("- none tonight")
    if night.memory:
        lines += ["", "## Memory", "", f"- peak RSS: {night.memory}"]
    if night.links:
        lines += ["", "## Runs of this night", ""]
        lines += [f"- {link.title or link.name}: {link.markdown(ui_url)}" for link in night.links]
    return "\n".join(lines) + "\n"


def publish_night_summary(night: NightSummary) -> None:
    from prefect.settings import PREFECT_UI_URL

    create_markdown_artifact(
        markdown=night_summary_markdown(night, PREFECT_UI_URL.value()),
        key="angiokg-night",
        description="The night: retrain decision and why, the model and its scores, reports "
        "processed / quarantined / failed, the graph load, links to the steps' runs.",
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


def evaluation_caveat(side: str, split: Mapping[str, int], small: int) -> str | None:
    """What a reader must know before trusting the scores: which split they are on, and
    whether it is big enough to mean anything."""
    test = split.get("test", 0)
    if side != "test":
        return (f"**No test split** ({test} reports): these are {side} scores, on the split "
                "that chose the best epoch, so they flatter the model. Annotate more reports.")
    if test < small:
        return (f"**Small test split: {test} report(s)** (fewer than {small}). One report "
                "moves these scores by whole points; annotate more reports before trusting "
                "them.")
    return None


def publish_evaluation(report: EvaluationReport, model_dir: Path, side: str = "test",
                       caveat: str | None = None) -> None:
    warning = f"> {caveat}\n\n" if caveat else ""
    create_markdown_artifact(
        markdown=f"Model: `{model_dir}`, scores on the {side} split\n\n{warning}"
        + evaluation_markdown(report),
        key="angiokg-evaluation",
        description=f"NER, relation and record P/R/F1 on the {side} split, overall and per "
        "type.",
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


# Two colour families that never meet: a loss and a score are told apart by colour alone,
# before the line style (solid / dashed) and the axis (left / right) are read.
LOSS_COLOURS = ("#08306b", "#2171b5", "#6baed6", "#4d4d4d", "#969696")
SCORE_COLOURS = ("#d94801", "#238b45", "#6a51a3", "#e7298a", "#8c6d31", "#cb181d")
BEST_EPOCH_COLOUR = "#000000"


def is_score(name: str) -> bool:
    return any(k in name for k in ("f1", "precision", "recall"))


def draw_training_curve(history: list[Mapping[str, float]], best_epoch: int | None = None):
    """The figure of `history` (one mapping per epoch): losses on the left axis, scores
    (names with f1, precision, recall) on the right, as they differ by orders of magnitude;
    the legend outside the plot, so it hides no line; the kept epoch marked."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a worker
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    series: dict[str, list[tuple[float, float]]] = {}
    for number, row in enumerate(history, start=1):
        x = float(row.get("epoch", number))
        for name, value in row.items():
            if name != "epoch" and isinstance(value, int | float):
                series.setdefault(name, []).append((x, float(value)))
    fig, loss_ax = plt.subplots(figsize=(8, 3.6), dpi=100, layout="constrained")
    score_ax = loss_ax.twinx()
    losses = sorted(n for n in series if not is_score(n))
    scores = sorted(n for n in series if is_score(n))
    for names, ax, colours, style, marker in ((losses, loss_ax, LOSS_COLOURS, "-", "o"),
                                              (scores, score_ax, SCORE_COLOURS, "--", "s")):
        for i, name in enumerate(names):
            points = series[name]
            ax.plot([p[0] for p in points], [p[1] for p in points], color=colours[i % len(colours)],
                    linestyle=style, marker=marker, markersize=4, label=name)
    if best_epoch is not None:
        loss_ax.axvline(best_epoch, color=BEST_EPOCH_COLOUR, linestyle=":", linewidth=1.2,
                        label=f"best epoch ({best_epoch}): weights kept")
    loss_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    score_ax.set_ylabel("dev score")
    if scores:
        score_ax.set_ylim(0, 1.02)
    handles, labels = loss_ax.get_legend_handles_labels()
    score_handles, score_labels = score_ax.get_legend_handles_labels()
    if handles or score_handles:
        fig.legend(handles + score_handles, labels + score_labels, loc="outside right upper",
                   fontsize=8)
    loss_ax.set_title("training curve")
    return fig


def plot_training_curve(history: list[Mapping[str, float]], png: Path,
                        best_epoch: int | None = None) -> Path:
    """`draw_training_curve` saved as a PNG (atomically: a reader never sees half a file)."""
    import matplotlib.pyplot as plt

    fig = draw_training_curve(history, best_epoch)
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return png
