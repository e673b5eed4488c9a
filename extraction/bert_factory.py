"""Small BERTs made from scratch, and any Hugging Face BERT checkpoint loaded offline.

The default size (hidden 256, 4 layers, 4 heads) pre-trains and fine-tunes on two CPU cores in
minutes; a real `bert-base-chinese` directory loads the same way when a user has one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from transformers import BertConfig, BertModel
from transformers.utils import logging as hf_logging


class CheckpointError(ValueError):
    """A BERT checkpoint directory could not be loaded."""


@dataclass(frozen=True)
class BertSize:
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    max_position_embeddings: int = 256
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1


def small_bert_config(vocab_size: int, size: BertSize = BertSize()) -> BertConfig:
    return BertConfig(vocab_size=vocab_size, type_vocab_size=2, **asdict(size))


def new_bert(vocab_size: int, size: BertSize = BertSize()) -> BertModel:
    """A randomly initialised encoder (no pooler: the heads read hidden states)."""
    return BertModel(small_bert_config(vocab_size, size), add_pooling_layer=False)


def load_bert(directory: str | Path) -> BertModel:
    """`BertModel` from a checkpoint directory, never touching the network."""
    path = Path(directory)
    if not (path / "config.json").is_file():
        raise CheckpointError(
            f"{path}: no config.json; give a directory written by save_pretrained "
            "(e.g. a downloaded bert-base-chinese, or `angiokg pretrain --out`)"
        )
    return BertModel.from_pretrained(str(path), local_files_only=True, add_pooling_layer=False)


def save_bert(bert: BertModel, directory: str | Path) -> None:
    """`save_pretrained` without transformers' "Writing model shards" bar: the bar goes to stderr
    whatever it is, so a training whose stderr is a log file or a Prefect log got a line of
    carriage-return frames per save; our own logging already says what is saved where."""
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        bert.save_pretrained(str(directory))
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def pick_device(name: str | None = None):
    """`name` when given ("cpu", "cuda", "cuda:1"), else CUDA when there is one, else CPU."""
    import torch

    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
