"""Saving an encoder writes no transformers progress bar to stderr (it landed in log files and
Prefect logs as carriage-return frames), leaves the caller's bar setting as it was, and the saved
directory loads back to the same weights."""

import torch
from transformers.utils import logging as hf_logging

from extraction.bert_factory import BertSize, load_bert, new_bert, save_bert

TINY = BertSize(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)


def test_save_writes_no_progress_bar_and_loads_back(tmp_path, capfd):
    torch.manual_seed(0)
    bert = new_bert(40, TINY)
    save_bert(bert, tmp_path / "enc")
    err = capfd.readouterr().err
    assert "Writing model shards" not in err
    loaded = load_bert(tmp_path / "enc")
    saved, back = bert.state_dict(), loaded.state_dict()
    assert saved.keys() == back.keys()
    for name, tensor in saved.items():
        assert torch.equal(tensor, back[name]), name


def test_plain_save_pretrained_would_show_the_bar(tmp_path, capfd):
    # The premise of the fix: without it transformers does print the bar to a non-tty stderr.
    new_bert(40, TINY).save_pretrained(str(tmp_path / "plain"))
    assert "Writing model shards" in capfd.readouterr().err


def test_bar_setting_is_restored(tmp_path):
    hf_logging.enable_progress_bar()
    save_bert(new_bert(40, TINY), tmp_path / "a")
    assert hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        save_bert(new_bert(40, TINY), tmp_path / "b")
        assert not hf_logging.is_progress_bar_enabled()
    finally:
        hf_logging.enable_progress_bar()
