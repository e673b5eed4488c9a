"""Flow parameters: pydantic models, so a bad value is refused before any work, with a message
that says which parameter, what was wrong and what to pass instead.

The same models are the deployments' parameter schema (the Prefect UI renders them as forms), so
every field has a description.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.defaults import DEFAULT_BATCH_SIZE, DEFAULT_MAX_BYTES, DEFAULT_SHARD_REPORTS

Profile = Literal["tiny", "sample-quick", "default"]
RetrainPolicy = Literal["always", "never", "on-change"]

DASK_ADDRESS_ENV = "ANGIOKG_DASK_ADDRESS"
_GRAPH_NAMES = ("auto", "ladybug", "neo4j")
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _existing_dir(value: Path, what: str, example: str) -> Path:
    if not value.exists():
        raise ValueError(f"{what} {value} does not exist; pass a folder such as {example}")
    if not value.is_dir():
        raise ValueError(f"{what} {value} is a file, not a folder; pass a folder such as {example}")
    return value


class _Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IngestParams(_Params):
    annotated: Path = Field(description="Folder of annotated brat reports (.txt + .ann pairs).")
    out: Path = Field(description="Run folder: outputs and the state the next run needs.")
    schema_path: Path | None = Field(
        default=None, description="annotation.conf to validate against; the bundled one if empty."
    )
    split_seed: int = Field(default=42, description="Seed of the report-level 8:1:1 split.")

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
    annotated: Path = Field(description="Folder of annotated brat reports (.txt + .ann pairs).")
    out: Path = Field(description="Run folder; the model goes under models/.")
    profile: Profile = Field(
        default="default",
        description="Training profile: tiny (tests), sample-quick (minutes on a CPU), default.",
    )
    checkpoint: Path | None = Field(
        default=None,
        description="Pre-trained encoder directory; when empty, a vocabulary and MLM "
        "pre-training are done first.",
    )
    schema_path: Path | None = None
    split_seed: int = 42
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
    shard_size: int = Field(default=DEFAULT_SHARD_REPORTS, gt=0,
                            description="Reports per parallel task.")
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, gt=0,
                            description="Sentences per model batch.")
    max_report_bytes: int = Field(default=DEFAULT_MAX_BYTES, gt=0,
                                  description="Reports larger than this are quarantined "
                                  "(zip bomb guard).")
    wait_for_lock: bool = Field(
        default=False, description="When another run is writing the run folder's extract/, "
        "wait for it to finish (default: fail, naming it).")
    workers: int = Field(default=2, gt=0, description="Threads of the default task runner.")
    dask_address: str | None = Field(
        default=None,
        description=f"Dask scheduler (tcp://host:8786) to run shards on a cluster; "
        f"falls back to ${DASK_ADDRESS_ENV}; threads on this machine when neither is set.",
    )

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
    graph: str = Field(
        default="auto",
        description="Graph store: auto (Neo4j when NEO4J_URI is set, else embedded LadybugDB), "
        "ladybug, neo4j, or module:factory returning a store object.",
    )
    retries: int = Field(default=3, ge=0, le=20, description="Retries of a failed graph load.")
    retry_delay_s: float = Field(
        default=10.0, ge=0, description="First retry delay; each next retry waits twice as long."
    )

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

    annotated: Path = Field(description="Folder of annotated brat reports (.txt + .ann pairs).")
    archive: Path = Field(description="Report archive to extract (grows night after night).")
    out: Path = Field(description="Run folder: outputs and the state the next night needs.")
    profile: Profile = "default"
    checkpoint: Path | None = None
    retrain: RetrainPolicy = Field(
        default="on-change",
        description="always, never, or on-change (when the annotated corpus's hash changed).",
    )
    schema_path: Path | None = None
    split_seed: int = 42
    shard_size: int = Field(default=DEFAULT_SHARD_REPORTS, gt=0)
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, gt=0)
    max_report_bytes: int = Field(default=DEFAULT_MAX_BYTES, gt=0)
    wait_for_lock: bool = Field(
        default=False, description="When another night is running in this run folder, wait "
        "for it (default: fail, naming it).")
    workers: int = Field(default=2, gt=0)
    dask_address: str | None = None
    graph: str = "auto"
    graph_retries: int = Field(default=3, ge=0, le=20)
    graph_retry_delay_s: float = Field(default=10.0, ge=0)
    train_deployment: str | None = Field(
        default=None,
        description="Deployment (flow/deployment) that trains on the GPU pool; "
        "train in this process when empty.",
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
                           checkpoint=self.checkpoint, schema_path=self.schema_path,
                           split_seed=self.split_seed, split_file=split_file,
                           corpus_sha256=corpus_sha256)

    def extract_params(self, model_dir: Path | None = None) -> ExtractParams:
        return ExtractParams(archive=self.archive, out=self.out, model_dir=model_dir,
                             shard_size=self.shard_size, batch_size=self.batch_size,
                             max_report_bytes=self.max_report_bytes,
                             wait_for_lock=self.wait_for_lock, workers=self.workers,
                             dask_address=self.dask_address)

    def export_params(self) -> ExportParams:
        return ExportParams(out=self.out, graph=self.graph, retries=self.graph_retries,
                            retry_delay_s=self.graph_retry_delay_s)
