"""export_flow: the runs published in Parquet -> the graph store, each run once, in publish order.

A ledger in the run folder (`state/graph_loaded.json`, per store) records each run once its load
has finished, so a night whose graph load failed is picked up by the next night. Loading a run
again is harmless: the stores replace a report's findings rather than adding to them, so loading
in publish order leaves each report's current extraction in the graph (`export.current`).
Which store, opening it and the failure message are `export.graph_stores`; this flow is the
loop with retries and back-off.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from export.graph_stores import (
    GraphStoreError,
    failure_message,
    graph_path,
    open_store,
    resolve_store,
    store_key,
)
from export.published import RunInfo, published_runs
from flows.parameters import ExportParams
from flows.state import RunLayout, read_graph_ledger, record_graph_loaded


@dataclass(frozen=True)
class ExportResult:
    store: str
    loaded: tuple[str, ...]
    already_loaded: int
    rows: dict[str, int]
    graph_path: Path | None


@task(cache_policy=NO_CACHE)
def runs_to_load(layout: RunLayout, key: str) -> list[RunInfo]:
    loaded = set(read_graph_ledger(layout, key))
    return [run for run in published_runs(layout.extract) if run.run_id not in loaded]


@task(cache_policy=NO_CACHE)
def load_run_into_graph(store: str, layout: RunLayout, key: str, run: RunInfo) -> dict[str, int]:
    with open_store(store, layout.graph) as graph:
        rows = graph.load_run(layout.extract, run)
    record_graph_loaded(layout, key, run.run_id)  # only once the whole run is in
    return rows


@flow(name="angiokg-export", log_prints=True)
def export_flow(params: ExportParams) -> ExportResult:
    layout = RunLayout(params.out)
    store = resolve_store(params.graph)
    key = store_key(store)
    pending = runs_to_load(layout, key)
    loader = load_run_into_graph.with_options(retries=params.retries,
                                              retry_delay_seconds=params.retry_delays() or 0)
    rows: dict[str, int] = {}
    for number, run in enumerate(pending):
        state = loader(store, layout, key, run, return_state=True)
        if not state.is_completed():
            cause = state.result(raise_on_failure=False)
            raise GraphStoreError(failure_message(
                store, key, run, [r.run_id for r in pending[number:]], params.retries + 1,
                cause if isinstance(cause, BaseException) else None,
                parquet_root=layout.extract, graph_dir=layout.graph, run_folder=layout.root))
        for name, count in state.result().items():
            rows[name] = rows.get(name, 0) + count
    loaded = tuple(r.run_id for r in pending)
    print(f"graph {key}: loaded {len(loaded)} new run(s) {list(loaded)}; rows {rows}")
    return ExportResult(key, loaded, len(published_runs(layout.extract)) - len(pending), rows,
                        graph_path(store, layout.graph))
