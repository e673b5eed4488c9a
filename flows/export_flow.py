"""export_flow: the runs published in Parquet -> the graph store, each run once, in publish order.

A ledger in the run folder (`state/graph_loaded.json`, per store) records each publication once
its load has finished, so a night whose graph load failed is picked up by the next night. It is
keyed by what was published (`Publication.publish_id`: the run id and which publication of it),
not by run id: a run redone under its id (`--run-id`, its partition replaced) is published again
and loaded again, once. Loading a run again is harmless: the stores replace a report's findings
rather than adding to them, so loading in publish order leaves each report's current extraction
in the graph (`export.current`).
Which store, opening it and the failure message are `export.graph_stores`; this flow is the
loop with retries and back-off.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed, State

from export.graph_stores import (
    GraphStoreError,
    describe_error,
    dialect_of,
    failure_message,
    graph_path,
    open_store,
    resolve_store,
    store_key,
)
from export.graph_sync import restore_left_behind
from export.published import Publication, publications
from flows import run_names
from flows.logs import Explained, readable_run_logs
from flows.parameters import ExportParams, documented_by
from flows.secrets import prefect_secret
from flows.state import RunLayout, loaded_before, read_graph_ledger, record_graph_loaded


@dataclass(frozen=True)
class ExportResult:
    store: str
    loaded: tuple[str, ...]
    already_loaded: int
    rows: dict[str, int]
    graph_path: Path | None


@task(cache_policy=NO_CACHE)
def runs_to_load(layout: RunLayout, key: str) -> list[Publication]:
    """The publications not in the store yet, in publish order (a redone run's new one too)."""
    loaded = set(read_graph_ledger(layout, key))
    return [p for p in publications(layout.extract) if p.publish_id not in loaded]


# Its message says what is intact and what to do: no traceback around it in the run's logs.
Explained.register(GraphStoreError)


def _run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The task run's logger; the module's when called outside one (a test's plain call)."""
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


class GraphLoadFailed(Explained, RuntimeError):
    """Every try of one run's load failed; `cause` is the last error."""

    def __init__(self, tries: int, cause: BaseException) -> None:
        super().__init__(f"{tries} tries failed, the last with {describe_error(cause)}")
        self.tries, self.cause = tries, cause


@task(cache_policy=NO_CACHE)
def load_run_into_graph(store: str, layout: RunLayout, key: str, publication: Publication,
                        delays: list[float]) -> dict[str, int]:
    """One published run into the store, tried once and then once after each of `delays` (back-off).

    The retries are this loop, not Prefect's: each failed try is one WARNING line saying what
    failed and when the next try comes (Prefect logs its retries at INFO with a traceback, and
    its UI shows a list of delays as NaN); the last failure raises GraphLoadFailed.
    """
    run = publication.run
    redone = loaded_before(layout, key, run.run_id)
    for attempt, delay in enumerate([*delays, None], start=1):
        try:
            with open_store(store, layout.graph, secret_loader=prefect_secret) as graph:
                rows = graph.load_run(layout.extract, run)
                if redone:  # reports its earlier publication had, and this one has not
                    restored = restore_left_behind(graph, layout.extract, run,
                                                   dialect_of(store))
                    if restored:
                        _run_logger().info(
                            "run %s was redone: %d report(s) it no longer holds are back on "
                            "their earlier extraction, %d removed (no run holds them)",
                            run.run_id, len(restored.reloaded), len(restored.removed))
            record_graph_loaded(layout, key, publication)  # only once the whole run is in
            return rows
        except Exception as exc:
            if delay is None:
                raise GraphLoadFailed(attempt, exc) from None
            _run_logger().warning(
                "graph load of run %s into %s failed (try %d of %d: %s); next try in %g s",
                run.run_id, key, attempt, len(delays) + 1, describe_error(exc), delay)
            time.sleep(delay)
    raise AssertionError("unreachable: the last try returns or raises")


@flow(name="angiokg-export", flow_run_name=run_names.dated("export"), log_prints=True,
      description="Load every published run the graph store has not got yet (Neo4j when "
      "NEO4J_URI is set, else the embedded LadybugDB), each once, with back-off retries.")
@documented_by(ExportParams)
def export_flow(out: Path, graph: str = "auto", retries: int = 3,
                retry_delay_s: float = 10.0) -> ExportResult | State:
    """The runs not yet in the graph, in publish order. When a run cannot be loaded the flow
    ends Failed with one message (what is intact, what is missing, what to do), its data the
    GraphStoreError; the runs after it wait for the next run of this flow."""
    readable_run_logs()
    params = ExportParams.from_arguments(locals())
    logger = get_run_logger()
    layout = RunLayout(params.out)
    store = resolve_store(params.graph)
    key = store_key(store)
    pending = runs_to_load(layout, key)
    rows: dict[str, int] = {}
    for number, publication in enumerate(pending):
        run = publication.run
        state = load_run_into_graph(store, layout, key, publication, params.retry_delays(),
                                    return_state=True)
        if not state.is_completed():
            failed = state.result(raise_on_failure=False)
            cause = failed.cause if isinstance(failed, GraphLoadFailed) else failed
            message = failure_message(
                store, key, run, [p.run.run_id for p in pending[number:]], params.retries + 1,
                cause if isinstance(cause, BaseException) else None,
                parquet_root=layout.extract, graph_dir=layout.graph, run_folder=layout.root)
            logger.error(message)
            return Failed(message=message, data=GraphStoreError(message))
        for name, count in state.result().items():
            rows[name] = rows.get(name, 0) + count
    loaded = tuple(p.run.run_id for p in pending)
    if loaded:
        print(f"graph {key}: loaded {len(loaded)} new run(s) {list(loaded)}; rows {rows}")
    else:
        print(f"graph {key}: nothing new to load (every published run is in it)")
    return ExportResult(key, loaded, len(publications(layout.extract)) - len(pending), rows,
                        graph_path(store, layout.graph))
