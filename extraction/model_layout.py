"""The files of a model directory, and a check of them that needs no torch.

The commands check a model directory's files before they take the output folder's lock, so a
wrong path (a run folder, the encoder sub-folder, a typo) is refused before anything is
created; loading (extraction.model_dir) still checks what the files say.
"""

from __future__ import annotations

from pathlib import Path

ENCODER, HEADS, LABELS = "encoder", "heads.pt", "labels.json"
SCHEMA, SCHEMA_HASH, CONFIG, METRICS, VERSION = (
    "schema.conf", "schema.sha256", "train_config.json", "metrics.json", "model_version"
)
REQUIRED = (SCHEMA_HASH, SCHEMA, CONFIG, LABELS, HEADS, VERSION, f"{ENCODER}/config.json")


class ModelDirError(ValueError):
    """A model directory is incomplete or does not fit the schema in use."""


def missing_file_error(path: Path) -> ModelDirError:
    return ModelDirError(f"{path}: missing; a model directory is written by `angiokg train`")


def check_model_files(directory: str | Path) -> Path:
    """`directory` as a Path when it holds every file a model directory needs, else the error
    naming the first one missing."""
    root = Path(directory)
    if not root.is_dir():
        raise ModelDirError(f"{root}: no such model directory")
    for name in REQUIRED:
        if not (root / name).is_file():
            raise missing_file_error(root / name)
    return root
