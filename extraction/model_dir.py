"""A trained model as one self-contained directory: everything prediction needs, nothing else.

    MODEL_DIR/
      encoder/          BERT via save_pretrained + tokenizer files (vocab.txt, tokenizer.json)
      heads.pt          state dicts of the NER head (emissions + CRF) and the RC head
      labels.json       BIEOS tag set and relation labels, in the heads' index order
      schema.conf       the annotation.conf the model was trained for
      schema.sha256     Schema.sha256 of it (types and argument constraints)
      train_config.json the TrainConfig used
      metrics.json      dev/test scores and timings
      calibration.json  temperatures of the NER and RC heads fitted on dev (optional: a
                        directory without it gives raw confidences)
      model_version     "<dir name>-<first 10 hex of sha256 of the weights and calibration>"

A directory made for another schema is refused on load: its labels would mean other things.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from extraction.bert_factory import load_bert, save_bert
from extraction.model import FocusedAttentionModel
from extraction.model_layout import (
    CONFIG,
    ENCODER,
    HEADS,
    LABELS,
    METRICS,
    SCHEMA,
    SCHEMA_HASH,
    VERSION,
    ModelDirError,
    check_model_files,
    missing_file_error,
)
from extraction.str_encoder import StrEncoder
from extraction.temperature import CALIBRATION, Temperatures
from extraction.tokenizer import CharTokenizer
from extraction.train_config import TrainConfig
from ingest.atomic import atomic_directory
from ingest.schema import Schema, parse_schema


class SchemaMismatch(ModelDirError):
    pass


@dataclass(frozen=True)
class LoadedModel:
    path: Path
    model: FocusedAttentionModel
    tokenizer: CharTokenizer
    schema: Schema
    config: TrainConfig
    metrics: dict
    model_version: str
    temperatures: Temperatures = Temperatures()


def _weights_hash(directory: Path) -> str:
    digest = hashlib.sha256()
    # The calibration is hashed too: it changes every confidence written downstream.
    paths = sorted((directory / ENCODER).glob("*.safetensors")) + [directory / HEADS]
    paths += [p for p in (directory / CALIBRATION,) if p.is_file()]
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def save_model_dir(
    out_dir: str | Path,
    model: FocusedAttentionModel,
    tokenizer: CharTokenizer,
    schema: Schema,
    config: TrainConfig,
    metrics: dict,
    temperatures: Temperatures | None = None,
) -> str:
    """Write the directory (to a sibling temp dir first, then swapped in); return model_version."""
    target = Path(out_dir)
    with atomic_directory(target) as tmp:
        save_bert(model.encoder.bert, tmp / ENCODER)
        tokenizer.save(tmp / ENCODER)
        torch.save({"ner_head": model.ner_head.state_dict(),
                    "rc_head": model.rc_head.state_dict()}, tmp / HEADS)
        (tmp / LABELS).write_text(json.dumps(
            {"tags": list(model.tags), "relation_labels": list(model.relation_labels)},
            ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        (tmp / SCHEMA).write_text(schema.source_text, encoding="utf-8")
        (tmp / SCHEMA_HASH).write_text(schema.sha256 + "\n", encoding="utf-8")
        config.save(tmp / CONFIG)
        (tmp / METRICS).write_text(json.dumps(metrics, ensure_ascii=False, indent=1) + "\n",
                                   encoding="utf-8")
        if temperatures is not None:
            temperatures.save(tmp)
        version = f"{target.name}-{_weights_hash(tmp)}"
        (tmp / VERSION).write_text(version + "\n", encoding="utf-8")
    return version


def _read(path: Path) -> str:
    if not path.is_file():
        raise missing_file_error(path)
    return path.read_text(encoding="utf-8")


def load_model_dir(path: str | Path, schema: Schema | None = None) -> LoadedModel:
    """Load a model directory; with `schema`, refuse one trained for another schema."""
    root = check_model_files(path)
    saved_hash = _read(root / SCHEMA_HASH).strip()
    if schema is not None and schema.sha256 != saved_hash:
        raise SchemaMismatch(
            f"{root}: the model was trained for schema {saved_hash[:12]} "
            f"({root / SCHEMA}), but the schema in use is {schema.sha256[:12]}: its entity or "
            "relation types differ. Retrain with `angiokg train` on a corpus annotated with the "
            "current annotation.conf, or run with the schema the model was made for."
        )
    own_schema = parse_schema(_read(root / SCHEMA))
    if own_schema.sha256 != saved_hash:
        raise ModelDirError(f"{root / SCHEMA}: does not match {root / SCHEMA_HASH}; "
                            "the directory was edited by hand; retrain or restore it")
    config = TrainConfig.from_dict(json.loads(_read(root / CONFIG)), str(root / CONFIG),
                                   base=TrainConfig())
    labels = json.loads(_read(root / LABELS))
    if tuple(labels["relation_labels"]) != own_schema.relation_labels:
        raise ModelDirError(f"{root / LABELS}: relation labels do not match {root / SCHEMA}")
    bert = load_bert(root / ENCODER)
    encoder = StrEncoder(bert, config.k, rc_mask=config.rc_mask,
                         rc_strategy=config.rc_strategy)
    model = FocusedAttentionModel(encoder, labels["tags"], labels["relation_labels"],
                                  config.mode, config.dropout)
    heads = torch.load(root / HEADS, map_location="cpu", weights_only=True)
    model.ner_head.load_state_dict(heads["ner_head"])
    model.rc_head.load_state_dict(heads["rc_head"])
    model.eval()
    metrics_path = root / METRICS
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
    return LoadedModel(root, model, CharTokenizer.from_dir(root / ENCODER), own_schema, config,
                       metrics, _read(root / VERSION).strip(), Temperatures.load(root))
