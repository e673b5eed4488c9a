"""Graph store policy: which store, its ledger key, opening it, and what to say when it fails.

The stores themselves are `export.ladybug_store` (embedded, the default) and
`export.neo4j_store` (when NEO4J_URI is set: `graph="auto"`); `module:factory` names any other
(tests inject failing stores that way: the factory is called with the graph folder).
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from export import graph_model as gm
from export.published import RunInfo

LADYBUG_DB = "angiokg.lbug"


class GraphStore(Protocol):
    batch_size: int

    def load_run(self, root: str | Path, run: RunInfo) -> dict[str, int]: ...

    def report_ids_of_run(self, run_id: str) -> list[str]: ...

    def transaction(self, statements: Any) -> None: ...


class GraphStoreError(RuntimeError):
    """The graph store could not be loaded; the message says what is intact and what to do."""


def resolve_store(graph: str) -> str:
    """`auto` made concrete: Neo4j when NEO4J_URI is configured, else the embedded graph."""
    if graph == "auto":
        return "neo4j" if os.environ.get("NEO4J_URI") else "ladybug"
    return graph


def store_key(store: str) -> str:
    """The ledger's name for a store: which database, never its credentials."""
    if store == "ladybug":
        return f"ladybug:{LADYBUG_DB}"
    if store == "neo4j":
        from export.neo4j_store import redact_uri

        uri = redact_uri(os.environ.get("NEO4J_URI", ""))
        return f"neo4j:{uri}/{os.environ.get('NEO4J_DATABASE', 'neo4j')}"
    return f"factory:{store}"


def dialect_of(store: str) -> str:
    """The Cypher dialect the store speaks (a `module:factory` store is a LadybugDB one)."""
    return gm.NEO4J if store == "neo4j" else gm.LADYBUG


def graph_path(store: str, graph_dir: Path) -> Path | None:
    """The embedded database's path (None for a server)."""
    return graph_dir / LADYBUG_DB if store == "ladybug" else None


@contextlib.contextmanager
def open_store(store: str, graph_dir: Path, *,
               secret_loader: Callable[[str], str] | None = None) -> Iterator[GraphStore]:
    """`secret_loader`: how Neo4j's NEO4J_PASSWORD_SECRET is resolved (the flows pass Prefect's
    Secret blocks; this package never imports Prefect)."""
    if store == "ladybug":
        from export.ladybug_store import LadybugStore

        with LadybugStore(graph_dir / LADYBUG_DB) as lb:
            yield lb
    elif store == "neo4j":
        from export.neo4j_store import Neo4jSettings, Neo4jWriter

        driver, writer = Neo4jWriter.open(Neo4jSettings.from_env(secret_loader=secret_loader))
        try:
            # Fail fast when the server is down: the driver's own retries would spend 30 s
            # per attempt; the caller's retries with back-off take over from here.
            driver.verify_connectivity()
            writer.ensure_schema()
            yield writer
        finally:
            driver.close()
    else:
        module_name, _, attr = store.partition(":")
        factory: Any = getattr(importlib.import_module(module_name), attr)
        with contextlib.ExitStack() as stack:
            made = factory(graph_dir)
            yield stack.enter_context(made) if hasattr(made, "__enter__") else made


def describe_error(error: BaseException) -> str:
    """`Type: message` on one line (a driver's multi-line message would break a log line)."""
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def failure_message(store: str, key: str, failed: RunInfo, missing: list[str], tries: int,
                    cause: BaseException | None, *, parquet_root: Path, graph_dir: Path,
                    run_folder: Path) -> str:
    what_to_check = {
        "neo4j": "is Neo4j running and reachable at NEO4J_URI, and are NEO4J_USER / "
                 "NEO4J_PASSWORD right?",
        "ladybug": f"is {graph_dir / LADYBUG_DB} writable, with no other process holding it?",
    }.get(store, "is the graph store available?")
    reason = describe_error(cause) if cause else "unknown error"
    return (
        f"graph store {key} failed to load run {failed.run_id} after {tries} tries ({reason}). "
        f"Nothing is lost: the Parquet outputs are intact in {parquet_root}, and "
        f"{len(missing)} run(s) not yet in the graph are listed as such "
        f"({', '.join(missing)}). To do: fix the store ({what_to_check}), then run the "
        f"nightly flow or export_flow for {run_folder} again; it loads what was missed."
    )
