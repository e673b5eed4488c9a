"""What a finished night leaves behind, said in words: where each output is, the run's counts,
the model's test scores, and one analyst query answered from the graph.

The text is what `angiokg run-sample` and `angiokg nightly` print last, so a new user knows
where to look next without reading the code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from export import graph_model
from export.export_cli import format_table
from export.parquet_sink import DATASETS
from extraction.evaluate import EvaluationReport
from flows.state import RunLayout
from pipeline.sinks import summary_path
from pipeline.summary import RunSummary

if TYPE_CHECKING:
    from flows.nightly_flow import NightlyResult

_LABELS = {"ner": "NER", "rc_gold": "RC (gold entities)",
           "rc_predicted": "RC (predicted entities)"}


def test_scores_line(model_dir: Path) -> str:
    """F1 on the model's test split, as `metrics.json` in the model directory records it."""
    metrics_file = model_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.exists() else {}
    if not isinstance(metrics.get("test"), dict):
        return "test scores: none recorded"
    test = EvaluationReport.from_dict(metrics["test"])
    scores = [f"{label} F1 {100 * test.task(task).f1:.2f}" for task, label in _LABELS.items()]
    if "records" in metrics["test"]:  # models trained before record scores existed have none
        scores.append(f"records F1 {100 * test.records.f1:.2f}")
    return "test scores: " + ", ".join(scores)


def model_version_of(model_dir: Path) -> str | None:
    """The version string the model directory records (what the Parquet rows carry)."""
    version = model_dir / "model_version"
    return version.read_text(encoding="utf-8").strip() if version.is_file() else None


def query_answer(graph_path: Path, query_name: str, max_rows: int) -> str:
    """The named analyst query run on the embedded graph, as a text table."""
    from export.ladybug_store import LadybugStore

    query = graph_model.QUERIES[query_name]
    params = graph_model.QUERY_DEFAULTS.get(query_name, {})
    with LadybugStore(graph_path, read_only=True) as store:
        result = store.query(query, params)
    shown = result.rows[:max_rows]
    more = len(result.rows) - len(shown)
    table = format_table(result.columns, shown)
    return table + (f"\n... and {more} more rows" if more > 0 else "")


def unmapped_summary(summary: RunSummary) -> str:
    """The run's unmapped coronary spellings, for the operator who should add them."""
    if not summary.unmapped:
        return "spellings   every vessel and location spelling is in the coronary synonym table"
    shown = ", ".join(f"{text} ({kind}, {n}x)" for kind, text, n in summary.unmapped_spellings[:10])
    return (f"spellings   {summary.unmapped} not in the coronary synonym table, so their records "
            f"have no artery/segments: {shown}; add them to ingest/data/coronary-synonyms.tsv")


def describe_outputs(out: Path, result: NightlyResult, query_name: str, max_rows: int) -> str:
    layout = RunLayout(out)
    summary = result.summary
    lines = ["", f"Run folder: {layout.root.resolve()}"]
    if summary is None:
        lines.append("  reports     none extracted tonight (no model)")
    else:
        lines.append(
            f"  reports in {summary.inputs}: {summary.processed} processed "
            f"({summary.extracted} extracted now, {summary.skipped} already done), "
            f"{summary.quarantined} quarantined, {summary.failed} failed")
        lines.append(f"  {unmapped_summary(summary)}")
        if summary.unknown:  # a vocabulary drift signal
            shown = ", ".join(f"{ch!r} x{n}" for ch, n in summary.unknown_characters[:10])
            lines.append(f"  vocabulary  {summary.unknown} characters read as [UNK]: {shown}")
    if result.model is None:
        lines.append(f"  model       none ({result.training.where})")
    else:
        lines += [
            f"  model       {result.model.model_dir} "
            f"({'trained tonight' if result.retrained else 'reused'}: {result.retrain_reason})",
            f"              {test_scores_line(Path(result.model.model_dir))}"]
    lines += [
        f"  ingest      {layout.ingest} (split file, corpus stats)",
        f"  quarantine  {layout.quarantine} (annotated reports that failed validation)",
    ]
    lines += [f"  parquet     {layout.extract / name}" for name in DATASETS]
    if summary is not None and summary.published:
        lines.append(f"  run summary {summary_path(layout.extract, summary.run_id)}")
    else:
        lines.append("  run summary nothing new tonight: no run published")
    if result.memory is not None:
        lines.append(f"  memory      {result.memory.format()}")
    queue = result.queue
    if queue is not None and queue.folder is not None:
        lines.append(f"  queue       {queue.folder} ({queue.reports} of tonight's "
                     f"{queue.candidates} new reports to annotate next: open it in brat)")
    if result.export is None:
        lines.append("  graph       not loaded tonight (see the failure below)")
    elif result.export.graph_path is not None:
        graph_path = result.export.graph_path
        lines += [
            f"  graph       {graph_path} (LadybugDB; query it with "
            f"`angiokg cypher --db {graph_path} \"MATCH ...\"`)",
            "",
            f"Analyst query {query_name!r}:",
            graph_model.QUERIES[query_name],
            query_answer(graph_path, query_name, max_rows),
        ]
    else:
        lines.append(f"  graph       {result.export.store}")
    return "\n".join(lines)
