"""Flow parameters: pydantic models, so a bad value is refused before any work, with a message
that says which parameter, what was wrong and what to pass instead.

Each flow takes its model's fields as top-level parameters (a deployment run overrides one and
keeps the others; the Prefect UI shows one form field each), with the same names, types and
defaults (a test keeps them equal), and builds the model from them first thing. The UI's
descriptions come from the models too: `documented_by` writes them into the flow's docstring,
where Prefect reads parameter descriptions.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from flows.logs import Explained
from pipeline.defaults import DEFAULT_BATCH_SIZE, DEFAULT_MAX_BYTES, DEFAULT_SHARD_REPORTS

Profile = Literal["tiny", "sample-quick", "default"]
RetrainPolicy = Literal["always", "never", "on-change"]
NoGpuPolicy = Literal["fail", "cpu"]

DASK_ADDRESS_ENV = "ANGIOKG_DASK_ADDRESS"
_GRAPH_NAMES = ("auto", "ladybug", "neo4j")
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _existing_dir(value: Path, what: str, example: str) -> Path:
    if not value.exists():
        raise ValueError(f"{what} {value} does not exist; pass a folder such as {example}")
    if not value.is_dir():
        raise ValueError(f"{what} {value} is a file, not a folder; pass a folder such as {example}")
    return value


class ParameterError(Explained, ValueError):
    """Parameters a flow refuses; the message names each one and what to pass instead."""


def explain(exc: ValidationError, name_of: Callable[[str], str] = lambda name: name) -> str:
    """pydantic's errors as one line: `where: what` for each, `name_of` naming the field."""
    def where(loc: tuple) -> str:
        return name_of(".".join(map(str, loc))) if loc else "parameters"

    return "; ".join(f"{where(e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                     for e in exc.errors())


class _Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> Self:
        """The model of a flow's arguments (its `locals()` on entry), or ParameterError."""
        try:
            return cls(**{name: arguments[name] for name in cls.model_fields})
        except ValidationError as exc:
            raise ParameterError(explain(exc)) from None

    def arguments(self) -> dict[str, Any]:
        """The fields as keyword arguments of the flow that takes this model."""
        return {name: getattr(self, name) for name in type(self).model_fields}

    def as_json(self) -> dict[str, Any]:
        """The fields as a deployment stores its parameters: plain JSON."""
        return self.model_dump(mode="json")


_Fn = TypeVar("_Fn", bound=Callable[..., Any])


def documented_by(model: type[_Params]) -> Callable[[_Fn], _Fn]:
    """Append an `Args:` section with `model`'s field descriptions to the function's docstring:
    Prefect reads it for the parameter descriptions the UI shows (the decorator goes under
    `@flow`, so the section is there when the flow is built)."""
    def add_section(fn: _Fn) -> _Fn:
        lines = ["", "Args:"]
        for name, field in model.model_fields.items():
            lines.append(f"    {name}: {field.description}")
        fn.__doc__ = (fn.__doc__ or "").rstrip() + "\n" + "\n".join(lines) + "\n"
        return fn

    return add_section


# Fields several models share, described once.
def _annotated_field() -> Any:
    return Field(description="Folder of annotated brat reports (.txt + .ann pairs).")


def _schema_field() -> Any:
    return Field(default=None,
                 description="annotation.conf to validate against; the bundled one if empty.")


def _seed_field() -> Any:
    return Field(default=42, description="Seed of the report-level 8:1:1 split.")


def _profile_field() -> Any:
    return Field(default="default",
                 description="Training profile: tiny (tests), sample-quick (minutes on a CPU), "
                 "default.")


def _checkpoint_field() -> Any:
    return Field(default=None,
                 description="Pre-trained encoder directory; when empty, a vocabulary and MLM "
                 "pre-training are done first.")


def _shard_size_field() -> Any:
    return Field(default=DEFAULT_SHARD_REPORTS, gt=0,
                 description="Reports per parallel extraction task.")


def _batch_size_field() -> Any:
    return Field(default=DEFAULT_BATCH_SIZE, gt=0, description="Sentences per model batch.")


def _max_bytes_field() -> Any:
    return Field(default=DEFAULT_MAX_BYTES, gt=0,
                 description="Reports larger than this are quarantined (zip bomb guard).")


def _workers_field() -> Any:
    return Field(default=2, gt=0, description="Extraction threads of the default task runner.")


def _dask_field() -> Any:
    return Field(default=None,
                 description=f"Dask scheduler (tcp://host:8786) to run extraction shards on a "
                 f"cluster; falls back to ${DASK_ADDRESS_ENV}; threads on this machine when "
                 "neither is set.")


def _graph_field() -> Any:
    return Field(default="auto",
                 description="Graph store: auto (Neo4j when NEO4J_URI is set, else embedded "
                 "LadybugDB), ladybug, neo4j, or module:factory returning a store object.")


def _retries_field() -> Any:
    return Field(default=3, ge=0, le=20, description="Retries of a failed graph load.")


def _retry_delay_field() -> Any:
    return Field(default=10.0, ge=0,
                 description="First graph-load retry delay in seconds; each next retry waits "
                 "twice as long.")


class IngestParams(_Params):
    annotated: Path = _annotated_field()
    out: Path = Field(description="Run folder: outputs and the state the next run needs.")
    schema_path: Path | None = _schema_field()
    split_seed: int = _seed_field()

    @field_validator("annotated")
    @classmethod
    def _annotated_exists(cls, value: Path) -> Path:
        return _existing_dir(value, "annotated corpus", "data/sample/annotated")

    @field_validator("schema_path")
    @classmethod
    def _schema_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"schema file {value} does not exist; pass annotation.conf or omit it")
        return value


class TrainParams(_Params):
    annotated: Path = _annotated_field()
    out: Path = Field(description="Run folder; the model goes under models/.")
    profile: Profile = _profile_field()
    checkpoint: Path | None = _checkpoint_field()
    archive: Path | None = Field(
        default=None,
        description="Unannotated reports the MLM pre-training reads as well as the annotated "
        "text (ignored with a checkpoint).",
    )
    schema_path: Path | None = _schema_field()
    split_seed: int = _seed_field()
    split_file: Path | None = Field(
        default=None, description="The split ingest wrote (report_id,split); when empty, the "
        "seeded split of split_seed.")
    corpus_sha256: str | None = Field(
        default=None, description="The annotated corpus's hash as ingest computed it; when "
        "empty, the corpus is hashed here.")

    @field_validator("annotated")
    @classmethod
    def _annotated_exists(cls, value: Path) -> Path:
        return _existing_dir(value, "annotated corpus", "data/sample/annotated")

    @field_validator("split_file")
    @classmethod
    def _split_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"split file {value} does not exist; run ingest_flow first (it "
                             "writes ingest/splits.csv) or leave split_file empty")
        return value

    @field_validator("checkpoint")
    @classmethod
    def _checkpoint_exists(cls, value: Path | None) -> Path | None:
        if value is not None:
            _existing_dir(value, "checkpoint", "runs/x/models/<id> (a model directory)")
        return value


class ExtractParams(_Params):
    archive: Path = Field(description="Report archive: .txt folder, .zip, .tar.gz, Parquet, CSV.")
    out: Path = Field(description="Run folder; Parquet goes under extract/.")
    model_dir: Path | None = Field(
        default=None, description="Model directory; the run folder's current model if empty."
    )
    shard_size: int = _shard_size_field()
    batch_size: int = _batch_size_field()
    max_report_bytes: int = _max_bytes_field()
    wait_for_lock: bool = Field(
        default=False, description="When another run is writing the run folder's extract/, "
        "wait for it to finish (default: fail, naming it).")
    workers: int = _workers_field()
    dask_address: str | None = _dask_field()

    @field_validator("archive")
    @classmethod
    def _archive_exists(cls, value: Path) -> Path:
        if not value.exists():
            raise ValueError(
                f"archive {value} does not exist; pass a folder of .txt reports, a .zip, "
                ".tar.gz, .parquet or .csv (e.g. data/sample/archive)"
            )
        return value

    @field_validator("dask_address")
    @classmethod
    def _dask_address_shape(cls, value: str | None) -> str | None:
        if value and "://" not in value:
            raise ValueError(f"dask_address {value!r} needs a scheme, e.g. tcp://scheduler:8786")
        return value or None

    def resolved_dask_address(self) -> str | None:
        return self.dask_address or os.environ.get(DASK_ADDRESS_ENV) or None


class ExportParams(_Params):
    out: Path = Field(description="Run folder whose extract/ Parquet runs are loaded.")
    graph: str = _graph_field()
    retries: int = _retries_field()
    retry_delay_s: float = _retry_delay_field()

    @field_validator("graph")
    @classmethod
    def _graph_choice(cls, value: str) -> str:
        if value in _GRAPH_NAMES or _FACTORY.match(value):
            return value
        raise ValueError(
            f"graph {value!r} is not one of {', '.join(_GRAPH_NAMES)} nor a module:factory path"
        )

    def retry_delays(self) -> list[float]:
        """Exponential back-off: d, 2d, 4d, ... (Prefect's exponential_backoff, made explicit)."""
        return [self.retry_delay_s * 2**i for i in range(self.retries)]


class NightlyParams(_Params):
    """Everything a night needs; the sub-flows' parameters are derived from it."""

    annotated: Path = _annotated_field()
    archive: Path = Field(description="Report archive to extract (grows night after night).")
    out: Path = Field(description="Run folder: outputs and the state the next night needs.")
    profile: Profile = _profile_field()
    checkpoint: Path | None = _checkpoint_field()
    retrain: RetrainPolicy = Field(
        default="on-change",
        description="always, never, or on-change (when the annotated corpus's hash changed).",
    )
    schema_path: Path | None = _schema_field()
    split_seed: int = _seed_field()
    shard_size: int = _shard_size_field()
    batch_size: int = _batch_size_field()
    max_report_bytes: int = _max_bytes_field()
    wait_for_lock: bool = Field(
        default=False, description="When another night is running in this run folder, wait "
        "for it (default: fail, naming it).")
    workers: int = _workers_field()
    dask_address: str | None = _dask_field()
    graph: str = _graph_field()
    graph_retries: int = _retries_field()
    graph_retry_delay_s: float = _retry_delay_field()
    train_deployment: str | None = Field(
        default=None,
        description="Deployment (flow/deployment) that trains on the GPU pool; "
        "train in this run when empty.",
    )
    gpu_start_timeout_s: float = Field(
        default=900.0, gt=0,
        description="How long the training run may wait for a GPU worker to start it, in "
        "seconds; then it is cancelled and on_no_gpu decides.",
    )
    gpu_train_timeout_s: float = Field(
        default=6 * 3600.0, gt=0,
        description="How long training on the GPU pool may take once started, in seconds; "
        "then it is cancelled and the night ends Failed (extracting with the current model).",
    )
    on_no_gpu: NoGpuPolicy = Field(
        default="fail",
        description="No GPU worker online, or none started the training in time: fail (the "
        "night still extracts with the current model, then ends Failed saying how to start a "
        "worker) or cpu (train in this run, on the CPU worker, with a warning).",
    )
    queue_size: int = Field(
        default=50, ge=0,
        description="Reports in the next annotation queue (queue/<run_id>/ in the run folder): "
        "the night's new reports the model would learn most from; 0 writes none.",
    )

    @model_validator(mode="after")
    def _derive_checks(self) -> NightlyParams:
        # Validate through the sub-models now, so a bad value fails before ingest starts.
        self.ingest_params()
        self.train_params()
        self.extract_params()
        self.export_params()
        return self

    def ingest_params(self) -> IngestParams:
        return IngestParams(annotated=self.annotated, out=self.out,
                            schema_path=self.schema_path, split_seed=self.split_seed)

    def train_params(self, split_file: Path | None = None,
                     corpus_sha256: str | None = None) -> TrainParams:
        """`split_file` and `corpus_sha256` from tonight's ingest: training reads the split
        ingest wrote, and the corpus is hashed (and read) once."""
        return TrainParams(annotated=self.annotated, out=self.out, profile=self.profile,
                           checkpoint=self.checkpoint, archive=self.archive,
                           schema_path=self.schema_path, split_seed=self.split_seed,
                           split_file=split_file, corpus_sha256=corpus_sha256)

    def extract_params(self, model_dir: Path | None = None) -> ExtractParams:
        return ExtractParams(archive=self.archive, out=self.out, model_dir=model_dir,
                             shard_size=self.shard_size, batch_size=self.batch_size,
                             max_report_bytes=self.max_report_bytes,
                             wait_for_lock=self.wait_for_lock, workers=self.workers,
                             dask_address=self.dask_address)

    def export_params(self) -> ExportParams:
        return ExportParams(out=self.out, graph=self.graph, retries=self.graph_retries,
                            retry_delay_s=self.graph_retry_delay_s)
