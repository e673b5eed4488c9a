"""The learning curve and active-learning simulation: its schedule and verdict (pure), and a run
on a tiny grid through `angiokg experiment --learning-curve`."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict

import pytest
import torch

from extraction.active_learning import (
    ArmSummary,
    RoundResult,
    SimulationResult,
    aggregate,
    load_result,
    parse_arms,
    reach,
    schedule,
)
from flows.cli import main as angiokg
from ingest.generator import generate_corpus

torch.set_num_threads(1)


def test_schedule_ends_at_the_budget():
    assert schedule(238, 24, 36) == (24, 60, 96, 132, 168, 204, 238)
    assert schedule(100, 10, 45, budget=60) == (10, 55, 60)
    assert schedule(10, 10, 5) == (10,)
    for start, step in ((0, 5), (5, 0), (20, 5)):
        with pytest.raises(ValueError, match="start"):
            schedule(10, start, step)


def test_random_is_always_an_arm_and_unknown_strategies_are_refused():
    assert parse_arms("expected-errors") == ("expected-errors", "random")
    assert parse_arms("random,entropy,random") == ("random", "entropy")
    with pytest.raises(ValueError, match="--strategies"):
        parse_arms("greedy")


def rounds(arm: str, f1s: list[float]) -> list[RoundResult]:
    return [RoundResult(arm, i, 10 * (i + 1), 100 * (i + 1), 1.0, f1, "m")
            for i, f1 in enumerate(f1s)]


def test_the_share_of_the_budget_is_that_of_the_first_round_reaching_the_target():
    assert reach(rounds("a", [0.5, 0.8, 0.91, 0.89, 0.9]), 0.9, 500) == (30, 0.6, 0.6)
    assert reach(rounds("a", [0.5, 0.8]), 0.9, 200) == (None, None, None)
    # reaching it to the tables' 4 decimals counts
    assert reach(rounds("a", [0.89999, 0.95]), 0.9, 200)[0] == 10


def simulation(f1s: dict[str, list[float]]) -> SimulationResult:
    all_rounds = tuple(r for arm, values in f1s.items() for r in rounds(arm, values))
    budget = 10 * len(f1s["random"])
    target = f1s["random"][-1]
    summaries = tuple(ArmSummary(arm, *reach(rounds(arm, values), target, 100 * len(values)))
                      for arm, values in f1s.items())
    return SimulationResult("c", {"train": budget, "dev": 3, "test": 3}, 10, 10, budget,
                            tuple(f1s), all_rounds, summaries, target, {}, 1.0)


def test_seeds_give_each_rounds_mean_and_spread_and_each_seeds_share_of_the_budget():
    runs = [simulation({"expected-errors": [0.5, 0.9, 0.9, 0.9], "random": [0.5, 0.6, 0.7, 0.9]}),
            simulation({"expected-errors": [0.4, 0.7, 0.8, 0.8], "random": [0.4, 0.5, 0.6, 0.8]})]
    result = aggregate((3, 5), runs)
    by = {(p.arm, p.reports): p for p in result.points}
    assert by[("expected-errors", 20)].rc_f1 == (0.9, 0.7)
    assert by[("expected-errors", 20)].mean == pytest.approx(0.8)
    assert by[("expected-errors", 20)].sd == pytest.approx(0.1414214)
    assert by[("random", 40)].share_of_budget == 1.0
    assert result.targets == (0.9, 0.8)
    (selected, _random) = result.summaries
    assert selected.shares == (0.5, 0.75)  # each seed against its own target
    # the mean curve (0.45, 0.8, 0.85, 0.85) reaches the mean target 0.85 at 30 reports
    assert (selected.mean_curve_reports, selected.mean_curve_share) == (30, 0.75)
    assert load_result(json.loads(json.dumps(asdict(runs[0])))) == runs[0]
    with pytest.raises(ValueError, match="same --start"):
        aggregate((1, 2), [runs[0], simulation({"random": [0.5, 0.9]})])


@pytest.mark.slow
def test_a_tiny_simulation_writes_its_tables_and_plot(tmp_path):
    generate_corpus(36, 11, tmp_path / "corpus")
    (tmp_path / "config.json").write_text(json.dumps({"epochs": 2}), encoding="utf-8")
    out = tmp_path / "out"
    args = ["experiment", str(tmp_path / "corpus"), "--out", str(out), "--profile", "tiny",
            "--config", str(tmp_path / "config.json"), "--learning-curve", "--start", "5",
            "--step", "8", "--strategies", "expected-errors", "--device", "cpu"]
    assert angiokg(args) == 0
    csv_text = (out / "learning_curve.csv").read_text(encoding="utf-8")
    with (out / "learning_curve.csv").open(encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    result = json.loads((out / "learning_curve.json").read_text(encoding="utf-8"))
    pool = result["split"]["train"]
    sizes = list(schedule(pool, 5, 8))
    for arm in ("expected-errors", "random"):
        assert [int(r["reports"]) for r in table if r["arm"] == arm] == sizes
    first = {r["arm"]: r for r in table if int(r["reports"]) == sizes[0]}
    last = {r["arm"]: r for r in table if int(r["reports"]) == sizes[-1]}
    for ends in (first, last):  # the same start, and the whole pool: one model for both arms
        assert ends["expected-errors"]["model"] == ends["random"]["model"]
        assert ends["expected-errors"]["rc_f1"] == ends["random"]["rc_f1"]
    middle = {r["arm"]: r["model"] for r in table if int(r["reports"]) == sizes[1]}
    assert middle["expected-errors"] != middle["random"]  # other reports were chosen
    assert result["target_f1"] == pytest.approx(float(last["random"]["rc_f1"]), abs=1e-6)
    (random_summary,) = [s for s in result["summaries"] if s["arm"] == "random"]
    # its own curve reaches its final F1 by the last round at the latest
    assert 0 < random_summary["share_of_budget"] <= 1.0
    markdown = (out / "learning_curve.md").read_text(encoding="utf-8")
    assert "Budget needed to reach" in markdown and "ECE before" in markdown
    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    models = [name for name in os.listdir(out / "models") if not name.startswith(".")]
    assert len(models) == 2 * len(sizes) - 2  # the shared start and end trained once

    # started again in the same folder, it trains nothing and says the same
    stamps = {p: p.stat().st_mtime_ns for p in (out / "models").glob("*/heads.pt")}
    assert angiokg(args) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "models").glob("*/heads.pt")} == stamps
    assert (out / "learning_curve.csv").read_text(encoding="utf-8") == csv_text


def _simulate_30_reports(tmp_path, epochs: int, *options: str):
    """`angiokg experiment --learning-curve` on 30 generated reports (start 6, step 6, budget
    12, tiny profile, `epochs` epochs) with `options`; returns its output folder."""
    generate_corpus(30, 11, tmp_path / "corpus")
    (tmp_path / "config.json").write_text(json.dumps({"epochs": epochs}), encoding="utf-8")
    out = tmp_path / "out"
    assert angiokg(["experiment", str(tmp_path / "corpus"), "--out", str(out), "--profile",
                    "tiny", "--config", str(tmp_path / "config.json"), "--learning-curve",
                    "--start", "6", "--step", "6", "--budget", "12", "--strategies",
                    "expected-errors", *options, "--device", "cpu"]) == 0
    return out


@pytest.mark.slow
def test_seeds_run_the_simulation_once_each_from_one_encoder_and_give_the_spread(tmp_path):
    out = _simulate_30_reports(tmp_path, 1, "--seeds", "4,9")
    with (out / "learning_curve.csv").open(encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["seed"], r["reports"]) for r in table if r["arm"] == "random"] == [
        ("4", "6"), ("4", "12"), ("9", "6"), ("9", "12")]
    starts = {r["seed"]: r["model"] for r in table if r["reports"] == "6"}
    assert starts["4"] != starts["9"]  # each seed starts from other reports
    for seed in (4, 9):
        run = json.loads((out / f"seed-{seed}" / "learning_curve.json").read_text("utf-8"))
        trained = json.loads(next((out / f"seed-{seed}" / "models").glob("*/train_config.json"))
                             .read_text("utf-8"))
        assert trained["seed"] == seed
        ours = [r for r in table if r["seed"] == str(seed)]
        assert [float(r["rc_f1"]) for r in ours] == pytest.approx(
            [r["rc_f1"] for r in run["rounds"]], abs=1e-6)
    assert (out / "seed-4" / "encoder" / "config.json").is_file()
    assert not (out / "seed-9" / "encoder").exists()  # the second seed fine-tunes the first's
    result = json.loads((out / "learning_curve.json").read_text(encoding="utf-8"))
    assert result["seeds"] == [4, 9] and len(result["targets"]) == 2
    markdown = (out / "learning_curve.md").read_text(encoding="utf-8")
    assert "mean ± sd" in markdown and "each seed" in markdown
    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_matched_steps_train_every_round_for_the_whole_budgets_steps(tmp_path):
    from extraction.train import epoch_steps, read_corpus, split_documents
    from extraction.train_config import load_config
    from ingest.schema import load_schema

    out = _simulate_30_reports(tmp_path, 2, "--matched-steps")
    result = json.loads((out / "learning_curve.json").read_text(encoding="utf-8"))
    schema = load_schema()
    config = load_config(tmp_path / "config.json", "tiny")
    pool = sorted(split_documents(read_corpus(tmp_path / "corpus", schema),
                                  config.split_seed)["train"], key=lambda d: d.doc_id)
    import random

    random.Random(0).shuffle(pool)  # --seed 0: the simulation's own shuffle
    budget_steps = epoch_steps(pool[:12], schema, config)
    assert budget_steps > epoch_steps(pool[:6], schema, config)  # else the test shows nothing
    assert result["train_steps"] == budget_steps
    models = sorted((out / "models").glob("n*/train_log.jsonl"))
    assert len(models) == 3  # the shared start, and each arm's 12
    for log_path in models:
        log = [json.loads(line) for line in log_path.open(encoding="utf-8")]
        assert [e["steps"] for e in log if "dev" in e][-1] == budget_steps
    rounds = {(r["arm"], r["reports"]): r["model"] for r in result["rounds"]}

    def saved_steps(model: str) -> int | None:
        path = out / "models" / model / "train_config.json"
        return json.loads(path.read_text(encoding="utf-8"))["train_steps"]

    assert saved_steps(rounds[("random", 6)]) == budget_steps  # 6 reports, more passes
    # the whole budget's own epochs are the matched steps: the fixed-epoch model, as it is
    assert saved_steps(rounds[("random", 12)]) is None
    assert "--matched-steps" in (out / "learning_curve.md").read_text(encoding="utf-8")
