from transformers import BertTokenizerFast

from extraction.tokenizer import (
    SPECIAL_TOKENS,
    CharTokenizer,
    TokenizerError,
    build_tokenizer,
    model_text,
)

REPORTS = ["左主干未见明显狭窄。前降支近段狭窄70%，LAD 70%-80%。", "右冠中段狭窄90%以上；"]


def test_one_id_per_character_between_cls_and_sep(tmp_path):
    tok = build_tokenizer(REPORTS, tmp_path, vocab_size=200)
    text = "前降支狭窄70%"
    ids = tok.encode(text)
    assert len(ids) == len(text) + 2
    assert ids[0] == tok.cls_id and ids[-1] == tok.sep_id
    assert [tok.vocab[i] for i in ids[1:-1]] == list(text)


def test_every_corpus_character_is_in_the_vocabulary(tmp_path):
    tok = build_tokenizer(REPORTS, tmp_path, vocab_size=200)
    for ch in "".join(REPORTS):
        if not ch.isspace():
            assert tok.char_id(ch) != tok.unk_id, ch


def test_whitespace_unknown_and_case_fallback(tmp_path):
    tok = build_tokenizer(REPORTS, tmp_path, vocab_size=200)
    assert tok.vocab[tok.char_id(" ")] == "[unused1]"
    assert tok.char_id("鬱") == tok.unk_id
    assert tok.char_id("L") == tok.char_id("l")


def test_saved_files_load_in_transformers_and_70_percent_is_stable(tmp_path):
    build_tokenizer(REPORTS, tmp_path, vocab_size=200)
    fast = BertTokenizerFast.from_pretrained(str(tmp_path))
    assert fast.tokenize("狭窄70%") == ["狭", "窄", "70", "%"]
    assert fast.tokenize("70%狭窄") == ["70", "%", "狭", "窄"]
    assert CharTokenizer.from_dir(tmp_path).vocab == CharTokenizer.from_dir(tmp_path).vocab


def test_a_bert_chinese_style_vocab_works(tmp_path):
    # bert-base-chinese: [PAD], [unused1..99], [UNK], [CLS], [SEP], [MASK], then characters.
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(1, 100)]
    vocab += ["[UNK]", "[CLS]", "[SEP]", "[MASK]", "%", "0", "7", "狭", "窄", "##窄"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = CharTokenizer.from_dir(tmp_path)
    assert tok.cls_id == 101 and tok.sep_id == 102
    assert [tok.vocab[i] for i in tok.encode("狭窄70% ")[1:-1]] == [
        "狭", "窄", "7", "0", "%", "[unused1]"]


def test_missing_vocab_says_what_to_do(tmp_path):
    try:
        CharTokenizer.from_dir(tmp_path)
    except TokenizerError as exc:
        assert "tokenizer build" in str(exc)
    else:
        raise AssertionError("expected TokenizerError")


def test_full_width_and_half_width_forms_read_as_the_same_ids(tmp_path):
    tok = build_tokenizer(REPORTS, tmp_path, vocab_size=200)
    full, half = "ＬＡＤ近段狭窄７０％～８０％，右冠；", "LAD近段狭窄70%~80%,右冠;"
    assert tok.encode(full) == tok.encode(half)
    assert tok.encode("70%〜80%") == tok.encode("70%~80%")
    assert tok.encode("近段　狭窄") == tok.encode("近段 狭窄")


def test_folding_keeps_one_token_per_original_character():
    text = "狭窄⑴长20㎜，½"
    assert len(model_text(text)) == len(text)
    assert model_text("ＬＡＤ７０％①") == "lad70%1"
    tok = CharTokenizer((*SPECIAL_TOKENS, *sorted(set(model_text(text)))))
    assert len(tok.encode(text)) == len(text) + 2


def test_the_vocabulary_is_built_from_folded_text(tmp_path):
    tok = build_tokenizer(["ＬＡＤ狭窄７０％", "RCA 50%"], tmp_path, vocab_size=100)
    assert "％" not in tok.vocab and "Ｌ" not in tok.vocab and "%" in tok.vocab
    assert tok.char_id("％") == tok.char_id("%") != tok.unk_id


def test_unknown_characters_are_counted_as_written(tmp_path):
    tok = build_tokenizer(REPORTS, tmp_path, vocab_size=200)
    assert tok.unknown_characters(["鬱狭窄鬱", "ＬＡＤ 鑫"]) == {"鬱": 2, "鑫": 1}
    assert not tok.unknown_characters(["ＬＡＤ７０％，"])
