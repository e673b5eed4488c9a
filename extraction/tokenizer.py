"""Character tokens for the model, and a WordPiece vocabulary built from report text.

The model reads ONE TOKEN PER CHARACTER: BIEOS tags are per character and the paper feeds BERT
character tokens, so token i+1 is character i of the sentence ([CLS] is token 0) and offsets
never need re-aligning. The vocabulary is a WordPiece one made by the `tokenizers` library
(CJK characters one token each, as BERT-Chinese does) and saved so that
`transformers.BertTokenizerFast.from_pretrained(dir)` loads it; we then make sure every single
character of the corpus is an entry, so character look-up rarely needs [UNK].

CHARACTER NORMALIZATION THE MODEL SEES, OFFSETS IT DOES NOT: before the look-up each character
is folded (`model_char`): its NFKC form (full-width ＬＡＤ, ７０％, ～, ，：；
become LAD, 70%, ~, ,:; and ① becomes 1), a few dashes NFKC leaves alone (〜 — – −), then
lower case (BERT-Chinese is uncased). A character whose NFKC form is several characters
(㎜, ⑴) keeps one token, the first, so token i+1 is still character i and every offset stays
an offset into the original text. The vocabulary is built from folded text; a character is
looked up folded, then as written, else [UNK] (`unknown_characters` counts those: a
vocabulary drift signal in each run's summary). Whitespace (a space inside a sentence, a tab,
an ideographic space) maps to [unused1] when the vocabulary has it (ours and
bert-base-chinese's do) so the model can tell a gap from an unknown character; else [UNK].
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from ingest.atomic import write_text_atomic

PAD, SPACE, UNK, CLS, SEP, MASK = "[PAD]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, SPACE, UNK, CLS, SEP, MASK)
VOCAB_FILE = "vocab.txt"
# Range dashes that NFKC keeps distinct from "-" and "~" but reports use for the same thing.
_EXTRA_FOLDS = {"〜": "~", "—": "-", "–": "-", "−": "-", "―": "-"}


@lru_cache(maxsize=65536)
def model_char(ch: str) -> str:
    """The one character the model reads for `ch` (NFKC, a few dashes, lower case)."""
    folded = unicodedata.normalize("NFKC", ch)[:1] or ch
    folded = _EXTRA_FOLDS.get(folded, folded)
    lower = folded.lower()
    return lower if len(lower) == 1 else folded


def model_text(text: str) -> str:
    """`text` as the model reads it: one folded character per character, same length."""
    return "".join(model_char(ch) for ch in text)


class TokenizerError(ValueError):
    """A vocabulary directory could not be used."""


@dataclass(frozen=True)
class CharTokenizer:
    """Maps each character of a sentence to one vocabulary id; `[CLS] chars [SEP]`."""

    vocab: tuple[str, ...]

    def __post_init__(self) -> None:
        index = {token: i for i, token in enumerate(self.vocab)}
        missing = [t for t in (PAD, UNK, CLS, SEP, MASK) if t not in index]
        if missing:
            raise TokenizerError(f"vocabulary lacks the special tokens {missing}")
        object.__setattr__(self, "_index", index)

    @classmethod
    def from_dir(cls, directory: str | Path) -> CharTokenizer:
        path = Path(directory) / VOCAB_FILE
        if not path.is_file():
            raise TokenizerError(
                f"{path}: no vocab.txt; build one with `angiokg tokenizer build` "
                "or point at a BERT checkpoint directory that has it"
            )
        lines = path.read_text(encoding="utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return cls(tuple(lines))

    def id_of(self, token: str) -> int:
        return self._index[token]  # type: ignore[attr-defined]

    @property
    def pad_id(self) -> int:
        return self.id_of(PAD)

    @property
    def cls_id(self) -> int:
        return self.id_of(CLS)

    @property
    def sep_id(self) -> int:
        return self.id_of(SEP)

    @property
    def mask_id(self) -> int:
        return self.id_of(MASK)

    @property
    def unk_id(self) -> int:
        return self.id_of(UNK)

    @property
    def special_ids(self) -> frozenset[int]:
        index = self._index  # type: ignore[attr-defined]
        return frozenset(index[t] for t in SPECIAL_TOKENS if t in index)

    def __len__(self) -> int:
        return len(self.vocab)

    def char_id(self, ch: str) -> int:
        index = self._index  # type: ignore[attr-defined]
        if ch.isspace():
            return index.get(SPACE, index[UNK])
        found = index.get(model_char(ch))
        if found is None:
            found = index.get(ch, index[UNK])
        return found

    def unknown_characters(self, texts: Iterable[str]) -> Counter[str]:
        """How often each character of `texts` (as written) is read as [UNK]."""
        unk = self.unk_id
        return Counter(ch for text in texts for ch in text if self.char_id(ch) == unk)

    def encode(self, text: str) -> list[int]:
        """`[CLS] c_0 … c_{n-1} [SEP]`: exactly len(text) + 2 ids."""
        return [self.cls_id, *(self.char_id(ch) for ch in text), self.sep_id]

    def batch(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded `(input_ids, attention_mask)`, both (B, max_len + 2) LongTensors."""
        encoded = [self.encode(t) for t in texts]
        width = max(len(e) for e in encoded)
        ids = torch.full((len(encoded), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, e in enumerate(encoded):
            ids[row, : len(e)] = torch.tensor(e, dtype=torch.long)
            mask[row, : len(e)] = 1
        return ids, mask

    def save(self, directory: str | Path) -> Path:
        """Write vocab.txt plus the files `BertTokenizerFast.from_pretrained` reads."""
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        vocab_path = target / VOCAB_FILE
        write_text_atomic(vocab_path, "".join(t + "\n" for t in self.vocab))
        from transformers import BertTokenizerFast

        # transformers 5 builds the fast tokenizer from a vocab dict (`vocab_file=` is ignored)
        fast = BertTokenizerFast(
            vocab={t: i for i, t in enumerate(self.vocab)}, do_lower_case=True,
            tokenize_chinese_chars=True, strip_accents=False,
        )
        fast.save_pretrained(str(target))
        return target


def build_vocabulary(
    texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 1
) -> tuple[str, ...]:
    """A WordPiece vocabulary (special tokens first) that holds every character of `texts`."""
    from tokenizers import BertWordPieceTokenizer

    texts = [model_text(t) for t in texts]
    trainer_tok = BertWordPieceTokenizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=True
    )
    trainer_tok.train_from_iterator(
        texts, vocab_size=vocab_size, min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS), show_progress=False,
    )
    by_id = sorted(trainer_tok.get_vocab().items(), key=lambda item: item[1])
    vocab = [token for token, _ in by_id]
    # Character look-up is what the model uses: add any character the trainer left out (e.g. a
    # letter only ever seen inside a word, which WordPiece stores as "##x").
    present = set(vocab)
    extra = sorted(
        {ch.lower() for text in texts for ch in text if not ch.isspace()} - present
    )
    return tuple(vocab + extra)


def build_tokenizer(
    texts: Iterable[str], out_dir: str | Path, vocab_size: int = 8000
) -> CharTokenizer:
    tokenizer = CharTokenizer(build_vocabulary(texts, vocab_size=vocab_size))
    tokenizer.save(out_dir)
    return tokenizer
