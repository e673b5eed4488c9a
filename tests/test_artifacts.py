"""What a run shows in the Prefect UI: the tables and the plot, then the artifacts themselves as
a real Prefect API stores them."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import pytest
from prefect import flow

from extraction.evaluate import EvaluationReport
from flows import artifacts
from pipeline.summary import RunSummary

# As metrics.json holds it (EvaluationReport.to_dict); rc_predicted left out, as a report
# written before a score existed would be.
EVALUATION = EvaluationReport.from_dict({
    "documents": 27,
    "ner": {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "tp": 4, "fp": 0, "fn": 4,
            "per_type": {"Degree": {"precision": 1.0, "recall": 0.25, "f1": 0.4, "tp": 1,
                                    "fp": 0, "fn": 3}}},
    "rc_gold": {"precision": 0.9, "recall": 0.9, "f1": 0.9, "tp": 9, "fp": 1, "fn": 1},
    "records": {"tp": 3, "fp": 1, "fn": 0, "aligned": 4,
                "field_accuracy": {"artery": 1.0, "segments": 0.75}},
    "a_score_from_the_future": {"tp": 1},
})

LOG_LINES = [
    json.dumps({"epoch": 1, "loss": 4.0, "lr": 1e-4, "seconds": 3.0,
                "dev": {"ner_f1": 0.5, "rc_predicted_f1": 0.25}}),
    "",
    json.dumps({"note": "not an epoch"}),
    json.dumps({"epoch": 2, "loss": 1.0, "lr": 5e-5, "seconds": 6.0,
                "dev": {"ner_f1": 0.75, "rc_predicted_f1": 0.5}}),
]


def test_summary_row_has_every_count_and_zero_for_missing_ones():
    row = artifacts.summary_row(RunSummary.from_dict(
        {"run_id": "r1", "model_version": "m", "archive": "a", "inputs": 8, "skipped": 6,
         "quarantined": 2}))
    assert row == {"run_id": "r1", "inputs": 8, "processed": 6, "extracted": 0, "skipped": 6,
                   "quarantined": 2, "failed": 0, "unmapped": 0}


def test_evaluation_markdown_has_a_table_per_task_with_micro_and_per_type_rows():
    text = artifacts.evaluation_markdown(EVALUATION)
    assert "## records (matched on report_id, artery, segments" in text
    assert "| **records** | 0.750 | 1.000 | 0.857 | 3 |" in text
    assert "Per-field accuracy on 4 aligned pairs: artery 1.000, segments 0.750" in text
    assert "## ner" in text and "## rc_gold" in text
    assert "| **all (micro)** | 1.000 | 0.500 | 0.667 | 8 |" in text  # support = tp + fn
    assert "| Degree | 1.000 | 0.250 | 0.400 | 4 |" in text
    assert "| **all (micro)** | 0.900 | 0.900 | 0.900 | 10 |" in text
    assert "- **documents**: 27" in text


def test_training_history_flattens_scores_and_drops_rates_timings_and_non_epochs():
    history = artifacts.training_history(LOG_LINES)
    assert history == [
        {"epoch": 1, "loss": 4.0, "dev_ner_f1": 0.5, "dev_rc_predicted_f1": 0.25},
        {"epoch": 2, "loss": 1.0, "dev_ner_f1": 0.75, "dev_rc_predicted_f1": 0.5},
    ]


def test_training_curve_is_a_png_inlined_whole_in_the_markdown(tmp_path):
    png = artifacts.plot_training_curve(artifacts.training_history(LOG_LINES),
                                        tmp_path / "plots" / "curve.png")
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    markdown = artifacts.training_curve_markdown(png)
    encoded = markdown.split("data:image/png;base64,", 1)[1].split(")", 1)[0]
    assert base64.b64decode(encoded) == data
    assert str(png) in markdown


def test_the_curve_keeps_losses_and_scores_apart_marks_the_best_epoch_and_hides_no_line():
    import matplotlib.pyplot as plt

    history = artifacts.training_history(LOG_LINES)
    history.append({"epoch": 3, "loss": 0.5, "ner_loss": 0.2, "dev_ner_f1": 0.7,
                    "dev_rc_predicted_f1": 0.6})
    fig = artifacts.draw_training_curve(history, best_epoch=2)
    try:
        fig.canvas.draw()
        loss_ax, score_ax = fig.axes
        colour = {line.get_label(): line.get_color() for ax in fig.axes for line in ax.lines}
        losses = {colour["loss"], colour["ner_loss"]}
        scores = {colour["dev_ner_f1"], colour["dev_rc_predicted_f1"]}
        assert len(losses) == 2 and len(scores) == 2 and not losses & scores
        (best,) = [line for line in loss_ax.lines if line.get_label().startswith("best epoch")]
        assert set(best.get_xdata()) == {2}
        (legend,) = fig.legends
        assert [t.get_text() for t in legend.get_texts()] == [
            "loss", "ner_loss", "best epoch (2): weights kept", "dev_ner_f1",
            "dev_rc_predicted_f1"]
        box = legend.get_window_extent()
        for ax in fig.axes:  # beside the plot, over none of it
            assert not box.overlaps(ax.get_window_extent())
    finally:
        plt.close(fig)


def test_evaluation_caveat_says_when_the_scores_are_not_to_be_trusted():
    assert artifacts.evaluation_caveat("test", {"train": 240, "dev": 30, "test": 30}, 20) is None
    small = artifacts.evaluation_caveat("test", {"train": 32, "dev": 4, "test": 1}, 20)
    assert "Small test split: 1 report(s)" in small and "fewer than 20" in small
    none = artifacts.evaluation_caveat("dev", {"train": 11, "dev": 1, "test": 0}, 20)
    assert "No test split" in none and "dev scores" in none


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_publishes_summary_evaluation_and_curve_as_keyed_artifacts(tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    png = artifacts.plot_training_curve(artifacts.training_history(LOG_LINES),
                                        tmp_path / "curve.png")

    @flow
    def publish_all() -> None:
        artifacts.publish_run_summary(RunSummary(
            "r1", "m", "a", inputs=3, extracted=2, quarantined=1, unmapped=2,
            unmapped_spellings=(("BodyPart", "大隐静脉桥", 3), ("Location", "第二段", 1))))
        artifacts.publish_evaluation(EVALUATION, Path("models/m1"), "test",
                                     "**Small test split: 1 report(s)**")
        artifacts.publish_training_curve(png)

    state = publish_all(return_state=True)
    assert state.is_completed()
    with get_client(sync_client=True) as client:
        stored = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    by_key = {a.key: a for a in stored}
    assert set(by_key) == {"angiokg-run-summary", "angiokg-unmapped-spellings",
                           "angiokg-evaluation", "angiokg-training-curve"}
    summary = by_key["angiokg-run-summary"]
    table = json.loads(summary.data) if isinstance(summary.data, str) else summary.data
    assert summary.type == "table" and table[0]["quarantined"] == 1 and table[0]["inputs"] == 3
    assert table[0]["unmapped"] == 2
    unmapped = by_key["angiokg-unmapped-spellings"]
    rows = json.loads(unmapped.data) if isinstance(unmapped.data, str) else unmapped.data
    assert rows == [{"type": "BodyPart", "text": "大隐静脉桥", "count": 3},
                    {"type": "Location", "text": "第二段", "count": 1}]
    assert "models/m1" in by_key["angiokg-evaluation"].data
    assert "| Degree |" in by_key["angiokg-evaluation"].data
    assert "scores on the test split" in by_key["angiokg-evaluation"].data
    assert "> **Small test split: 1 report(s)**" in by_key["angiokg-evaluation"].data
    assert "data:image/png;base64," in by_key["angiokg-training-curve"].data


def test_the_night_summary_says_what_the_night_did_and_what_to_do():
    summary = RunSummary("run-1", "m-1", "archive", inputs=9, extracted=2, skipped=7,
                         published=True, unmapped=1,
                         unmapped_spellings=(("BodyPart", "大隐静脉桥", 3),))
    night = artifacts.NightSummary(
        night="nightly-2026-12-01", problems=("training did not run: no worker is online",),
        retrained=True, retrain_reason="retrain policy is 'always'",
        trained_where="not trained: no worker is online in work pool angiokg-gpu",
        model_dir="/data/runs/prod/models/m", model_version="m-1", model_profile="default",
        model_trained_at="2026-11-30T18:00:00+00:00", scores="test scores: NER F1 97.00",
        corpus=(300, 299, 1), splits={"train": 239, "dev": 30, "test": 30}, extraction=summary,
        graph="neo4j:bolt://neo4j:7687/neo4j: loaded 1 new run(s)",
        links=(artifacts.RunLink("id-1", "extract-2026-12-01", "extraction (run summary)"),),
        queue={"reports to annotate": 20})
    text = artifacts.night_summary_markdown(night, "http://ui:4200")
    assert text.startswith("# nightly-2026-12-01: **Failed**")
    assert "> training did not run: no worker is online" in text
    assert "| 9 | 9 | 2 | 7 | 0 | 0 |" in text and "Run `run-1`, model `m-1`." in text
    assert "| BodyPart | 大隐静脉桥 | 3 |" in text and "coronary-synonyms.tsv" in text
    assert "- reports to annotate: 20" in text
    assert "[extract-2026-12-01](http://ui:4200/runs/flow-run/id-1)" in text
    quiet = artifacts.night_summary_markdown(
        replace(night, problems=(), extraction=replace(summary, extracted=0, skipped=9,
                                                       published=False, unmapped=0,
                                                       unmapped_spellings=()), queue=None))
    assert ": completed" in quiet and "**Nothing new**" in quiet
    assert "extract-2026-12-01 (`id-1`)" in quiet  # no UI address: name and id
