"""bench_pipeline's storage stages: the Parquet datasets through the sink (optionally beside an
older checkout's sink), and the embedded graph loaded by bulk COPY vs UNWIND MERGE.

Input: the archive's reports with their gold entities and relations (what a perfect model would
extract), so row and edge counts are the realistic ones.
"""

from __future__ import annotations

import datetime as dt
import json
import pickle
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from common import REPO, interleaved, medians

from export import graph_model as gm
from export import parquet_sink as ps
from export.graph_tables import graph_tables
from export.ladybug_store import LadybugStore
from ingest.document import Document, ReportOutcome
from ingest.schema import Schema
from pipeline.defaults import DEFAULT_SHARD_REPORTS

RUN = ps.RunInfo("bench", dt.date(2026, 1, 1), "bench-gold")
PARQUET_HEADER = ("what", "rows", "s", "rows/s", "rows per dataset")
COMPARE_HEADER = ("sink", "reports", "rows", "s", "rows/s", "reports/s", "rows per dataset")
GRAPH_HEADER = ("load", "reports", "nodes", "edges", "s", "edges/s")


def write_run(root: Path, documents: Sequence[Document], schema: Schema) -> dict[str, int]:
    """The documents as one run of every dataset, through the sink in shards of
    DEFAULT_SHARD_REPORTS reports as `angiokg extract` writes them; rows per dataset."""
    rows = dict.fromkeys(ps.DATASETS, 0)
    shutil.rmtree(root, ignore_errors=True)
    ps.begin_run(root, RUN, resume=False)
    for k in range(0, len(documents), DEFAULT_SHARD_REPORTS):
        shard = documents[k : k + DEFAULT_SHARD_REPORTS]
        outcomes = [ReportOutcome(d.doc_id, "ok", None, d.source) for d in shard]
        tables = ps.document_tables(shard, outcomes, schema, RUN)
        ps.write_shard(root, RUN, f"{k // DEFAULT_SHARD_REPORTS:05d}", tables)
        for name, table in tables.items():
            rows[name] += table.num_rows
    ps.commit_run(root, RUN)
    return rows


def parquet_rows(documents: Sequence[Document], schema: Schema, work: Path, repeats: int
                 ) -> list[list[object]]:
    """The Parquet table's row: rows built (document_tables) and written (write_shard, commit)
    per second; leaves the run under work/parquet."""
    counts: dict[str, int] = {}
    jobs = {"write": lambda: counts.update(write_run(work / "parquet", documents, schema))}
    seconds = medians(interleaved(jobs, {"write": repeats}, warm_up=False))["write"]
    total = sum(counts.values())
    per_dataset = ", ".join(f"{name} {n:,}" for name, n in counts.items())
    return [["rows built + written", f"{total:,}", f"{seconds:.2f}", f"{total / seconds:,.0f}",
             per_dataset]]


def graph_rows(documents: Sequence[Document], schema: Schema, work: Path, repeats: int,
               merge_reports: int | None) -> list[list[object]]:
    """Edges per second of LadybugStore.load_graph with bulk=True and bulk=False, from the same
    graph tables (read from the run's Parquet beforehand, not timed), each repetition into a
    fresh database. UNWIND MERGE gets the first `merge_reports` reports when given (it is slow);
    its rate is per edge either way."""
    graph = graph_tables(ps.read_run(work / "parquet", RUN), RUN.run_id)
    merge_graph = graph
    if merge_reports is not None and merge_reports < len(documents):
        write_run(work / "parquet-merge", documents[:merge_reports], schema)
        merge_graph = graph_tables(ps.read_run(work / "parquet-merge", RUN), RUN.run_id)
    variants = {"bulk COPY": (graph, True), "UNWIND MERGE": (merge_graph, False)}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):  # the two take turns; a fresh database each time, made untimed
        for name, (tables, bulk) in variants.items():
            folder = work / "graph"
            shutil.rmtree(folder, ignore_errors=True)
            with LadybugStore(folder / "db") as store:
                start = time.perf_counter()
                store.load_graph(tables, bulk=bulk)
                times[name].append(time.perf_counter() - start)
    seconds = medians(times)
    rows = []
    for name, (tables, _) in variants.items():
        edges = sum(tables[r.type].num_rows for r in gm.RELS)
        nodes = sum(tables[n.label].num_rows for n in gm.NODES)
        rows.append([name, f"{tables[gm.REPORT.label].num_rows:,}", f"{nodes:,}", f"{edges:,}",
                     f"{seconds[name]:.2f}", f"{edges / seconds[name]:,.0f}"])
    return rows


def compare_sink_rows(documents: Sequence[Document], baseline: Path, work: Path, repeats: int
                      ) -> list[list[object]]:
    """Stage 4 with this checkout's sink and with `baseline`'s, each in a fresh process
    (bench/sink_worker.py), taking turns `repeats` times on the same pickled documents; the
    rows give medians. The rows per dataset differ where the two sinks write different
    datasets, so reports/s is the rate to compare."""
    pickled = work / "documents.pickle"
    pickled.write_bytes(pickle.dumps(list(documents)))
    checkouts = {"this checkout": REPO, f"baseline {baseline}": baseline}
    times: dict[str, list[float]] = {name: [] for name in checkouts}
    rows: dict[str, dict[str, int]] = {}
    for _ in range(repeats):
        for name, checkout in checkouts.items():
            out = work / "sink-compare"
            shutil.rmtree(out, ignore_errors=True)
            done = subprocess.run(
                [sys.executable, str(REPO / "bench" / "sink_worker.py"), str(checkout),
                 str(pickled), str(out)], check=True, capture_output=True, text=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            times[name].append(result["seconds"])
            rows[name] = result["rows"]
    seconds = medians(times)
    table = []
    for name in checkouts:
        total = sum(rows[name].values())
        table.append([name, f"{len(documents):,}", f"{total:,}", f"{seconds[name]:.2f}",
                      f"{total / seconds[name]:,.0f}", f"{len(documents) / seconds[name]:,.0f}",
                      ", ".join(f"{k} {v:,}" for k, v in rows[name].items())])
    return table
