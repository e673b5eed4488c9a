"""A regex stand-in for `extraction.predict.Extractor`, so run logic is tested without torch.

Not a test module (no `test_` prefix); the extraction run tests import it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from ingest.document import Document, Entity, Relation, Span
from ingest.schema import load_schema

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


def train_tiny_model(model_dir: Path, reports: int = 6) -> str:
    """A real model directory in seconds (the `tiny` profile, one epoch on a few generated
    reports): it predicts poorly, but through the real `Extractor`; returns its version."""
    from extraction.train import train_documents
    from extraction.train_config import profile
    from ingest.generator import generate_report

    documents = [generate_report(i, 7) for i in range(reports)]
    config = replace(profile("tiny"), epochs=1)
    return train_documents(documents, load_schema(), model_dir, config).model_version
