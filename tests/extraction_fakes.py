"""A regex stand-in for `extraction.predict.Extractor`, so run logic is tested without torch.

Not a test module (no `test_` prefix); the extraction run tests import it.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.document import Document, Entity, Relation, Span
from ingest.schema import load_schema

if TYPE_CHECKING:  # torch is imported only by the tests that use a real model
    from extraction.model import FocusedAttentionModel
    from extraction.predict import Extractor
    from extraction.temperature import Temperatures
    from extraction.tokenizer import CharTokenizer

VESSEL = re.compile("前降支|回旋支|右冠")
DEGREE = re.compile("狭窄")


class FakeExtractor:
    """Marks vessels and stenoses by regex; raises on a text containing 'BOOM'."""

    def __init__(self, shift: int = 0, model_version: str = "fake-1", delay: float = 0.0
                 ) -> None:
        self.calls = 0
        self.shift = shift
        self.model_version = model_version
        self.schema = load_schema()
        self.delay = delay  # seconds per report: lets the crash test kill a run midway

    def extract(self, documents: Iterable[Document], batch_size: int = 64) -> Iterator[Document]:
        for document in documents:
            self.calls += 1
            time.sleep(self.delay)
            if "BOOM" in document.text:
                raise RuntimeError("CUDA out of memory (simulated)")
            entities, relations = [], []
            for kind, pattern in (("BodyPart", VESSEL), ("Degree", DEGREE)):
                for m in pattern.finditer(document.text):
                    start = m.start() + self.shift
                    entities.append(Entity(f"T{len(entities) + 1}", kind,
                                           (Span(start, start + len(m.group())),), m.group(),
                                           confidence=0.9))
            degrees = [e for e in entities if e.type == "Degree"]
            vessels = [e for e in entities if e.type == "BodyPart"]
            if degrees and vessels:
                relations.append(Relation("R1", "Modifier", degrees[0].id, vessels[0].id,
                                          confidence=0.8))
            yield Document(document.doc_id, document.text, tuple(entities), tuple(relations),
                           annotated=False, source=document.source)

    def unknown_characters(self, texts: Iterable[str]) -> Counter[str]:
        return Counter()  # a regex has no vocabulary: it knows every character


def placeholder_model_dir(root: Path) -> Path:
    """`root/model` with every file a model directory needs, empty: it passes the commands'
    file check (extraction.model_layout) for tests whose loader is a spy and reads nothing."""
    from extraction.model_layout import REQUIRED

    model = root / "model"
    for name in REQUIRED:
        (model / name).parent.mkdir(parents=True, exist_ok=True)
        (model / name).touch()
    return model


def train_tiny_model(model_dir: Path, reports: int = 6) -> str:
    """A real model directory in seconds (the `tiny` profile, one epoch on a few generated
    reports): it predicts poorly, but through the real `Extractor`; returns its version."""
    from extraction.train import train_documents
    from extraction.train_config import profile
    from ingest.generator import generate_report

    documents = [generate_report(i, 7) for i in range(reports)]
    config = replace(profile("tiny"), epochs=1)
    return train_documents(documents, load_schema(), model_dir, config).model_version


# --- a hand-set model whose doubt is known ---------------------------------------------------

# Reports whose sentences alternate Degree/BodyPart characters under the hand-set model below:
# a sentence of L characters has ceil(L/2) * floor(L/2) Degree-BodyPart pairs.
REPORTS = {"r2": "狭窄。", "r6": "前降支狭窄闭塞。", "r4": "右冠狭窄。",
           "r9": "回旋支近段狭窄闭塞。", "r1": "通畅。"}


def pairs_of(text: str) -> int:
    length = len(text)  # the 。 is a character of the sentence too
    return math.ceil(length / 2) * (length // 2)


def tiny_model_with_zeroed_crf(texts, schema) -> tuple[FocusedAttentionModel, CharTokenizer]:
    """A tiny untrained model (16 hidden, 2 layers, K=1, seed 0) whose vocabulary is the
    characters of `texts` and whose CRF transitions are all zero: the hand-set models of the
    tests start here and set the emissions, transitions and RC logits they need."""
    import torch

    from extraction.bert_factory import BertSize, new_bert
    from extraction.model import FocusedAttentionModel
    from extraction.str_encoder import StrEncoder
    from extraction.tokenizer import SPECIAL_TOKENS, CharTokenizer
    from ingest.bieos import tag_set

    chars = sorted({c for text in texts for c in text})
    tokenizer = CharTokenizer((*SPECIAL_TOKENS, *chars))
    size = BertSize(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=32, max_position_embeddings=64)
    torch.manual_seed(0)
    model = FocusedAttentionModel(StrEncoder(new_bert(len(tokenizer), size), 1),
                                  tag_set(schema.entity_types), schema.relation_labels,
                                  dropout=0.0)
    with torch.no_grad():
        crf = model.ner_head.crf.parametrizations
        for name in ("start_transitions", "transitions", "end_transitions"):
            getattr(crf, name).original.zero_()
    return model, tokenizer


def hand_set_model(p_relation: float) -> tuple[FocusedAttentionModel, CharTokenizer]:
    """Emissions and logits that ignore the input: every character is tagged S-Degree,
    S-BodyPart, S-Degree, ... with certainty, and every Degree-BodyPart pair gets
    p(Modifier) = p_relation among the labels the schema allows it (NoRelation, Modifier)."""
    import torch

    schema = load_schema()
    model, tokenizer = tiny_model_with_zeroed_crf(REPORTS.values(), schema)
    tags = model.tags
    degree, vessel = tags.index("S-Degree"), tags.index("S-BodyPart")
    labels = schema.relation_labels
    with torch.no_grad():
        model.ner_head.emit.weight.zero_()
        model.ner_head.emit.bias.fill_(-20.0)
        model.ner_head.emit.bias[[degree, vessel]] = 20.0
        crf = model.ner_head.crf.parametrizations
        crf.start_transitions.original[degree] = 20.0
        crf.transitions.original[degree, vessel] = crf.transitions.original[vessel, degree] = 20.0
        out = model.rc_head.out
        out.weight.zero_()
        out.bias.fill_(-30.0)
        out.bias[labels.index("NoRelation")] = 0.0
        out.bias[labels.index("Modifier")] = math.log(p_relation / (1 - p_relation))
    return model, tokenizer


def hand_set_extractor(p_relation: float, temperatures: Temperatures | None = None) -> Extractor:
    from extraction.predict import Extractor

    model, tokenizer = hand_set_model(p_relation)
    return Extractor(model, tokenizer, load_schema(), "hand-set", device="cpu",
                     temperatures=temperatures)


def documents() -> list[Document]:
    return [Document(rid, text, annotated=False) for rid, text in REPORTS.items()]
