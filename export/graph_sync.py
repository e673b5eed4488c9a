"""A redone run's reports that it no longer holds: back to their current extraction in the graph.

Loading a published run replaces its reports' findings, so loading the publications in publish
order keeps every report on its current extraction (`export.current`), with one exception: a
run redone under its id (`--run-id`) replaces its partition, and a report the earlier
publication had and the new one has not (the archive no longer holds it, or its text is done
by an earlier run) is not touched by loading the new one. The graph would keep the first load's
findings for it, while its current extraction is an earlier run's, or there is none.

`restore_left_behind` fixes that after such a load: the reports the graph still attributes to
the run (`Report.run_id`) beyond those its partition holds are reloaded from their current run
(only their rows are read), or removed with their findings where no run holds them any more.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from export.current import current_reports
from export.graph_load import GraphWriter, delete_statements, merge_load
from export.graph_tables import graph_tables
from export.parquet_sink import DATASETS, SCHEMAS, partition_dir, run_report_ids
from export.published import RunInfo, published_runs


class RunReports(GraphWriter, Protocol):
    def report_ids_of_run(self, run_id: str) -> list[str]:
        """The ids of the Report nodes a load of `run_id` wrote (`Report.run_id`)."""


@dataclass(frozen=True)
class Restored:
    reloaded: tuple[str, ...] = ()  # back on an earlier run's extraction
    removed: tuple[str, ...] = ()  # no run holds them any more

    def __bool__(self) -> bool:
        return bool(self.reloaded or self.removed)


def _ids(values: Iterable[str]) -> pa.Array:
    return pa.array(sorted(set(values)), pa.string())


def rows_of(root: str | Path, run: RunInfo, report_ids: Sequence[str]) -> dict[str, pa.Table]:
    """The rows of `report_ids` in each dataset of a committed run (only those are read)."""
    wanted = pc.field("report_id").isin(_ids(report_ids))
    return {name: ds.dataset(partition_dir(root, name, run), format="parquet",
                             schema=SCHEMAS[name]).to_table(filter=wanted)
            for name in DATASETS}


def removal_statements(report_ids: Sequence[str], batch_size: int):
    """The reports' findings and mentions (as a reload deletes them), then their nodes."""
    drop = "UNWIND $report_ids AS rid MATCH (n:Report) WHERE n.id = rid DETACH DELETE n"
    return [*delete_statements(report_ids, batch_size),
            *[(drop, {"report_ids": list(report_ids[i:i + batch_size])})
              for i in range(0, len(report_ids), batch_size)]]


def restore_left_behind(store: RunReports, root: str | Path, run: RunInfo,
                        dialect: str) -> Restored:
    """After `run` was loaded: put the reports the graph still has from an earlier publication
    of it back on their current extraction (`dialect`: graph_model.LADYBUG or NEO4J)."""
    left = sorted(set(store.report_ids_of_run(run.run_id)) - set(run_report_ids(root, run)))
    if not left:
        return Restored()
    current = current_reports(root).to_pandas().set_index("report_id")["run_id"]
    runs = {r.run_id: r for r in published_runs(root)}
    by_run: dict[str, list[str]] = {}
    gone: list[str] = []
    for report_id in left:
        holder = current.get(report_id)
        if holder is None or holder not in runs:
            gone.append(report_id)
        else:
            by_run.setdefault(str(holder), []).append(report_id)
    if gone:
        store.transaction(removal_statements(gone, store.batch_size))
    for run_id, ids in by_run.items():
        holder_run = runs[run_id]
        merge_load(store, graph_tables(rows_of(root, holder_run, ids), run_id), dialect)
    return Restored(tuple(sorted(r for ids in by_run.values() for r in ids)), tuple(gone))

