"""The current view: one current extraction per report id, however many runs processed it.

A report is extracted again when its text changes (or changes back), when a new model version
runs, or when another archive holds the same id with another text, so the datasets hold older
rows of it from earlier runs. Those rows stay (a run's partition is never rewritten); the
current one is the report's row in the run **published last** among those that processed it
(`export.published` keeps the publish order). Its `reports` row says what became of it: an
`ok` extraction, or `quarantined` / `failed` (then the report has no current findings).

`ROOT/current_reports.parquet` lists, per report id, the run that holds its current rows
(`report_id`, `run_id`, `run_date`, `status`, `model_version`). It is rewritten whole after
every publish (`refresh_current`), from the published runs only, so a run shows in the current
view whole or not at all. From pandas:

    current = pd.read_parquet(ROOT / "current_reports.parquet", columns=["report_id", "run_id"])
    records = pd.read_parquet(ROOT / "records").astype({"run_id": str})
    records = records.merge(current, on=["report_id", "run_id"])   # current records only

and from pyarrow, `read_current(ROOT, "records")`.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from export.parquet_sink import (
    PARTITION_SCHEMA,
    REPORTS,
    SCHEMAS,
    partition_dir,
    read_dataset,
)
from export.published import publications
from ingest.atomic import atomic_path

CURRENT_FILE = "current_reports.parquet"
CURRENT_SCHEMA = pa.schema([
    ("report_id", pa.string(), False),
    ("run_id", pa.string(), False),
    ("run_date", pa.date32(), False),
    ("status", pa.string(), False),
    ("model_version", pa.string()),
])
# The file records which publication it reflects, so a stale one is found and rewritten.
_STAMP = b"angiokg.publication"


def current_reports(root: str | Path) -> pa.Table:
    """Per report id, its row in the latest published run that has one (an `ok` row first
    when a run has two rows for it: a duplicate id quarantined beside the one kept)."""
    import pandas as pd

    frames = []
    for publication in publications(root):
        folder = partition_dir(root, REPORTS, publication.run)
        if not folder.is_dir():
            continue
        table = pq.read_table(folder, columns=["report_id", "status", "model_version"])
        frame = table.to_pandas()
        frame["run_id"] = publication.run.run_id
        frame["run_date"] = publication.run.run_date
        frame["order"] = publication.publication
        frames.append(frame)
    if not frames:
        return CURRENT_SCHEMA.empty_table()
    rows = pd.concat(frames, ignore_index=True)
    rows["ok"] = rows["status"] == "ok"
    rows = rows.sort_values(["order", "ok"], ascending=False, kind="stable")
    rows = rows.drop_duplicates("report_id").sort_values("report_id")
    return pa.Table.from_pandas(rows[CURRENT_SCHEMA.names], schema=CURRENT_SCHEMA,
                                preserve_index=False)


def _latest_publication(root: str | Path) -> int:
    return max((p.publication for p in publications(root)), default=0)


def _stamp(root: str | Path) -> int | None:
    path = Path(root) / CURRENT_FILE
    if not path.exists():
        return None
    metadata = pq.read_schema(path).metadata or {}
    value = metadata.get(_STAMP)
    return int(value) if value is not None else None


def refresh_current(root: str | Path) -> bool:
    """Rewrite `current_reports.parquet` unless it already reflects the last publication;
    True when it was rewritten. Idempotent, so a publish cut short before it is finished by
    calling it again."""
    latest = _latest_publication(root)
    if latest == 0 or _stamp(root) == latest:
        return False
    table = current_reports(root)
    table = table.replace_schema_metadata({_STAMP: str(latest).encode()})
    with atomic_path(Path(root) / CURRENT_FILE) as tmp:
        pq.write_table(table, tmp)
    return True


def read_current(root: str | Path, dataset: str) -> pa.Table:
    """The current rows of a dataset (with `run_date` and `run_id`): its rows from each
    report's current run."""
    path = Path(root) / CURRENT_FILE
    if not (Path(root) / dataset).is_dir():  # nothing published yet
        return pa.unify_schemas([SCHEMAS[dataset], PARTITION_SCHEMA]).empty_table()
    table = read_dataset(root, dataset)
    if path.exists():
        current = pq.read_table(path, columns=["report_id", "run_id"])
    else:  # a root published before the file existed: the same view, computed here
        current = current_reports(root).select(["report_id", "run_id"])
    # A membership filter, not a join: Arrow's join refuses list columns (records.segments).
    def keys(t: pa.Table) -> pa.Array:
        return pc.binary_join_element_wise(t["report_id"].cast(pa.string()),
                                           t["run_id"].cast(pa.string()), "\x1f")

    return table.filter(pc.is_in(keys(table), value_set=keys(current).combine_chunks()))
