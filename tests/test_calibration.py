"""Calibration: reliability tables and ECE computed as defined, temperature scaling that fixes a
hand-set over-confident model, stored in the model directory, reported by `angiokg evaluate`."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from extraction_fakes import documents, hand_set_extractor

from extraction.calibration import (
    Item,
    calibration_report,
    confidence_items,
    expected_calibration_error,
    fit_temperatures,
    log_loss,
    reliability,
)
from extraction.model_dir import load_model_dir
from extraction.temperature import CALIBRATION, Temperatures

torch.set_num_threads(1)


def test_reliability_bins_and_ece_as_defined():
    items = [Item(0.95, True), Item(0.95, True), Item(0.91, False), Item(0.55, True),
             Item(0.52, False), Item(1.0, True)]
    bins = reliability(items)
    assert [(b.low, b.count) for b in bins] == [(0.5, 2), (0.9, 4)]
    top = bins[1]
    assert top.confidence == pytest.approx((0.95 + 0.95 + 0.91 + 1.0) / 4)
    assert top.accuracy == 0.75
    ece = (2 / 6) * abs(0.5 - 0.535) + (4 / 6) * abs(0.75 - top.confidence)
    assert expected_calibration_error(items) == pytest.approx(ece)
    assert expected_calibration_error([Item(0.8, True)] * 4 + [Item(0.8, False)]) == \
        pytest.approx(0.0)
    assert log_loss([Item(0.9, True), Item(0.9, False)]) == pytest.approx(
        -(torch.tensor(0.9).log() + torch.tensor(0.1).log()).item() / 2, rel=1e-5)


def gold_with_every_fifth_relation_wrong(predictions):
    """Gold documents in which 1 of 5 of the model's relations does not exist."""
    gold, kept = [], 0
    for document in predictions:
        relations = []
        for relation in document.relations:
            kept += 1
            if kept % 5:
                relations.append(replace(relation, confidence=None))
        gold.append(replace(document, relations=tuple(relations), doubt=None,
                            entities=tuple(replace(e, confidence=None)
                                           for e in document.entities)))
    return gold


def test_temperature_scaling_fixes_an_over_confident_relation_head():
    extractor = hand_set_extractor(0.95)  # says 0.95 for every relation ...
    gold = gold_with_every_fifth_relation_wrong(extractor.extract(documents()))
    items = confidence_items(gold, list(extractor.extract(documents())))
    assert sum(i.correct for i in items["rc"]) / len(items["rc"]) == pytest.approx(0.8, abs=0.02)

    fitted = fit_temperatures(extractor, gold)  # ... and is right 80% of the time
    # logit ln(0.95/0.05) = 2.94 must become ln(0.8/0.2) = 1.39: T ~ 2.1 on the grid
    assert fitted.rc in (2 ** (4 / 4), 2 ** (5 / 4))
    assert fitted.ner == 1.0 and "nothing to fit" in fitted.fit["ner"]["note"]
    rc = fitted.fit["rc"]
    assert rc["ece_before"] > 0.1 and rc["ece_after"] < 0.05
    assert rc["log_loss_after"] < rc["log_loss_before"]
    assert extractor.temperatures == Temperatures()  # the fit leaves the extractor as it was

    extractor.temperatures = fitted
    report = calibration_report(extractor, gold)
    summary = report.heads["rc"].summary()
    assert summary["ece_before"] == pytest.approx(rc["ece_before"])
    assert summary["ece_after"] == pytest.approx(rc["ece_after"])


def test_training_stores_the_temperatures_and_loading_applies_them(tmp_path):
    from extraction_fakes import train_tiny_model

    from extraction.predict import Extractor

    version = train_tiny_model(tmp_path / "model", reports=12)
    stored = json.loads((tmp_path / "model" / CALIBRATION).read_text(encoding="utf-8"))
    assert set(stored) == {"ner", "rc", "fit"} and stored["fit"]["dev_reports"] >= 1
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["calibration"] == stored["fit"]
    loaded = load_model_dir(tmp_path / "model")
    assert (loaded.temperatures.ner, loaded.temperatures.rc) == (stored["ner"], stored["rc"])
    assert Extractor.load(tmp_path / "model", device="cpu").temperatures == loaded.temperatures
    assert loaded.model_version == version


def test_a_directory_without_calibration_gives_raw_confidences_and_a_bad_one_is_named(tmp_path):
    assert Temperatures.load(tmp_path) == Temperatures(1.0, 1.0)
    (tmp_path / CALIBRATION).write_text('{"ner": 0, "rc": 1}', encoding="utf-8")
    with pytest.raises(ValueError, match=CALIBRATION):
        Temperatures.load(tmp_path)


@pytest.mark.slow
def test_evaluate_prints_reliability_tables_and_writes_them_as_json(tmp_path, capsys):
    from extraction_fakes import train_tiny_model

    from flows.cli import main as angiokg
    from ingest.generator import generate_corpus

    train_tiny_model(tmp_path / "model", reports=12)
    generate_corpus(10, 3, tmp_path / "corpus")
    code = angiokg(["evaluate", str(tmp_path / "model"), str(tmp_path / "corpus"), "--split",
                    "all", "--json", str(tmp_path / "eval.json"), "--device", "cpu"])
    assert code == 0
    out = capsys.readouterr().out
    assert "Calibration" in out and "entities:" in out and "ECE" in out
    payload = json.loads((tmp_path / "eval.json").read_text(encoding="utf-8"))
    entities = payload["calibration"]["ner"]
    assert entities["items"] == sum(b["count"] for b in entities["reliability_before"])
    assert 0.0 <= entities["ece_before"] <= 1.0


def test_corrections_made_count_wrong_and_missed_items_and_ranks_correlate():
    from extraction.calibration import CorrectionsCheck, corrections_made, spearman
    from ingest.document import Document, Entity, Relation, Span

    gold = Document("r", "前降支狭窄", (Entity("T1", "BodyPart", (Span(0, 3),), "前降支"),
                                       Entity("T2", "Degree", (Span(3, 5),), "狭窄")),
                    (Relation("R1", "Modifier", "T2", "T1"),))
    wrong = replace(gold, entities=(gold.entities[0],
                                    Entity("T2", "Degree", (Span(4, 5),), "窄", 0.5)))
    # the wrong T2 deleted and the right one added; R1 on the wrong span likewise: 4
    assert corrections_made(gold, wrong) == 4 and corrections_made(gold, gold) == 0
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    check = CorrectionsCheck.of([gold, gold], [gold, wrong])
    assert check.made == 4 and check.expected == pytest.approx(0.5)
