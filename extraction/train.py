"""`angiokg train`: brat corpus -> a model directory, read top to bottom.

1. Load the corpus (quarantined reports and reports without a .ann are left out, counted in
   the training log) and split it by report id (8:1:1, seeded).
2. Encoder: the `--bert` checkpoint, or a WordPiece vocabulary built from the training text and
   a small BERT pre-trained by MLM on that text (plus an unlabelled archive when given).
3. Sentence examples of the train split and of its augmented copies (`extraction.augment`:
   other spellings, separators and spacing, same annotation): BIEOS tags and candidate pairs;
   NoRelation pairs of the train split kept
   at `no_relation_keep_rate` (the paper's 0.15 of all pairs; 1.0 by default, see
   train_config); dev and test keep every pair.
4. Fine-tune the focused attention model: AdamW, warm-up then linear decay, gradient clipping,
   a share of input characters read as [UNK] (`unk_rate`), for `epochs` passes (or for
   `train_steps` optimizer steps whatever the set's size, dev scored `epochs` times);
   after each epoch score dev as the paper does and keep the best epoch (early stopping).
5. Calibrate: a temperature per head fitted on dev (extraction/calibration.py), so that a
   confidence is a probability of being right; decisions are unchanged.
6. Score the test split with the best weights and write the model directory.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import random
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from itertools import islice
from pathlib import Path

import torch
from tqdm import tqdm
from transformers import BertModel, get_linear_schedule_with_warmup

from extraction.augment import augment_corpus
from extraction.batching import (
    Batch,
    EncodedSentence,
    collate,
    encode_example,
    length_batches,
)
from extraction.bert_factory import load_bert, new_bert, pick_device
from extraction.calibration import fit_temperatures
from extraction.evaluate import EvaluationReport, evaluate_extractor
from extraction.model import FocusedAttentionModel
from extraction.model_dir import save_model_dir
from extraction.predict import Extractor
from extraction.pretrain import pretrain_mlm, text_sentences
from extraction.str_encoder import StrEncoder
from extraction.tokenizer import CharTokenizer, build_tokenizer
from extraction.train_config import TrainConfig
from ingest.atomic import write_bytes_atomic
from ingest.bieos import tag_set
from ingest.corpus import CorpusLoad
from ingest.document import Document
from ingest.examples import SentenceExample, document_examples, downsample_no_relation
from ingest.schema import Schema, load_schema
from ingest.split import SIDES, assign_split

logger = logging.getLogger(__name__)
LOG_FILE = "train_log.jsonl"


@dataclass(frozen=True)
class TrainResult:
    """`metrics` is what metrics.json holds; `dev` and `test` are its scores, typed (None for
    an empty split)."""

    model_dir: Path
    model_version: str
    metrics: dict
    seconds: float
    dev: EvaluationReport | None = None
    test: EvaluationReport | None = None

    @property
    def evaluation(self) -> EvaluationReport | None:
        """The scores to show: test, else dev."""
        return self.test or self.dev


# Below this many test reports the test scores are anecdotes: said in the log and on the
# evaluation artifact.
SMALL_TEST_SPLIT = 20


def split_documents(documents: Iterable[Document], seed: int,
                    split: Mapping[str, str] | None = None) -> dict[str, list[Document]]:
    """Train/dev/test by report id: `split` (ingest's split file, read by
    `ingest.split.read_split_file`) when given, else `assign_split(report_id, seed)`."""
    sides: dict[str, list[Document]] = {side: [] for side in SIDES}
    for document in documents:
        if split is None:
            side = assign_split(document.doc_id, seed)
        elif document.doc_id in split:
            side = split[document.doc_id]
        else:
            raise ValueError(f"report {document.doc_id!r} is not in the split file; the "
                             "corpus changed after ingest wrote it: run ingest again")
        sides[side].append(document)
    return sides


@dataclass(frozen=True)
class CorpusAccount:
    """What became of the reports of a training corpus: `used` + `quarantined` + `unannotated`
    == `reports`. A `.txt` without a `.ann` is not a report with no entities but one nobody
    annotated yet: trained on, it would teach the model that its findings are not entities."""

    reports: int
    used: int
    quarantined: int
    unannotated: int


def read_training_corpus(corpus_dir: str | Path, schema: Schema
                         ) -> tuple[list[Document], CorpusAccount]:
    """The valid annotated reports of `corpus_dir` and the account of the others."""
    from ingest.corpus import load_corpus

    return training_documents(load_corpus(corpus_dir, schema, policy="lenient"))


def training_documents(load: CorpusLoad) -> tuple[list[Document], CorpusAccount]:
    """The valid annotated reports of a corpus already read (ingest's `CorpusLoad`: the corpus
    is read once a night) and the account of the others."""
    corpus_dir = load.root
    if load.quarantined:
        logger.warning("%s: %d of %d reports quarantined (errors); training without them",
                       corpus_dir, len(load.quarantined), len(load.reports))
    unannotated = [d for d in load.documents if not d.annotated]
    if unannotated:
        shown = ", ".join(d.doc_id for d in unannotated[:5])
        logger.warning("%s: %d of %d reports have no .ann (not annotated: %s%s); training "
                       "without them: annotate them or move them to the archive", corpus_dir,
                       len(unannotated), len(load.reports), shown,
                       ", ..." if len(unannotated) > 5 else "")
    documents = [d for d in load.documents if d.annotated]
    if not documents:
        raise ValueError(f"{corpus_dir}: no valid annotated report; check it with "
                         "`angiokg validate`")
    account = CorpusAccount(len(load.reports), len(documents), len(load.quarantined),
                            len(unannotated))
    return documents, account


def read_corpus(corpus_dir: str | Path, schema: Schema) -> list[Document]:
    """The valid annotated reports of `corpus_dir` (see `read_training_corpus`)."""
    return read_training_corpus(corpus_dir, schema)[0]


def archive_texts(archive: str | Path | None, limit: int | None = None) -> list[str]:
    """Texts of the archive's readable reports, the first `limit` of them when given (a
    hospital's archive is read for pre-training, not held whole in memory)."""
    if archive is None:
        return []
    from itertools import islice

    from ingest.archive import iter_reports

    texts = (r.text for r in iter_reports(archive) if r.text is not None)
    return list(islice(texts, limit))


def prepare_encoder(
    config: TrainConfig, texts: Sequence[str], work_dir: Path, bert_dir: str | Path | None
) -> tuple[BertModel, CharTokenizer, dict[str, float]]:
    """(encoder, tokenizer, timings): a given checkpoint, else one built from `texts`."""
    if bert_dir is not None:
        return load_bert(bert_dir), CharTokenizer.from_dir(bert_dir), {}
    began = time.monotonic()
    tokenizer = build_tokenizer(texts, work_dir / "tokenizer", config.vocab_size)
    timings = {"tokenizer_seconds": time.monotonic() - began}
    if config.pretrain_epochs <= 0:
        torch.manual_seed(config.seed)
        return new_bert(len(tokenizer), config.bert_size), tokenizer, timings
    sentences = text_sentences(texts, config.max_chars)
    result = pretrain_mlm(sentences, tokenizer, work_dir / "pretrained", config.bert_size,
                          config.pretrain, config.device)
    timings["pretrain_seconds"] = result.seconds
    timings["pretrain_steps"] = result.steps
    timings["pretrain_final_loss"] = result.final_loss
    return load_bert(result.out_dir), tokenizer, timings


def examples_of(documents: Iterable[Document], schema: Schema, max_chars: int
                ) -> list[SentenceExample]:
    return [ex for d in documents for ex in document_examples(d, schema, max_chars)]


def allowed_candidates_only(examples: Iterable[SentenceExample], schema: Schema
                            ) -> list[SentenceExample]:
    """Drop pairs whose types no relation allows: prediction never asks the classifier about
    them (the schema already says NoRelation), so training on them only dilutes the hard
    negatives, e.g. a Degree and the wrong vessel of the same sentence."""
    result = []
    for ex in examples:
        kept = tuple(c for c in ex.candidates
                     if schema.pair_allowed(ex.mentions[c.first].type, ex.mentions[c.second].type))
        result.append(replace(ex, candidates=kept))
    return result


def _optimizer(model: FocusedAttentionModel, config: TrainConfig) -> torch.optim.Optimizer:
    """Encoder and heads at their own rates; no weight decay on biases and LayerNorm."""
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_head = not name.startswith("encoder.")
        no_decay = param.ndim < 2 or "LayerNorm" in name or "crf" in name
        groups.setdefault((is_head, no_decay), []).append(param)
    return torch.optim.AdamW([
        {"params": params,
         "lr": config.head_learning_rate if is_head else config.learning_rate,
         "weight_decay": 0.0 if no_decay else config.weight_decay}
        for (is_head, no_decay), params in groups.items()
    ])


def dev_score(report: EvaluationReport, metric: str, mode: str = "joint") -> float:
    """The early-stopping score; a single-task model is scored on the task it trains.

    An RC-only model has an untrained NER head, so RC on predicted entities stays near 0 and
    would stop it after one epoch: it is scored on RC with gold entities instead.
    """
    if mode == "ner_only":
        return report.ner.f1
    if mode == "rc_only":
        return report.rc_gold.f1
    if metric == "ner":
        return report.ner.f1
    if metric == "rc":
        return report.rc_predicted.f1
    return (report.ner.f1 + report.rc_predicted.f1) / 2


def drop_characters(batch: Batch, unk_id: int, rate: float, generator: torch.Generator
                    ) -> Batch:
    """The batch with a share `rate` of its characters read as [UNK] ([CLS], [SEP] and padding
    untouched): dropout on the input, so unknown characters are read from their context."""
    if rate <= 0.0:
        return batch
    chars = torch.zeros(batch.input_ids.shape, dtype=torch.bool)
    chars[:, 1 : 1 + batch.char_mask.shape[1]] = batch.char_mask
    drop = (torch.rand(batch.input_ids.shape, generator=generator) < rate) & chars
    return replace(batch, input_ids=torch.where(drop, unk_id, batch.input_ids))


def evaluation_steps(sentences: int, config: TrainConfig) -> tuple[int, ...]:
    """The optimizer steps after which dev is scored, `config.epochs` of them; the last is the
    training's length. Without `train_steps`, after each pass over the `sentences` (batches of
    `batch_size`); with it, at even intervals of `train_steps`."""
    if config.train_steps is None:
        per_pass = math.ceil(sentences / config.batch_size)
        return tuple(per_pass * epoch for epoch in range(1, config.epochs + 1))
    return tuple(round(config.train_steps * epoch / config.epochs)
                 for epoch in range(1, config.epochs + 1))


def _passes(lengths: Sequence[int], batch_size: int, rng: random.Random) -> Iterator[list[int]]:
    """Index batches, pass after pass, each pass reshuffled (as an epoch is); none when there
    is no sentence."""
    while lengths:
        yield from length_batches(lengths, batch_size, rng)


def fit(
    model: FocusedAttentionModel,
    tokenizer: CharTokenizer,
    schema: Schema,
    train: Sequence[EncodedSentence],
    dev: Sequence[Document],
    config: TrainConfig,
    log_path: Path | None = None,
    device: torch.device | None = None,
) -> list[dict]:
    """Fine-tune in place; leaves the best dev epoch's weights in `model`; returns the log."""
    device = device or pick_device(config.device)
    model.to(device)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    lengths = [s.num_chars for s in train]
    plan = evaluation_steps(len(train), config)
    total = max(1, plan[-1])
    optimizer = _optimizer(model, config)
    schedule = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total), total)
    use_bf16 = device.type == "cuda"
    extractor = Extractor(model, tokenizer, schema, max_chars=config.max_chars, device=device)
    history: list[dict] = []
    best_score, best_state, best_epoch, waited = -1.0, None, 0, 0
    began = time.monotonic()
    quiet = not sys.stderr.isatty()
    stream = _passes(lengths, config.batch_size, rng)
    done = 0
    for epoch, until in enumerate(plan, 1):
        model.train()
        sums = {"loss": 0.0, "ner_loss": 0.0, "rc_loss": 0.0}
        batches = list(islice(stream, until - done))
        done = until
        bar = tqdm(batches, desc=f"epoch {epoch}/{config.epochs}", disable=quiet, unit="batch")
        for indexes in bar:
            batch = collate([train[i] for i in indexes], tokenizer.pad_id)
            batch = drop_characters(batch, tokenizer.unk_id, config.unk_rate, generator).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                losses = model.losses(batch)
            optimizer.zero_grad(set_to_none=True)
            losses.total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            schedule.step()
            sums["loss"] += float(losses.total.detach())
            sums["ner_loss"] += float(losses.ner.detach()) if losses.ner is not None else 0.0
            sums["rc_loss"] += float(losses.rc.detach()) if losses.rc is not None else 0.0
            bar.set_postfix(loss=f"{float(losses.total.detach()):.3f}")
        entry: dict = {"epoch": epoch, **{k: v / max(1, len(batches)) for k, v in sums.items()},
                       "steps": done, "lr": schedule.get_last_lr()[0]}
        if dev:
            report = evaluate_extractor(extractor, dev)
            entry["dev"] = report.summary()
            score = dev_score(report, config.early_stop_metric, config.mode)
        else:
            score = float(epoch)  # nothing to stop on: the last epoch is the best
        entry["seconds"] = time.monotonic() - began
        history.append(entry)
        logger.info("epoch %d: %s", epoch, json.dumps(entry))
        if log_path is not None:
            with log_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")
        if score > best_score:
            best_score, best_epoch, waited = score, epoch, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            waited += 1
            if waited >= config.patience:
                logger.info("early stop after epoch %d (best %d)", epoch, best_epoch)
                break
        if config.max_train_seconds is not None and entry["seconds"] > config.max_train_seconds:
            logger.info("fine-tuning stopped at its time cap after epoch %d", epoch)
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    history.append({"best_epoch": best_epoch, "best_dev_score": best_score})
    return history


def training_examples(train: Sequence[Document], schema: Schema, config: TrainConfig
                      ) -> tuple[list[Document], list[SentenceExample]]:
    """(augmented copies, sentence examples) that fine-tuning on the `train` reports sees:
    the reports and their copies cut into sentences, candidate pairs as the config says."""
    augmented = augment_corpus(train, config.augment)
    examples = examples_of([*train, *augmented], schema, config.max_chars)
    if config.rc_train_pairs == "allowed":
        examples = allowed_candidates_only(examples, schema)
    return augmented, downsample_no_relation(examples, config.no_relation_keep_rate, config.seed)


def epoch_steps(train: Sequence[Document], schema: Schema, config: TrainConfig) -> int:
    """Optimizer steps of `config.epochs` passes over the `train` reports (and their augmented
    copies): what a training on them takes without `train_steps`."""
    _, examples = training_examples(train, schema, config)
    return evaluation_steps(len(examples), replace(config, train_steps=None))[-1]


def train_documents(
    documents: Sequence[Document],
    schema: Schema,
    out_dir: str | Path,
    config: TrainConfig,
    bert_dir: str | Path | None = None,
    extra_texts: Sequence[str] = (),
    corpus: CorpusAccount | None = None,
    split: Mapping[str, str] | None = None,
) -> TrainResult:
    """Train on `documents`; `corpus`, when given, says what was left out of them, and goes
    first into the training log and into the metrics; `split` is ingest's split (else the
    seeded one of `config.split_seed`)."""
    began = time.monotonic()
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    out = Path(out_dir)
    work = out.with_name(f".{out.name}.work")
    work.mkdir(parents=True, exist_ok=True)
    sides = split_documents(documents, config.split_seed, split)
    logger.info("split: %s", {k: len(v) for k, v in sides.items()})
    if len(sides["test"]) < SMALL_TEST_SPLIT:
        logger.warning("the test split has %d report(s), fewer than %d: its scores move by whole "
                       "points with one report; annotate more reports (8:1:1, so %d in all) "
                       "before trusting them", len(sides["test"]), SMALL_TEST_SPLIT,
                       SMALL_TEST_SPLIT * 10)
    texts = [d.text for d in sides["train"]] + list(extra_texts)
    bert, tokenizer, timings = prepare_encoder(config, texts, work, bert_dir)
    tags = tag_set(schema.entity_types)
    labels = schema.relation_labels
    torch.manual_seed(config.seed)
    encoder = StrEncoder(bert, config.k, rc_mask=config.rc_mask,
                         rc_strategy=config.rc_strategy)
    model = FocusedAttentionModel(encoder, tags, labels, config.mode, config.dropout)
    augmented, train_examples = training_examples(sides["train"], schema, config)
    tag_index = {t: i for i, t in enumerate(tags)}
    label_index = {r: i for i, r in enumerate(labels)}
    encoded = [encode_example(ex, tokenizer, tag_index, label_index) for ex in train_examples]
    log_path = work / LOG_FILE
    log_path.unlink(missing_ok=True)
    if corpus is not None:
        log_path.write_text(json.dumps({"corpus": asdict(corpus)}) + "\n", encoding="utf-8")
    fit_began = time.monotonic()
    device = pick_device(config.device)
    history = fit(model, tokenizer, schema, encoded, sides["dev"], config, log_path, device)
    timings["finetune_seconds"] = time.monotonic() - fit_began
    metrics: dict = {"split": {k: len(v) for k, v in sides.items()},
                     "augmented_reports": len(augmented),
                     "train_sentences": len(encoded),
                     "train_pairs": sum(len(s.pairs) for s in encoded),
                     "best_epoch": history[-1]["best_epoch"], "device": str(device)}
    if corpus is not None:
        metrics["corpus"] = asdict(corpus)
    extractor = Extractor(model, tokenizer, schema, max_chars=config.max_chars, device=device)
    calibration_began = time.monotonic()
    temperatures = fit_temperatures(extractor, sides["dev"])
    extractor.temperatures = temperatures
    metrics["calibration"] = temperatures.fit
    timings["calibration_seconds"] = time.monotonic() - calibration_began
    reports = {side: evaluate_extractor(extractor, sides[side])
               for side in ("dev", "test") if sides[side]}
    metrics.update({side: report.to_dict() for side, report in reports.items()})
    timings["total_seconds"] = time.monotonic() - began
    metrics["timings"] = timings
    version = save_model_dir(out, model.cpu(), tokenizer, schema, config, metrics, temperatures)
    write_bytes_atomic(out / LOG_FILE, log_path.read_bytes())
    return TrainResult(out, version, metrics, time.monotonic() - began, reports.get("dev"),
                       reports.get("test"))


def train(
    corpus_dir: str | Path,
    out_dir: str | Path,
    config: TrainConfig,
    bert_dir: str | Path | None = None,
    archive: str | Path | None = None,
    schema: Schema | None = None,
    load: CorpusLoad | None = None,
    split: Mapping[str, str] | None = None,
) -> TrainResult:
    """Train on the corpus in `corpus_dir`, or on `load` when it was read already (its valid
    annotated reports), split as `split` says when given."""
    schema = schema or load_schema()
    documents, account = (training_documents(load) if load is not None
                          else read_training_corpus(corpus_dir, schema))
    # A checkpoint is already pre-trained: the archive would only be read for nothing.
    extra = archive_texts(archive, config.pretrain_archive_reports) if bert_dir is None else []
    return train_documents(documents, schema, out_dir, config, bert_dir, extra,
                           corpus=account, split=split)
