import json
from dataclasses import replace

import pytest
import torch

from extraction.evaluate import evaluate_extractor
from extraction.predict import Extractor
from extraction.train import (
    epoch_steps,
    evaluation_steps,
    fit,
    train,
    train_documents,
    training_examples,
)
from extraction.train_config import profile
from ingest.brat_writer import write_document
from ingest.generator import generate_report
from ingest.schema import load_schema

torch.set_num_threads(1)
SCHEMA = load_schema()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    docs = [generate_report(i, 5) for i in range(8)]
    out = tmp_path_factory.mktemp("m") / "tiny-model"
    config = replace(profile("tiny"), epochs=8, patience=100)
    result = train_documents(docs, SCHEMA, out, config)
    return docs, result


def test_training_loss_decreases(trained):
    _, result = trained
    log = [json.loads(line) for line in (result.model_dir / "train_log.jsonl").open()]
    losses = [entry["loss"] for entry in log if "loss" in entry]
    assert len(losses) >= 3
    assert losses[-1] < 0.5 * losses[0]


def test_tiny_model_overfits_its_training_sentences(trained):
    docs, result = trained
    extractor = Extractor.load(result.model_dir, device="cpu")
    report = evaluate_extractor(extractor, docs)
    assert report.ner.f1 >= 0.9  # generated reports are regular: a toy model learns them


def test_model_directory_is_complete(trained):
    _, result = trained
    names = {p.name for p in result.model_dir.iterdir()}
    assert {"encoder", "heads.pt", "labels.json", "schema.conf", "schema.sha256",
            "train_config.json", "metrics.json", "model_version", "train_log.jsonl"} <= names
    assert (result.model_dir / "encoder" / "vocab.txt").is_file()
    assert result.model_version.startswith("tiny-model-")
    assert (result.model_dir / "schema.sha256").read_text().strip() == SCHEMA.sha256


def test_train_reads_a_brat_corpus_and_modes_train_one_head(tmp_path, caplog):
    for i in range(4):
        write_document(generate_report(i, 9), tmp_path / "corpus")
    config = replace(profile("tiny"), epochs=1, mode="ner_only")
    with caplog.at_level("WARNING", logger="extraction.train"):
        result = train(tmp_path / "corpus", tmp_path / "model", config, schema=SCHEMA)
    test_reports = result.metrics["split"]["test"]
    assert f"the test split has {test_reports} report(s), fewer than 20" in caplog.text
    log = [json.loads(line) for line in (result.model_dir / "train_log.jsonl").open()]
    first_epoch = next(entry for entry in log if "epoch" in entry)
    assert first_epoch["rc_loss"] == 0.0 and first_epoch["ner_loss"] > 0.0
    assert sum(result.metrics["split"].values()) == 4


def test_reports_without_annotations_are_left_out_and_counted_in_the_training_log(tmp_path):
    corpus = tmp_path / "corpus"
    for i in range(4):
        write_document(generate_report(i, 9), corpus)
    for i in range(4, 7):  # texts nobody annotated yet: their findings are not "no entity"
        write_document(generate_report(i, 9), corpus, with_ann=False)
    (corpus / "broken.ann").write_text("T1\tDegree 0 2\t狭窄\n", encoding="utf-8")
    config = replace(profile("tiny"), epochs=1)
    result = train(corpus, tmp_path / "model", config, schema=SCHEMA)
    log = [json.loads(line) for line in (result.model_dir / "train_log.jsonl").open()]
    expected = {"reports": 8, "used": 4, "quarantined": 1, "unannotated": 3}
    assert log[0] == {"corpus": expected} and result.metrics["corpus"] == expected
    assert sum(result.metrics["split"].values()) == 4
    assert "epoch" in log[1]


def test_fit_without_dev_keeps_the_last_epoch():
    from extraction.batching import encode_example
    from extraction.bert_factory import new_bert
    from extraction.model import FocusedAttentionModel
    from extraction.str_encoder import StrEncoder
    from extraction.tokenizer import build_tokenizer
    from ingest.bieos import tag_set
    from ingest.examples import document_examples

    doc = generate_report(0, 1)
    config = replace(profile("tiny"), epochs=2)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tok = build_tokenizer([doc.text], tmp, 100)
    tags = tag_set(SCHEMA.entity_types)
    model = FocusedAttentionModel(StrEncoder(new_bert(len(tok), config.bert_size), 1),
                                  tags, SCHEMA.relation_labels)
    encoded = [encode_example(e, tok, {t: i for i, t in enumerate(tags)},
                              {r: i for i, r in enumerate(SCHEMA.relation_labels)})
               for e in document_examples(doc, SCHEMA)]
    history = fit(model, tok, SCHEMA, encoded, [], config, device=torch.device("cpu"))
    assert history[-1]["best_epoch"] == 2


def test_single_task_models_stop_early_on_the_task_they_train():
    from types import SimpleNamespace

    from extraction.train import dev_score

    def f1(value: float) -> SimpleNamespace:
        return SimpleNamespace(f1=value)

    # An RC-only model's NER head is untrained: RC on predicted entities is ~0 whatever it learnt.
    report = SimpleNamespace(ner=f1(0.9), rc_gold=f1(0.8), rc_predicted=f1(0.02))
    assert dev_score(report, "mean", "rc_only") == 0.8
    assert dev_score(report, "rc", "rc_only") == 0.8
    assert dev_score(report, "mean", "ner_only") == 0.9
    assert dev_score(report, "mean", "joint") == (0.9 + 0.02) / 2
    assert dev_score(report, "rc", "joint") == 0.02


def test_a_config_naming_an_unknown_mode_mask_or_strategy_is_refused():
    from extraction.train_config import TrainConfig

    for key, value in (("mode", "joint-ish"), ("rc_mask", "eq15"), ("rc_strategy", "fast")):
        with pytest.raises(ValueError, match=f"{key} must be one of"):
            TrainConfig.from_dict({key: value})


def test_dev_is_scored_after_each_pass_or_at_even_steps_of_train_steps():
    config = replace(profile("tiny"), epochs=4, batch_size=8)
    assert evaluation_steps(100, config) == (13, 26, 39, 52)  # 13 batches a pass
    assert evaluation_steps(9, config) == (2, 4, 6, 8)
    matched = replace(config, train_steps=30)
    assert evaluation_steps(100, matched) == evaluation_steps(9, matched) == (8, 15, 22, 30)
    with pytest.raises(ValueError, match="train_steps must be at least epochs"):
        replace(config, train_steps=3)


def _optimizer_steps(run) -> int:
    """Optimizer steps taken while `run()` trains, counted by torch's global step hook."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    count = 0

    def counted(*_):
        nonlocal count
        count += 1

    handle = register_optimizer_step_post_hook(counted)
    try:
        run()
    finally:
        handle.remove()
    return count


def test_train_steps_give_a_small_and_a_large_training_set_the_same_optimizer_steps(tmp_path):
    docs = [generate_report(i, 21) for i in range(13)]
    dev = docs[-1]
    small, large = docs[:3], docs[:12]
    config = replace(profile("tiny"), epochs=3, batch_size=4)
    own = epoch_steps(small, SCHEMA, config)
    budget = epoch_steps(large, SCHEMA, config)
    sentences = len(training_examples(small, SCHEMA, config)[1])
    assert own == -(-sentences // 4) * 3 < budget

    def trained(train_docs, name, train_steps):
        split = {d.doc_id: "train" for d in train_docs} | {dev.doc_id: "dev"}
        result = None

        def run():
            nonlocal result
            result = train_documents([*train_docs, dev], SCHEMA, tmp_path / name,
                                     replace(config, train_steps=train_steps), split=split)
        return _optimizer_steps(run), result

    # the default protocol is unchanged: epochs passes, so the smaller set gets fewer steps
    assert trained(small, "small", None)[0] == own
    for train_docs, name in ((small, "small-matched"), (large, "large-matched")):
        steps, result = trained(train_docs, name, budget)
        assert steps == budget
        log = [json.loads(line) for line in (result.model_dir / "train_log.jsonl").open()]
        evaluations = [entry for entry in log if "dev" in entry]
        assert [e["steps"] for e in evaluations] == list(evaluation_steps(0, replace(
            config, train_steps=budget)))
        assert evaluations[-1]["lr"] == 0.0  # the linear decay spans exactly these steps


def test_train_steps_equal_to_the_epochs_steps_train_the_same_model():
    from extraction.batching import encode_example
    from extraction.bert_factory import new_bert
    from extraction.model import FocusedAttentionModel
    from extraction.str_encoder import StrEncoder
    from extraction.tokenizer import build_tokenizer
    from ingest.bieos import tag_set

    docs = [generate_report(i, 4) for i in range(3)]
    config = replace(profile("tiny"), epochs=3, batch_size=4, dropout=0.1, unk_rate=0.1)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tok = build_tokenizer([d.text for d in docs], tmp, 200)
    tags = tag_set(SCHEMA.entity_types)
    encoded = [encode_example(e, tok, {t: i for i, t in enumerate(tags)},
                              {r: i for i, r in enumerate(SCHEMA.relation_labels)})
               for e in training_examples(docs, SCHEMA, config)[1]]

    def weights(train_steps):
        torch.manual_seed(0)
        model = FocusedAttentionModel(StrEncoder(new_bert(len(tok), config.bert_size), 1),
                                      tags, SCHEMA.relation_labels, dropout=0.1)
        fit(model, tok, SCHEMA, encoded, [], replace(config, train_steps=train_steps),
            device=torch.device("cpu"))
        return model.state_dict()

    natural, matched = weights(None), weights(epoch_steps(docs, SCHEMA, config))
    assert natural.keys() == matched.keys()
    assert all(torch.equal(natural[k], matched[k]) for k in natural)
    longer = weights(epoch_steps(docs, SCHEMA, config) + 3)
    assert not all(torch.equal(natural[k], longer[k]) for k in natural)
