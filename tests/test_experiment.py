import contextlib
import io
import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch
from extraction_fakes import FakeExtractor

from extraction.experiment import (
    PAPER_TABLE_IV,
    Cell,
    CellResult,
    PipelineExtractor,
    SplitScores,
    TaskScores,
    checkpoint_shape,
    grid,
    parse_ks,
    parse_masks,
    pick_winner,
    selection_score,
    table_v,
    table_vi,
    to_csv,
    to_markdown,
    with_shape,
)
from extraction.train_config import profile
from flows.cli import main
from ingest.document import Document, Relation
from ingest.generator import generate_corpus, generate_report
from ingest.split import assign_split

torch.set_num_threads(1)
TINY = profile("tiny")  # a 2-layer encoder
SCORE_COLUMNS = ("dev_ner_f1", "dev_rc_gold_f1", "dev_rc_predicted_f1", "dev_score",
                 "test_ner_f1", "test_rc_gold_f1", "test_rc_predicted_f1")


def scores(ner: float, rc_gold: float, rc_predicted: float) -> SplitScores:
    return SplitScores(TaskScores(ner, ner, ner), TaskScores(rc_gold, rc_gold, rc_gold),
                       TaskScores(rc_predicted, rc_predicted, rc_predicted))


def ran(name: str, dev: SplitScores) -> CellResult:
    cell = Cell(name, 1, "eq14", replace(TINY, k=1))
    return CellResult(cell, dev, dev, Path(name), 1, 0.0)


# --- the grid and the choice (pure) --------------------------------------------------------


def test_grid_lists_a_k_above_the_encoder_layers_as_not_applicable():
    cells = grid(TINY, [1, 2, 6], ["eq13", "eq14"])
    assert [c.name for c in cells] == ["k1-eq13", "k1-eq14", "k2-eq13", "k2-eq14",
                                       "k6-eq13", "k6-eq14"]
    for cell in cells[:4]:
        assert cell.config is not None and not cell.skipped
        assert (cell.config.k, cell.config.rc_mask, cell.config.mode) == (cell.k, cell.rc_mask,
                                                                          "joint")
    assert [(c.config, c.skipped) for c in cells[4:]] == [(None, "n/a (K > 2 layers)")] * 2


def test_grid_runs_each_configuration_once():
    cells = grid(TINY, [2, 1, 2], ["eq14", "eq14"])
    assert [c.name for c in cells] == ["k2-eq14", "k1-eq14"]


def test_bad_k_and_mask_lists_are_refused_with_the_option_named():
    assert parse_ks("2, 4,6") == (2, 4, 6)
    assert parse_masks("eq14") == ("eq14",)
    for text in ("two", "-1", ""):
        with pytest.raises(ValueError, match="--k"):
            parse_ks(text)
    with pytest.raises(ValueError, match="--masks"):
        parse_masks("eq12")


def test_a_checkpoint_decides_how_many_layers_k_may_use(tmp_path):
    from extraction.bert_factory import new_bert

    new_bert(50, replace(TINY, num_hidden_layers=3).bert_size).save_pretrained(str(tmp_path))
    base = with_shape(TINY, checkpoint_shape(tmp_path))
    assert (base.num_hidden_layers, base.hidden_size) == (3, TINY.hidden_size)
    cells = grid(base, [3, 4], ["eq14"])
    assert cells[0].config is not None and cells[0].config.num_hidden_layers == 3
    assert cells[1].skipped == "n/a (K > 3 layers)"


def test_winner_is_the_best_dev_mean_of_ner_and_rc_predicted_f1():
    best_ner = ran("best-ner", scores(0.99, 0.99, 0.10))  # mean 0.545
    best_mean = ran("best-mean", scores(0.80, 0.50, 0.70))  # mean 0.75
    tie = ran("tie", scores(0.70, 0.90, 0.80))  # mean 0.75, later in grid order
    skipped = CellResult(Cell("k6-eq14", 6, "eq14", None, "n/a"), None, None, None, None, 0.0)
    winner = pick_winner([skipped, best_ner, best_mean, tie])
    assert winner is best_mean
    assert selection_score(winner.dev) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="no cell"):
        pick_winner([skipped])


def test_table_v_shows_na_in_markdown_and_leaves_the_csv_numbers_empty():
    results = [ran("k1-eq14", scores(0.5, 0.6, 0.4)),
               CellResult(Cell("k6-eq14", 6, "eq14", None, "n/a (K > 2 layers)"), None, None,
                          None, None, 0.0)]
    table = table_v(results, results[0])
    markdown = to_markdown(table)
    na_line = markdown.splitlines()[-3]
    assert na_line.count("n/a (K > 2 layers)") == len(SCORE_COLUMNS)
    assert "| 1 | eq14 | **yes** | 50.00 | 60.00 | 40.00 | 45.00 |" in markdown
    frame = pd.read_csv(io.StringIO(to_csv(table)))
    assert frame.loc[1, "status"] == "n/a (K > 2 layers)"
    assert frame.loc[1, list(SCORE_COLUMNS)].isna().all()
    assert frame.loc[0, "dev_score"] == pytest.approx(0.45)


def test_table_vi_without_separate_training_says_it_was_not_run():
    table = table_vi(ran("k1-eq14", scores(0.5, 0.6, 0.4)), None)
    frame = pd.read_csv(io.StringIO(to_csv(table)))
    assert list(frame["training"]) == ["joint", "separate"]
    assert frame.loc[1, "status"] == "not run (--no-separate)"
    assert frame.loc[1, "ner_f1":].isna().all()
    assert frame.loc[0, "rc_predicted_f1"] == pytest.approx(0.4)


# --- the pipeline of separately trained models ----------------------------------------------


class FixedRelations:
    """An RC stand-in: relates the first two entities of any document, confidence 0.5."""

    def __init__(self) -> None:
        self.schema = FakeExtractor().schema
        self.max_chars = 126
        self.model_version = "rc-1"
        self.seen: list[Document] = []

    def predict_relations_gold(self, document: Document) -> Document:
        self.seen.append(document)
        first, second = document.entities[:2]
        return replace(document, relations=(Relation("R1", "Modifier", first.id, second.id,
                                                     0.5),))


def test_pipeline_relates_the_ner_models_entities_with_the_rc_model():
    ner, rc = FakeExtractor(), FixedRelations()
    pipeline = PipelineExtractor(ner, rc)  # type: ignore[arg-type]
    gold = generate_report(0, 7)
    bare = replace(gold, entities=(), relations=())
    (predicted,) = pipeline.extract([bare])
    (ner_only,) = FakeExtractor().extract([bare])
    assert predicted.entities == ner_only.entities
    assert rc.seen == [ner_only]  # the RC model is asked about the NER model's entities
    assert [(r.arg1, r.arg2, r.confidence) for r in predicted.relations] == [("T1", "T2", 0.5)]
    on_gold = pipeline.predict_relations_gold(gold)
    assert on_gold.entities == gold.entities and on_gold.relations[0].confidence == 0.5


# --- the command, end to end on a tiny grid -------------------------------------------------


def _seed_with_dev_and_test(ids: list[str]) -> int:
    """A split seed giving these few reports at least one dev and one test report."""
    for seed in range(1000):
        sides = [assign_split(i, seed) for i in ids]
        if "dev" in sides and "test" in sides:
            return seed
    raise AssertionError("no such seed")


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiment")
    generate_corpus(8, 7, root / "corpus")
    ids = sorted(p.stem for p in (root / "corpus").glob("*.ann"))
    config = {"split_seed": _seed_with_dev_and_test(ids), "epochs": 3}
    (root / "config.json").write_text(json.dumps(config))
    out = root / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["experiment", str(root / "corpus"), "--out", str(out), "--profile", "tiny",
                     "--config", str(root / "config.json"), "--k", "1,2,6", "--device", "cpu"])
    assert code == 0
    return out, printed.getvalue()


def test_experiment_writes_and_prints_the_three_tables(experiment):
    out, printed = experiment
    markdown = (out / "tables.md").read_text(encoding="utf-8")
    assert printed.strip() == markdown.strip()
    for title in ("Table IV", "Table V", "Table VI"):
        assert f"### {title}:" in markdown
    assert {p.name for p in out.iterdir()} >= {"tables.md", "table_iv.csv", "table_v.csv",
                                               "table_vi.csv", "results.json", "encoder",
                                               "models"}


def test_table_v_scores_every_runnable_cell_and_marks_k_above_the_layers_na(experiment):
    out, _ = experiment
    frame = pd.read_csv(out / "table_v.csv")
    assert list(frame.columns) == ["cell", "k", "rc_mask", "status", "chosen", *SCORE_COLUMNS]
    assert list(frame["cell"]) == ["k1-eq13", "k1-eq14", "k2-eq13", "k2-eq14", "k6-eq13",
                                   "k6-eq14"]
    runnable, na = frame.iloc[:4], frame.iloc[4:]
    assert (runnable["status"] == "ok").all()
    values = runnable[list(SCORE_COLUMNS)]
    assert values.notna().all().all()
    assert ((values >= 0) & (values <= 1)).all().all()
    assert (runnable["dev_score"] == (runnable["dev_ner_f1"]
                                      + runnable["dev_rc_predicted_f1"]) / 2).all()
    assert (na["status"] == "n/a (K > 2 layers)").all()
    assert na[list(SCORE_COLUMNS)].isna().all().all()
    assert "| 6 | eq13 |  | n/a (K > 2 layers) |" in (out / "tables.md").read_text()
    models = {p.name for p in (out / "models").iterdir() if not p.name.startswith(".")}
    assert models == {"k1-eq13", "k1-eq14", "k2-eq13", "k2-eq14", "ner-only", "rc-only"}


def test_the_chosen_cell_is_the_first_with_the_best_dev_score(experiment):
    out, printed = experiment
    frame = pd.read_csv(out / "table_v.csv")
    best = frame["dev_score"].idxmax()  # first maximum: ties go to the earlier cell
    assert frame["chosen"].tolist() == [i == best for i in range(len(frame))]
    results = json.loads((out / "results.json").read_text())
    assert results["winner"] == frame.loc[best, "cell"]
    assert f"chosen on dev: **{results['winner']}**" in printed
    assert results["winner_config"]["k"] == frame.loc[best, "k"]


def test_table_iv_is_the_chosen_cell_on_test_beside_the_paper(experiment):
    out, _ = experiment
    table = pd.read_csv(out / "table_iv.csv")
    assert list(table.columns) == ["task", "label", "precision", "recall", "f1",
                                   "paper_precision", "paper_recall", "paper_f1"]
    assert list(table["task"]) == ["ner", "rc_gold", "rc_predicted"]
    results = json.loads((out / "results.json").read_text())
    winner = next(c for c in results["cells"] if c["cell"] == results["winner"])
    for row in table.itertuples():
        assert (row.precision, row.recall, row.f1) == pytest.approx(
            tuple(winner["test"][row.task][m] for m in ("precision", "recall", "f1")))
        assert (row.paper_precision, row.paper_recall, row.paper_f1) == PAPER_TABLE_IV[row.task]
        assert 0 <= row.precision <= 1 and 0 <= row.recall <= 1 and 0 <= row.f1 <= 1


def test_table_vi_scores_separate_training_with_each_models_own_task(experiment):
    out, _ = experiment
    table = pd.read_csv(out / "table_vi.csv").set_index("training")
    assert list(table.index) == ["joint", "separate"]
    assert (table["status"] == "ok").all()
    numbers = table.loc[:, "ner_precision":]
    assert len(numbers.columns) == 9 and ((numbers >= 0) & (numbers <= 1)).all().all()
    results = json.loads((out / "results.json").read_text())
    separate = results["separate"]
    ner_metrics = json.loads((Path(separate["ner_model_dir"]) / "metrics.json").read_text())
    rc_metrics = json.loads((Path(separate["rc_model_dir"]) / "metrics.json").read_text())
    # NER of the pipeline is the NER-only model's; RC on gold entities the RC-only model's.
    assert table.loc["separate", "ner_f1"] == pytest.approx(ner_metrics["test"]["ner"]["f1"])
    assert table.loc["separate", "rc_gold_f1"] == pytest.approx(
        rc_metrics["test"]["rc_gold"]["f1"])
    assert table.loc["joint", "ner_f1"] == pytest.approx(
        next(c for c in results["cells"] if c["cell"] == results["winner"])["test"]["ner"]["f1"])
    # Both separate models see the same split; each was scored on dev by its own task.
    assert ner_metrics["split"] == rc_metrics["split"] and rc_metrics["split"]["dev"] > 0


def test_every_model_fine_tunes_the_one_encoder_built_for_the_experiment(experiment):
    out, _ = experiment
    assert (out / "encoder" / "config.json").is_file()
    assert (out / "encoder" / "vocab.txt").is_file()
    for model in (out / "models").iterdir():
        if model.name.startswith("."):
            continue
        metrics = json.loads((model / "metrics.json").read_text())
        # train() builds a vocabulary (and pre-trains) only when no checkpoint is given
        assert "tokenizer_seconds" not in metrics["timings"], model.name
        assert (model / "encoder" / "vocab.txt").read_text() == (
            out / "encoder" / "vocab.txt").read_text()
