"""Temperatures that calibrate the model's confidences, one per head, stored in the model
directory as `calibration.json` (fitted on dev by extraction/calibration.py).

A temperature divides the scores before they become probabilities: the CRF's emissions and
transitions for the entity marginals, the RC logits for the relation probabilities. Above 1 it
softens an over-confident head. Decisions never change (the Viterbi path and the argmax are the
same at any positive temperature); only the confidences do.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ingest.atomic import write_text_atomic

CALIBRATION = "calibration.json"


@dataclass(frozen=True)
class Temperatures:
    ner: float = 1.0
    rc: float = 1.0
    # how they were chosen (dev counts, log loss and ECE before and after): for the reader
    fit: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.ner <= 0 or self.rc <= 0:
            raise ValueError(f"temperatures must be positive, got ner={self.ner}, rc={self.rc}")

    def save(self, model_dir: str | Path) -> Path:
        path = Path(model_dir) / CALIBRATION
        write_text_atomic(path, json.dumps(asdict(self), ensure_ascii=False, indent=1) + "\n")
        return path

    @classmethod
    def load(cls, model_dir: str | Path) -> Temperatures:
        """The directory's temperatures; none stored (a model trained before calibration
        existed): 1.0, the raw confidences."""
        path = Path(model_dir) / CALIBRATION
        if not path.is_file():
            return cls()
        values = json.loads(path.read_text(encoding="utf-8"))
        try:
            return cls(float(values["ner"]), float(values["rc"]), dict(values.get("fit", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: expected {{'ner': T, 'rc': T}} with positive "
                             f"temperatures ({exc}); retrain or delete the file") from None
