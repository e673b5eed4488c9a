"""export_flow: the runs published in Parquet -> the graph store, each run once.

Parquet is written during extraction (shard by shard, for crash safety); this flow loads every
published run that the graph store has not got yet. A ledger in the run folder
(`state/graph_loaded.json`, per store) records each run once its load has finished, so a night
whose graph load failed is picked up by the next night. Loading a run again is harmless: the
stores replace a report's findings rather than adding to them.

The graph store is embedded LadybugDB by default, Neo4j when NEO4J_URI is set (`graph="auto"`),
or any `module:factory` (tests inject failing stores that way). Each load retries with
exponential back-off; when the retries are spent, the flow fails with a message that says
what is intact and what to do.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from export.parquet_sink import RunInfo
from flows.parameters import ExportParams
from flows.state import RunLayout, read_graph_ledger, record_graph_loaded

LADYBUG_DB = "angiokg.lbug"
# Any dataset would do: every published run has a partition in each (if only an empty one).
_INDEX_DATASET = "reports"


class GraphStore(Protocol):
    def load_run(self, root: str | Path, run: RunInfo) -> dict[str, int]: ...


class GraphStoreError(RuntimeError):
    """The graph store could not be loaded; the message says what is intact and what to do."""


@dataclass(frozen=True)
class ExportResult:
    store: str
    loaded: tuple[str, ...]
    already_loaded: int
    rows: dict[str, int]
    graph_path: Path | None


def published_runs(extract_root: Path) -> list[RunInfo]:
    """Every run published in the Parquet datasets, oldest first (hive partition folders)."""
    runs = []
    for date_dir in sorted((extract_root / _INDEX_DATASET).glob("run_date=*")):
        for run_dir in sorted(date_dir.glob("run_id=*")):
            runs.append(RunInfo(run_dir.name.removeprefix("run_id="),
                                date.fromisoformat(date_dir.name.removeprefix("run_date="))))
    return sorted(runs, key=lambda r: (r.run_date, r.run_id))


def resolve_store(graph: str) -> str:
    """`auto` made concrete: Neo4j when NEO4J_URI is configured, else the embedded graph."""
    if graph == "auto":
        return "neo4j" if os.environ.get("NEO4J_URI") else "ladybug"
    return graph


def store_key(store: str, layout: RunLayout) -> str:
    """The ledger's name for a store: which database, never its credentials."""
    if store == "ladybug":
        return f"ladybug:{LADYBUG_DB}"
    if store == "neo4j":
        from export.neo4j_store import redact_uri

        uri = redact_uri(os.environ.get("NEO4J_URI", ""))
        return f"neo4j:{uri}/{os.environ.get('NEO4J_DATABASE', 'neo4j')}"
    return f"factory:{store}"


@contextlib.contextmanager
def open_store(store: str, layout: RunLayout) -> Iterator[GraphStore]:
    if store == "ladybug":
        from export.ladybug_store import LadybugStore

        with LadybugStore(layout.graph / LADYBUG_DB) as lb:
            yield lb
    elif store == "neo4j":
        from export.neo4j_store import Neo4jSettings, Neo4jWriter

        driver, writer = Neo4jWriter.open(Neo4jSettings.from_env())
        try:
            # Fail fast when the server is down: the driver's own retries would spend 30 s
            # per attempt; Prefect's retries with back-off take over from here.
            driver.verify_connectivity()
            writer.ensure_schema()
            yield writer
        finally:
            driver.close()
    else:
        module_name, _, attr = store.partition(":")
        factory: Any = getattr(importlib.import_module(module_name), attr)
        with contextlib.ExitStack() as stack:
            made = factory(layout)
            yield stack.enter_context(made) if hasattr(made, "__enter__") else made


@task(cache_policy=NO_CACHE)
def runs_to_load(layout: RunLayout, key: str) -> list[RunInfo]:
    loaded = set(read_graph_ledger(layout, key))
    return [run for run in published_runs(layout.extract) if run.run_id not in loaded]


@task(cache_policy=NO_CACHE)
def load_run_into_graph(store: str, layout: RunLayout, key: str, run: RunInfo) -> dict[str, int]:
    with open_store(store, layout) as graph:
        rows = graph.load_run(layout.extract, run)
    record_graph_loaded(layout, key, run.run_id)  # only once the whole run is in
    return rows


def failure_message(store: str, key: str, layout: RunLayout, failed: RunInfo,
                    missing: list[str], tries: int, cause: BaseException | None) -> str:
    what_to_check = {
        "neo4j": "is Neo4j running and reachable at NEO4J_URI, and are NEO4J_USER / "
                 "NEO4J_PASSWORD right?",
        "ladybug": f"is {layout.graph / LADYBUG_DB} writable, with no other process holding it?",
    }.get(store, "is the graph store available?")
    reason = f"{type(cause).__name__}: {cause}" if cause else "unknown error"
    return (
        f"graph store {key} failed to load run {failed.run_id} after {tries} tries ({reason}). "
        f"Nothing is lost: the Parquet outputs are intact in {layout.extract}, and "
        f"{len(missing)} run(s) not yet in the graph are listed as such "
        f"({', '.join(missing)}). To do: fix the store ({what_to_check}), then run the "
        f"nightly flow or export_flow for {layout.root} again; it loads what was missed."
    )


@flow(name="angiokg-export", log_prints=True)
def export_flow(params: ExportParams) -> ExportResult:
    layout = RunLayout(params.out)
    store = resolve_store(params.graph)
    key = store_key(store, layout)
    pending = runs_to_load(layout, key)
    loader = load_run_into_graph.with_options(retries=params.retries,
                                              retry_delay_seconds=params.retry_delays() or 0)
    rows: dict[str, int] = {}
    loaded: list[str] = []
    for number, run in enumerate(pending):
        state = loader(store, layout, key, run, return_state=True)
        if not state.is_completed():
            cause = state.result(raise_on_failure=False)
            missing = [r.run_id for r in pending[number:]]
            raise GraphStoreError(failure_message(
                store, key, layout, run, missing, params.retries + 1,
                cause if isinstance(cause, BaseException) else None))
        for name, count in state.result().items():
            rows[name] = rows.get(name, 0) + count
        loaded.append(run.run_id)
    graph_path = layout.graph / LADYBUG_DB if store == "ladybug" else None
    print(f"graph {key}: loaded {len(loaded)} new run(s) {loaded}; rows {rows}")
    return ExportResult(key, tuple(loaded), len(published_runs(layout.extract)) - len(pending),
                        rows, graph_path)
