"""The path users take with real weights: a checkpoint directory shaped like bert-base-chinese.

The checkpoint is made here (random weights, nothing downloaded): `config.json` with 12 layers
and 768 hidden units, and a `vocab.txt` laid out like BERT-Chinese's (id 0 [PAD], [unused1..99],
100-103 [UNK] [CLS] [SEP] [MASK], then punctuation, digits and letters, CJK characters, and
`##` pieces, 21,128 entries). `angiokg train --bert DIR` fine-tunes it for a few steps and
`angiokg extract` reads an archive with the result.
"""

from __future__ import annotations

import json

import pyarrow.dataset as ds
import pytest
import torch

from ingest.generator import generate_corpus

BERT_CHINESE_VOCAB_SIZE = 21128


def bert_chinese_vocab(size: int = BERT_CHINESE_VOCAB_SIZE) -> list[str]:
    vocab = ["[PAD]", *(f"[unused{i}]" for i in range(1, 100)), "[UNK]", "[CLS]", "[SEP]",
             "[MASK]", "<S>", "<T>"]
    vocab += [chr(c) for c in range(0x21, 0x7F) if not chr(c).isupper()]
    vocab += ["£", "¥", "°", "±", "×", "÷", "—", "‘", "’", "“", "”", "…", "、", "。", "《", "》"]
    cjk = [chr(c) for c in range(0x4E00, 0x9FA6)]  # the CJK Unified Ideographs block
    vocab += cjk
    vocab += [f"##{piece}" for piece in ("s", "ing", "ed", "er", "ly", *"0123456789", *cjk)]
    return vocab[:size]


@pytest.fixture(scope="module")
def bert_chinese_dir(tmp_path_factory):
    from transformers import BertConfig, BertModel

    root = tmp_path_factory.mktemp("bert-base-chinese-shaped")
    vocab = bert_chinese_vocab()
    (root / "vocab.txt").write_text("".join(t + "\n" for t in vocab), encoding="utf-8")
    config = BertConfig(vocab_size=len(vocab), hidden_size=768, num_hidden_layers=12,
                        num_attention_heads=12, intermediate_size=3072,
                        max_position_embeddings=512, type_vocab_size=2)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(root))
    return root


def test_the_shaped_vocabulary_has_bert_chineses_layout(bert_chinese_dir):
    from extraction.tokenizer import CharTokenizer

    tokenizer = CharTokenizer.from_dir(bert_chinese_dir)
    assert len(tokenizer) == BERT_CHINESE_VOCAB_SIZE
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id,
            tokenizer.mask_id) == (0, 100, 101, 102, 103)
    assert tokenizer.vocab[tokenizer.char_id(" ")] == "[unused1]"
    ids = tokenizer.encode("ＬＡＤ近段狭窄７０％")
    assert [tokenizer.vocab[i] for i in ids[1:-1]] == list("lad近段狭窄70%")


def test_train_with_a_bert_chinese_shaped_checkpoint_then_extract_with_it(bert_chinese_dir,
                                                                          tmp_path):
    from flows.cli import main

    corpus, archive = tmp_path / "annotated", tmp_path / "archive"
    generate_corpus(4, seed=21, out_dir=corpus)
    generate_corpus(3, seed=22, out_dir=archive, annotated=False, prefix="arc")
    config = tmp_path / "few-steps.json"
    config.write_text(json.dumps({"profile": "tiny", "epochs": 1, "k": 2, "batch_size": 16,
                                  "max_chars": 126}), encoding="utf-8")
    model = tmp_path / "model"
    device = ["--device", "cuda"] if torch.cuda.is_available() else []  # bf16 autocast there
    assert main(["train", str(corpus), "--out", str(model), "--bert", str(bert_chinese_dir),
                 "--config", str(config), *device]) == 0
    saved = json.loads((model / "encoder" / "config.json").read_text(encoding="utf-8"))
    assert (saved["num_hidden_layers"], saved["hidden_size"]) == (12, 768)
    assert (model / "encoder" / "vocab.txt").read_text(encoding="utf-8") == (
        bert_chinese_dir / "vocab.txt").read_text(encoding="utf-8")
    log = [json.loads(line) for line in (model / "train_log.jsonl").read_text().splitlines()]
    (trained,) = [entry for entry in log if "epoch" in entry]
    assert trained["epoch"] == 1 and trained["loss"] > 0

    out = tmp_path / "extract"
    assert main(["extract", str(model), str(archive), "--out", str(out), *device]) == 0
    reports = ds.dataset(out / "reports", format="parquet", partitioning="hive").to_table()
    assert sorted(reports.column("status").to_pylist()) == ["ok"] * 3
    entities = ds.dataset(out / "entities", format="parquet", partitioning="hive").to_table()
    texts = {p.stem: p.read_text(encoding="utf-8") for p in archive.glob("*.txt")}
    for row in entities.to_pylist():
        assert texts[row["report_id"]][row["start"]:row["end"]] == row["text"]
