"""The four Parquet datasets of a run, with explicit schemas, written atomically.

Layout (hive partitioning; readers get `run_date` and `run_id` as columns from the path):

    ROOT/<dataset>/run_date=YYYY-MM-DD/run_id=<run>/part-<shard>.parquet

`run_date` and `run_id` live in the path only, not inside the files: a column stored both ways
makes `pandas.read_parquet(ROOT/"records")` refuse to merge the two types. `model_version`
travels inside every row.

Writing a run (crash-safe, no duplicates, nothing partial visible):

    done = begin_run(root, run, resume=True)      # shards already written by a crashed attempt
    for shard in shards_not_in(done):
        write_shard(root, run, shard.name, tables) # each file: temp file + rename
    commit_run(root, run)                          # per dataset: staged folder renamed in place

Shards are staged under ROOT/_staging/ (readers ignore `_` and `.` prefixed paths); a shard
counts as written once its marker is, after all of its files. `commit_run` swaps each dataset's
staged folder for the run's partition with `rename` on the same filesystem, so re-running a run
replaces its partition instead of adding to it. Shard names must be deterministic (e.g. the
batch number) for a restart to skip what it has.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from export.records import KeyValueRecord, records_from_document
from ingest.atomic import atomic_path
from ingest.document import Document, ReportOutcome
from ingest.schema import Schema

logger = logging.getLogger(__name__)

REPORTS, ENTITIES, TRIPLES, RECORDS = "reports", "entities", "triples", "records"
DATASETS = (REPORTS, ENTITIES, TRIPLES, RECORDS)
STAGING = "_staging"
_COMMIT_MARKER = "COMMIT"
_SHARD_MARKERS = "_shards"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

SCHEMAS: dict[str, pa.Schema] = {
    REPORTS: pa.schema([
        ("report_id", pa.string(), False),
        ("status", pa.string(), False),  # ok | quarantined | failed
        ("reason", pa.string()),
        ("source", pa.string()),
        ("model_version", pa.string()),
    ]),
    ENTITIES: pa.schema([
        ("report_id", pa.string(), False),
        ("entity_id", pa.string(), False),
        ("type", pa.string(), False),
        ("text", pa.string(), False),
        ("start", pa.int64(), False),
        ("end", pa.int64(), False),
        ("spans", pa.string(), False),  # brat's "start end;start end" (discontinuous entities)
        ("confidence", pa.float64()),
        ("model_version", pa.string()),
    ]),
    TRIPLES: pa.schema([
        ("report_id", pa.string(), False),
        ("relation_id", pa.string(), False),
        ("relation", pa.string(), False),
        ("head_id", pa.string(), False),
        ("head_type", pa.string(), False),
        ("head_text", pa.string(), False),
        ("head_start", pa.int64(), False),
        ("head_end", pa.int64(), False),
        ("tail_id", pa.string(), False),
        ("tail_type", pa.string(), False),
        ("tail_text", pa.string(), False),
        ("tail_start", pa.int64(), False),
        ("tail_end", pa.int64(), False),
        ("probability", pa.float64()),
        ("model_version", pa.string()),
    ]),
    RECORDS: pa.schema([
        ("finding_id", pa.string(), False),
        ("report_id", pa.string(), False),
        ("vessel", pa.string(), False),
        ("segment", pa.string()),
        ("finding", pa.string(), False),
        ("percentage_text", pa.string()),
        ("percentage_low", pa.float64()),
        ("percentage_high", pa.float64()),
        ("negated", pa.bool_(), False),
        ("sentence", pa.string(), False),
        ("sentence_start", pa.int64(), False),
        ("degree_id", pa.string(), False),
        ("degree_start", pa.int64(), False),
        ("degree_end", pa.int64(), False),
        ("vessel_id", pa.string(), False),
        ("vessel_start", pa.int64(), False),
        ("vessel_end", pa.int64(), False),
        ("segment_id", pa.string()),
        ("segment_start", pa.int64()),
        ("segment_end", pa.int64()),
        ("confidence", pa.float64()),
        ("model_version", pa.string()),
    ]),
}

PARTITION_SCHEMA = pa.schema([("run_date", pa.date32()), ("run_id", pa.string())])


def partitioning() -> ds.Partitioning:
    """The hive partitioning of every dataset, with `run_date` typed as a date."""
    return ds.partitioning(PARTITION_SCHEMA, flavor="hive")


@dataclass(frozen=True)
class RunInfo:
    """Identity of one run: its id names the partition, together with its date."""

    run_id: str
    run_date: dt.date
    model_version: str | None = None

    def __post_init__(self) -> None:
        _check_name("run_id", self.run_id)


def _check_name(what: str, value: str) -> None:
    if not _SAFE_NAME.match(value):
        raise ValueError(
            f"{what} {value!r} cannot name a folder: use letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (at most 128 characters)"
        )


# --- rows ----------------------------------------------------------------------------------


def report_rows(outcomes: Iterable[ReportOutcome], run: RunInfo) -> list[dict]:
    rows = []
    for o in outcomes:
        if o.status not in ReportOutcome.STATUSES:
            raise ValueError(f"report {o.report_id}: status {o.status!r} is not one of "
                             f"{ReportOutcome.STATUSES}")
        rows.append({"report_id": o.report_id, "status": o.status, "reason": o.reason,
                     "source": o.source, "model_version": run.model_version})
    return rows


def entity_rows(document: Document, run: RunInfo) -> list[dict]:
    return [
        {"report_id": document.doc_id, "entity_id": e.id, "type": e.type, "text": e.text,
         "start": e.start, "end": e.end,
         "spans": ";".join(f"{s.start} {s.end}" for s in e.spans),
         "confidence": e.confidence, "model_version": run.model_version}
        for e in document.entities
    ]


def triple_rows(document: Document, run: RunInfo) -> list[dict]:
    entities = document.entities_by_id()
    rows = []
    for r in document.relations:
        head, tail = entities.get(r.arg1), entities.get(r.arg2)
        if head is None or tail is None:
            logger.warning("%s: relation %s names an unknown entity; not written",
                           document.doc_id, r.id)
            continue
        rows.append({
            "report_id": document.doc_id, "relation_id": r.id, "relation": r.type,
            "head_id": head.id, "head_type": head.type, "head_text": head.text,
            "head_start": head.start, "head_end": head.end,
            "tail_id": tail.id, "tail_type": tail.type, "tail_text": tail.text,
            "tail_start": tail.start, "tail_end": tail.end,
            "probability": r.confidence, "model_version": run.model_version,
        })
    return rows


def record_rows(records: Iterable[KeyValueRecord]) -> list[dict]:
    rows = []
    for r in records:
        row = asdict(r)
        row.pop("run_id")  # in the partition path
        row["finding_id"] = r.finding_id
        rows.append(row)
    return rows


def document_tables(
    documents: Iterable[Document],
    outcomes: Iterable[ReportOutcome],
    schema: Schema,
    run: RunInfo,
) -> dict[str, pa.Table]:
    """The four tables of a batch: the documents' entities, triples and records, and the
    outcomes of every input report (a processed report's outcome is "ok")."""
    entities, triples, records = [], [], []
    for d in documents:
        entities += entity_rows(d, run)
        triples += triple_rows(d, run)
        records += record_rows(records_from_document(
            d, schema, model_version=run.model_version, run_id=run.run_id))
    return {
        REPORTS: to_table(REPORTS, report_rows(outcomes, run)),
        ENTITIES: to_table(ENTITIES, entities),
        TRIPLES: to_table(TRIPLES, triples),
        RECORDS: to_table(RECORDS, records),
    }


def to_table(dataset: str, rows: Sequence[Mapping]) -> pa.Table:
    """Rows as a table of the dataset's schema (a missing key is an error, not a null)."""
    schema = SCHEMAS[dataset]
    for i, row in enumerate(rows):
        missing = set(schema.names) - row.keys()
        if missing:
            raise ValueError(f"{dataset} row {i}: missing columns {sorted(missing)}")
    return pa.Table.from_pylist(list(rows), schema=schema)


# --- paths ---------------------------------------------------------------------------------


def partition_dir(root: str | Path, dataset: str, run: RunInfo) -> Path:
    return (Path(root) / dataset / f"run_date={run.run_date.isoformat()}"
            / f"run_id={run.run_id}")


def _staging_dir(root: str | Path, run: RunInfo) -> Path:
    return Path(root) / STAGING / f"run_id={run.run_id}"


def _write_atomic(table: pa.Table, path: Path) -> None:
    """Readers see the whole file or none (`ingest.atomic`)."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


# --- writing a run -------------------------------------------------------------------------


def begin_run(root: str | Path, run: RunInfo, *, resume: bool) -> set[str]:
    """Prepare to write `run`; returns the shards a previous attempt completed.

    A commit cut short is finished first (its shards were all written). With `resume` False any
    staged shards are discarded and the run is written from scratch.
    """
    staging = _staging_dir(root, run)
    if (staging / _COMMIT_MARKER).exists():
        logger.info("run %s: finishing a commit that was cut short", run.run_id)
        commit_run(root, run)
    if not resume:
        shutil.rmtree(staging, ignore_errors=True)
    return completed_shards(root, run)


def completed_shards(root: str | Path, run: RunInfo) -> set[str]:
    markers = _staging_dir(root, run) / _SHARD_MARKERS
    return {p.stem for p in markers.glob("*.done")} if markers.is_dir() else set()


def write_shard(
    root: str | Path, run: RunInfo, shard: str, tables: Mapping[str, pa.Table]
) -> None:
    """Stage one shard's tables (any of the four datasets); writing it again replaces it."""
    _check_name("shard", shard)
    staging = _staging_dir(root, run)
    if (staging / _COMMIT_MARKER).exists():
        raise RuntimeError(f"run {run.run_id} is being committed; call begin_run() first")
    unknown = set(tables) - set(DATASETS)
    if unknown:
        raise ValueError(f"unknown datasets {sorted(unknown)}; expected some of {DATASETS}")
    marker = staging / _SHARD_MARKERS / f"{shard}.done"
    marker.unlink(missing_ok=True)  # the shard is incomplete until every file is in place
    for dataset, table in tables.items():
        if not table.schema.equals(SCHEMAS[dataset]):
            table = table.cast(SCHEMAS[dataset])
        _write_atomic(table, staging / dataset / f"part-{shard}.parquet")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def _check_shards_complete(staging: Path) -> None:
    done = {p.stem for p in (staging / _SHARD_MARKERS).glob("*.done")}
    for dataset in DATASETS:
        for f in (staging / dataset).glob("part-*.parquet"):
            shard = f.stem.removeprefix("part-")
            if shard not in done:
                raise RuntimeError(
                    f"{f}: shard {shard!r} was not completed (a crash while writing it?); "
                    "write the shard again with write_shard(), then commit"
                )


def commit_run(root: str | Path, run: RunInfo) -> dict[str, Path]:
    """Publish the staged shards as the run's partition of each dataset, replacing any older.

    Idempotent: a commit cut short is finished by calling it again.
    """
    staging = _staging_dir(root, run)
    marker = staging / _COMMIT_MARKER
    if not marker.exists():
        _check_shards_complete(staging)
        for dataset in DATASETS:  # every dataset gets a partition, if only an empty one
            folder = staging / dataset
            if not any(folder.glob("part-*.parquet")):
                _write_atomic(to_table(dataset, []), folder / "part-empty.parquet")
        marker.touch()
    published = {}
    for dataset in DATASETS:
        staged, final = staging / dataset, partition_dir(root, dataset, run)
        published[dataset] = final
        if not staged.exists():
            continue  # moved by the attempt that was cut short
        final.parent.mkdir(parents=True, exist_ok=True)
        old = final.with_name(f".replaced-{final.name}-{uuid.uuid4().hex[:8]}")
        if final.exists():
            os.rename(final, old)
        os.rename(staged, final)
        shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    logger.info("run %s: committed %s", run.run_id, ", ".join(DATASETS))
    return published


def write_run(root: str | Path, run: RunInfo, tables: Mapping[str, pa.Table]) -> dict[str, Path]:
    """Write a whole run at once (one shard), replacing an earlier write of the same run."""
    begin_run(root, run, resume=False)
    write_shard(root, run, "0", tables)
    return commit_run(root, run)


# --- reading -------------------------------------------------------------------------------


def read_dataset(root: str | Path, dataset: str) -> pa.Table:
    """Every committed run of a dataset, with `run_date` and `run_id` columns."""
    return ds.dataset(
        Path(root) / dataset, format="parquet", partitioning=partitioning(),
        schema=pa.unify_schemas([SCHEMAS[dataset], PARTITION_SCHEMA]),
    ).to_table()


def read_run(root: str | Path, run: RunInfo) -> dict[str, pa.Table]:
    """The four committed tables of one run (without partition columns)."""
    result = {}
    for dataset in DATASETS:
        folder = partition_dir(root, dataset, run)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: run {run.run_id} has no {dataset} partition; "
                                    "was the run committed?")
        result[dataset] = ds.dataset(folder, format="parquet", schema=SCHEMAS[dataset]).to_table()
    return result


def run_files(root: str | Path, dataset: str, run: RunInfo) -> list[Path]:
    return sorted(partition_dir(root, dataset, run).glob("part-*.parquet"))


def find_run(root: str | Path, run_id: str) -> RunInfo:
    """The committed run with this id (its date read from the partition path)."""
    _check_name("run_id", run_id)
    found = sorted((Path(root) / RECORDS).glob(f"run_date=*/run_id={run_id}"))
    if not found:
        raise FileNotFoundError(f"{Path(root) / RECORDS}: no committed run {run_id!r}")
    if len(found) > 1:
        raise ValueError(f"run {run_id!r} is committed under several dates: {found}")
    date = dt.date.fromisoformat(found[0].parent.name.removeprefix("run_date="))
    return RunInfo(run_id, date)


def latest_run(root: str | Path) -> RunInfo:
    """The most recently committed run (by folder modification time)."""
    folders = list((Path(root) / RECORDS).glob("run_date=*/run_id=*"))
    if not folders:
        raise FileNotFoundError(f"{Path(root) / RECORDS}: no committed run")
    newest = max(folders, key=lambda p: p.stat().st_mtime)
    return RunInfo(newest.name.removeprefix("run_id="),
                   dt.date.fromisoformat(newest.parent.name.removeprefix("run_date=")))
