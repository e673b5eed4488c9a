"""The five Parquet datasets of a run, with explicit schemas, written atomically.

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
counts as written once its marker is, after all of its files. `commit_run` writes a journal,
swaps each dataset's staged folder for the run's partition with `rename` on the same
filesystem (so re-running a run replaces its partition instead of adding to it), and lists the
run in `_published.json` (`export.published`) only once all five are in: a run is published
whole or not at all for every reader that goes by that list (the graph loader, the current view
of `export.current`). A commit cut short at any step is finished by `finish_commits`. Shard
names must be deterministic (e.g. a hash of the shard's reports) for a restart to skip what it
has.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from export.published import (
    COMMIT_JOURNAL,
    STAGING,
    RunInfo,
    check_name,
    record_published,
)
from ingest.atomic import (
    atomic_group,
    atomic_path,
    fsync_dir,
    sync_together,
    write_json_atomic,
)
from ingest.document import Document, Doubt, ReportOutcome, ReportStatus
from ingest.records import KeyValueRecord, records_from_document
from ingest.report_summary import ReportSummary, report_summary
from ingest.schema import Schema

logger = logging.getLogger(__name__)

REPORTS, ENTITIES, TRIPLES, RECORDS = "reports", "entities", "triples", "records"
REPORT_SUMMARY = "report_summary"
DATASETS = (REPORTS, ENTITIES, TRIPLES, RECORDS, REPORT_SUMMARY)
_COMMIT_MARKER = COMMIT_JOURNAL
_SHARD_MARKERS = "_shards"

SCHEMAS: dict[str, pa.Schema] = {
    REPORTS: pa.schema([
        ("report_id", pa.string(), False),
        ("status", pa.string(), False),  # ok | quarantined | failed
        ("reason", pa.string()),
        ("source", pa.string()),
        ("model_version", pa.string()),
        # the model's doubt the entity and triple rows do not show (ingest.document.Doubt);
        # null for annotations and for reports not processed
        ("doubt_missed_entities", pa.float64()),
        ("doubt_missed_relations", pa.float64()),
        ("doubt_entropy", pa.float64()),
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
        ("artery", pa.string()),  # the coronary tree's artery id; null: spelling not in the table
        ("segments", pa.list_(pa.string()), False),  # SYNTAX segment ids, [] when none
        ("stenosis", pa.float64()),  # % by the contract's rules; 0 = examined, none
        ("vessel_text", pa.string(), False),
        ("location_text", pa.string()),
        ("dominance", pa.string(), False),  # right | left | balanced
        ("dominance_assumed", pa.bool_(), False),
        ("confidence", pa.float64()),
        ("model_version", pa.string()),
    ]),
    REPORT_SUMMARY: pa.schema([
        ("report_id", pa.string(), False),
        ("dominance", pa.string(), False),
        ("dominance_assumed", pa.bool_(), False),
        *[field for territory in ("lm", "lad", "lcx", "rca") for field in (
            (f"max_stenosis_{territory}", pa.float64()),
            (f"max_stenosis_{territory}_segments", pa.list_(pa.string()), False))],
        ("total_occlusions", pa.int64(), False),
        ("diseased_vessels", pa.int64(), False),  # 0-3
        ("left_main_disease", pa.bool_(), False),
        ("model_version", pa.string()),
    ]),
}

PARTITION_SCHEMA = pa.schema([("run_date", pa.date32()), ("run_id", pa.string())])


def partitioning() -> ds.Partitioning:
    """The hive partitioning of every dataset, with `run_date` typed as a date."""
    return ds.partitioning(PARTITION_SCHEMA, flavor="hive")


# --- rows ----------------------------------------------------------------------------------


def report_rows(outcomes: Iterable[ReportOutcome], run: RunInfo,
                doubts: Mapping[str, Doubt] | None = None) -> list[dict]:
    """One row per outcome; `doubts`: the processed reports' `Document.doubt` by report id."""
    doubts = doubts or {}
    rows = []
    for o in outcomes:
        if o.status not in ReportOutcome.STATUSES:
            raise ValueError(f"report {o.report_id}: status {o.status!r} is not one of "
                             f"{ReportOutcome.STATUSES}")
        doubt = doubts.get(o.report_id) if o.status == ReportStatus.OK else None
        rows.append({"report_id": o.report_id, "status": str(o.status), "reason": o.reason,
                     "source": o.source, "model_version": run.model_version,
                     "doubt_missed_entities": doubt.missed_entities if doubt else None,
                     "doubt_missed_relations": doubt.missed_relations if doubt else None,
                     "doubt_entropy": doubt.entropy if doubt else None})
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


def _fields(record: object) -> dict:
    """A dataclass's fields as a new dict: a shallow copy, not `asdict`, which deep-copies
    every value and was half the time of building a shard's tables."""
    return dict(vars(record))


def record_rows(records: Iterable[KeyValueRecord]) -> list[dict]:
    rows = []
    for r in records:
        row = _fields(r)
        row.pop("run_id")  # in the partition path
        row["finding_id"] = r.finding_id
        rows.append(row)
    return rows


def summary_rows(summaries: Iterable[ReportSummary]) -> list[dict]:
    return [_fields(s) for s in summaries]


def document_tables(
    documents: Iterable[Document],
    outcomes: Iterable[ReportOutcome],
    schema: Schema,
    run: RunInfo,
) -> dict[str, pa.Table]:
    """The five tables of a batch: the documents' entities, triples, records and summaries,
    and the outcomes of every input report (a processed report's outcome is "ok")."""
    entities, triples, records, summaries = [], [], [], []
    doubts: dict[str, Doubt] = {}
    for d in documents:
        if d.doubt is not None:
            doubts[d.doc_id] = d.doubt
        entities += entity_rows(d, run)
        triples += triple_rows(d, run)
        found = records_from_document(d, schema, model_version=run.model_version,
                                      run_id=run.run_id)
        records += record_rows(found)
        summaries.append(report_summary(d, found, model_version=run.model_version))
    return {
        REPORTS: to_table(REPORTS, report_rows(outcomes, run, doubts)),
        ENTITIES: to_table(ENTITIES, entities),
        TRIPLES: to_table(TRIPLES, triples),
        RECORDS: to_table(RECORDS, records),
        REPORT_SUMMARY: to_table(REPORT_SUMMARY, summary_rows(summaries)),
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


def run_report_ids(root: str | Path, run: RunInfo) -> list[str]:
    """The ids of the reports a published run holds (its reports dataset's one column)."""
    return ds.dataset(partition_dir(root, REPORTS, run), format="parquet",
                      schema=SCHEMAS[REPORTS]).to_table(columns=["report_id"]).column(0).to_pylist()


def staging_dir(root: str | Path, run_id: str) -> Path:
    return Path(root) / STAGING / f"run_id={run_id}"


def _write_atomic(table: pa.Table, path: Path) -> None:
    """Readers see the whole file or none (`ingest.atomic`)."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _part_file(staging: Path, dataset: str, shard: str) -> Path:
    return staging / dataset / f"part-{shard}.parquet"


# --- writing a run -------------------------------------------------------------------------


def begin_run(root: str | Path, run: RunInfo, *, resume: bool) -> set[str]:
    """Prepare to write `run`; returns the shards a previous attempt completed.

    A commit cut short is finished first (its shards were all written). With `resume` False any
    staged shards are discarded and the run is written from scratch. Temporary files a killed
    writer left in the staging are removed, and so are the files of a shard without its marker
    (killed before the marker, or the marker lost in a power cut: it is not synced): the shard
    is incomplete, and its reports are written again, perhaps in other shards.
    """
    staging = staging_dir(root, run.run_id)
    if (staging / _COMMIT_MARKER).exists():
        logger.info("run %s: finishing a commit that was cut short", run.run_id)
        commit_run(root, run)
    if not resume:
        shutil.rmtree(staging, ignore_errors=True)
    _remove_temporaries(staging)
    done = completed_shards(root, run)
    for shard in sorted(_staged_shards(staging) - done):
        logger.warning("run %s: shard %s has no marker (incomplete); removing its files",
                       run.run_id, shard)
        discard_shard(root, run, shard)
    return done


def completed_shards(root: str | Path, run: RunInfo) -> set[str]:
    markers = staging_dir(root, run.run_id) / _SHARD_MARKERS
    return {p.stem for p in markers.glob("*.done")} if markers.is_dir() else set()


def write_shard(
    root: str | Path, run: RunInfo, shard: str, tables: Mapping[str, pa.Table]
) -> None:
    """Stage one shard's tables (any of the five datasets); writing it again replaces it."""
    check_name("shard", shard)
    staging = staging_dir(root, run.run_id)
    if (staging / _COMMIT_MARKER).exists():
        raise RuntimeError(f"run {run.run_id} is being committed; call begin_run() first")
    unknown = set(tables) - set(DATASETS)
    if unknown:
        raise ValueError(f"unknown datasets {sorted(unknown)}; expected some of {DATASETS}")
    marker = staging / _SHARD_MARKERS / f"{shard}.done"
    marker.unlink(missing_ok=True)  # the shard is incomplete until every file is in place
    with atomic_group() as group:  # durable together: one wait for the disk, not one per file
        for dataset, table in tables.items():
            if not table.schema.equals(SCHEMAS[dataset]):
                table = table.cast(SCHEMAS[dataset])
            with group.path(_part_file(staging, dataset, shard)) as tmp:
                pq.write_table(table, tmp)
    # Created once every file is durable, and not synced itself: the marker only says the set
    # is whole, to this process and the next start. Lost in a power cut, the shard is redone
    # (`pipeline.sinks.prepare_run` keeps a shard only with its marker and its manifest entries).
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def discard_shard(root: str | Path, run: RunInfo, shard: str) -> None:
    """Remove whatever files a crashed write of this shard left (none is fine).

    Writing the shard again would replace them, but a restarted run may never rebuild this
    shard (the archive changed), and an unmarked file blocks the commit.
    """
    staging = staging_dir(root, run.run_id)
    (staging / _SHARD_MARKERS / f"{shard}.done").unlink(missing_ok=True)
    for dataset in DATASETS:
        _part_file(staging, dataset, shard).unlink(missing_ok=True)


def _remove_temporaries(staging: Path) -> None:
    """A writer killed mid-file leaves its hidden temporary behind; it must never be renamed
    into a published partition with its folder."""
    if staging.is_dir():
        for leftover in staging.rglob(".*.tmp"):
            leftover.unlink(missing_ok=True)


def _staged_shards(staging: Path) -> set[str]:
    """The shards with a part file in any dataset of the staging, marked or not."""
    return {f.stem.removeprefix("part-") for dataset in DATASETS
            for f in (staging / dataset).glob("part-*.parquet")}


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
    """Publish the staged shards as the run's partition of each dataset, replacing any older,
    and list the run in `_published.json` (`export.published`) once every partition is in.

    The COMMIT marker written first is the journal: it holds the run's identity, so a commit
    cut short (killed between the renames, or before the run was listed) is finished by
    `finish_commits` at the next start of any run, or by calling this again. The staging is
    removed last.
    """
    staging = staging_dir(root, run.run_id)
    marker = staging / _COMMIT_MARKER
    if not marker.exists():
        _remove_temporaries(staging)
        _check_shards_complete(staging)
        for dataset in DATASETS:  # every dataset gets a partition, if only an empty one
            folder = staging / dataset
            if not any(folder.glob("part-*.parquet")):
                _write_atomic(to_table(dataset, []), folder / "part-empty.parquet")
        write_json_atomic(marker, {"run_id": run.run_id, "run_date": run.run_date.isoformat(),
                                   "model_version": run.model_version})
    published, replaced = {}, []
    for dataset in DATASETS:
        staged, final = staging / dataset, partition_dir(root, dataset, run)
        published[dataset] = final
        if not staged.exists():
            continue  # moved by the attempt that was cut short
        final.parent.mkdir(parents=True, exist_ok=True)
        old = final.with_name(f".replaced-{final.name}-{uuid.uuid4().hex[:8]}")
        if final.exists():
            os.rename(final, old)
            replaced.append(old)
        os.rename(staged, final)
    # Every partition's rename durable before the run is listed (a power cut after the listing
    # must not undo one); the five folders synced together, one wait for the disk.
    sync_together(fsync_dir, (final.parent for final in published.values()))
    for old in replaced:
        shutil.rmtree(old, ignore_errors=True)
    record_published(root, run)
    shutil.rmtree(staging, ignore_errors=True)
    logger.info("run %s: committed %s", run.run_id, ", ".join(DATASETS))
    return published


def finish_commits(root: str | Path) -> list[RunInfo]:
    """Finish every commit cut short under `root`, whichever run it was; returns those runs."""
    finished = []
    for marker in sorted((Path(root) / STAGING).glob(f"run_id=*/{_COMMIT_MARKER}")):
        try:
            journal = json.loads(marker.read_text(encoding="utf-8"))
            run = RunInfo(journal["run_id"], dt.date.fromisoformat(journal["run_date"]),
                          journal.get("model_version"))
        except (ValueError, KeyError, TypeError) as exc:
            raise RuntimeError(f"{marker}: not a commit journal ({exc}); the run's staged "
                               "files are beside it: remove the folder to drop the run") from exc
        logger.warning("run %s: finishing its publish, cut short earlier", run.run_id)
        commit_run(root, run)
        finished.append(run)
    return finished


def commit_started(root: str | Path, run_id: str) -> bool:
    """True when the run's commit journal is written: the commit completes on the next start."""
    return (staging_dir(root, run_id) / _COMMIT_MARKER).exists()


def staged_runs(root: str | Path) -> list[str]:
    """Ids of runs with staged (unpublished) outputs under `root`."""
    return sorted(p.name.removeprefix("run_id=") for p in (Path(root) / STAGING).glob("run_id=*")
                  if p.is_dir())


def discard_staging(root: str | Path, run_id: str) -> None:
    """Drop an unpublished run's staged outputs (a killed run that will not be resumed)."""
    shutil.rmtree(staging_dir(root, run_id), ignore_errors=True)


def write_run(root: str | Path, run: RunInfo, tables: Mapping[str, pa.Table]) -> dict[str, Path]:
    """Write a whole run at once (one shard), replacing an earlier write of the same run."""
    begin_run(root, run, resume=False)
    write_shard(root, run, "0", tables)
    return commit_run(root, run)


# --- reading -------------------------------------------------------------------------------


def read_dataset(root: str | Path, dataset: str) -> pa.Table:
    """Every published run of a dataset, with `run_date` and `run_id` columns (superseded
    rows included; `export.current.read_current` keeps only the current ones)."""
    return ds.dataset(
        Path(root) / dataset, format="parquet", partitioning=partitioning(),
        schema=pa.unify_schemas([SCHEMAS[dataset], PARTITION_SCHEMA]),
    ).to_table()


def _run_partitions(root: str | Path, run: RunInfo) -> dict[str, Path]:
    folders = {dataset: partition_dir(root, dataset, run) for dataset in DATASETS}
    for dataset, folder in folders.items():
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: run {run.run_id} has no {dataset} partition; "
                                    "was the run committed?")
    return folders


def read_run(root: str | Path, run: RunInfo) -> dict[str, pa.Table]:
    """The five committed tables of one run (without partition columns)."""
    return {dataset: ds.dataset(folder, format="parquet", schema=SCHEMAS[dataset]).to_table()
            for dataset, folder in _run_partitions(root, run).items()}


def read_run_shards(root: str | Path, run: RunInfo, datasets: Sequence[str] = DATASETS,
                    ) -> Iterator[dict[str, pa.Table]]:
    """The tables of one run, shard by shard in the order `read_run` reads them (each shard a
    batch of whole reports: its rows are in the files of its name in every dataset), so a
    reader of a run of any size holds one shard's rows at a time. A dataset without a file of
    a shard gives it an empty table. `datasets`: the ones to read (all five by default)."""
    folders = _run_partitions(root, run)
    shards = sorted({p.name for folder in folders.values() for p in folder.glob("part-*.parquet")})
    for name in shards:
        yield {dataset: (ds.dataset(folders[dataset] / name, format="parquet",
                                    schema=SCHEMAS[dataset]).to_table()
                         if (folders[dataset] / name).is_file() else to_table(dataset, []))
               for dataset in datasets}
