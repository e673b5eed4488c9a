"""A graph store that fails the way real ones do, and a graph's full contents to compare loads.

Not a test module (no `test_` prefix); the export reliability tests import it.

`graph_faults:store` is an `ExportParams.graph` factory: a real `LadybugStore` in the file the
flow's own embedded store uses, with the fault described in `<run folder>/graph-fault.json`.
The test writes that file to break the store and deletes it to repair it, so a failing night
and the night after use the same store and the same ledger key. Every attempt is appended to
`<run folder>/graph-attempts.jsonl` (a file, not a global: the attempt may be in a subprocess
that the test kills), so a test can count retries and measure the back-off between them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from export import graph_model as gm
from export.graph_stores import LADYBUG_DB
from export.ladybug_store import LadybugStore
from export.parquet_sink import RunInfo, read_dataset
from flows.state import RunLayout

FAULT_FILE = "graph-fault.json"
ATTEMPTS_FILE = "graph-attempts.jsonl"
# The first edge table after every node table: a load stopped here leaves Findings and
# Mentions in the graph with only some of their edges, the worst half-load to recover from.
MIDWAY = "COPY MENTIONS"


class SimulatedOutage(ConnectionError):
    """What the faulty store raises: a connection lost or refused."""


@dataclass(frozen=True)
class Fault:
    """unreachable: every open is refused. fail / hang: loading `run_id` fails (or blocks
    forever, for a test to kill it) at the first statement starting with `at`, on its first
    `times` attempts (on every attempt when `times` is None)."""

    kind: Literal["unreachable", "fail", "hang"]
    run_id: str | None = None
    at: str = MIDWAY
    times: int | None = None

    def save(self, layout: RunLayout) -> None:
        layout.root.mkdir(parents=True, exist_ok=True)
        (layout.root / FAULT_FILE).write_text(json.dumps(asdict(self)), encoding="utf-8")

    @classmethod
    def load(cls, layout: RunLayout) -> Fault | None:
        path = layout.root / FAULT_FILE
        return cls(**json.loads(path.read_text("utf-8"))) if path.exists() else None


def repair(layout: RunLayout) -> None:
    (layout.root / FAULT_FILE).unlink(missing_ok=True)


@dataclass(frozen=True)
class Attempt:
    what: str  # "open" or "load"
    run_id: str | None
    at: float  # time.time(): comparable across processes


def _record(layout: RunLayout, attempt: Attempt) -> None:
    with (layout.root / ATTEMPTS_FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(asdict(attempt)) + "\n")


def attempts(layout: RunLayout, what: str, run_id: str | None = None) -> list[Attempt]:
    path = layout.root / ATTEMPTS_FILE
    if not path.exists():
        return []
    found = [Attempt(**json.loads(line)) for line in path.read_text("utf-8").splitlines()]
    return [a for a in found if a.what == what and (run_id is None or a.run_id == run_id)]


class FaultyLadybugStore(LadybugStore):
    def __init__(self, layout: RunLayout, fault: Fault | None) -> None:
        super().__init__(layout.graph / LADYBUG_DB)
        self.layout = layout
        self.fault = fault
        self._armed = False

    def load_run(self, root: str | Path, run: RunInfo) -> dict[str, int]:
        earlier = len(attempts(self.layout, "load", run.run_id))
        _record(self.layout, Attempt("load", run.run_id, time.time()))
        fault = self.fault
        self._armed = (fault is not None and fault.kind != "unreachable"
                       and fault.run_id == run.run_id
                       and (fault.times is None or earlier < fault.times))
        return super().load_run(root, run)

    def _execute(self, cypher: str, parameters: Mapping[str, Any]) -> None:
        if self._armed and self.fault is not None and cypher.startswith(self.fault.at):
            if self.fault.kind == "hang":
                (self.layout.root / "graph-hanging").touch()
                time.sleep(3600)
            raise SimulatedOutage(f"connection to the graph store lost at {self.fault.at!r} "
                                  "(simulated)")
        super()._execute(cypher, parameters)


def store(graph_dir: Path) -> FaultyLadybugStore:
    """The `module:factory` store: called with the run folder's graph/ folder."""
    layout = RunLayout(Path(graph_dir).parent)
    """The `graph_faults:store` factory."""
    _record(layout, Attempt("open", None, time.time()))
    fault = Fault.load(layout)
    if fault is not None and fault.kind == "unreachable":
        raise SimulatedOutage("graph store refused the connection (simulated)")
    return FaultyLadybugStore(layout, fault)


def _sort_key(row: tuple[Any, ...]) -> str:
    return repr(row)  # rows hold None next to strings and numbers


def graph_contents(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every node and edge of a LadybugDB graph with all its properties, per label or type,
    sorted: two graphs with equal contents hold the same nodes and edges, each as many times."""
    contents: dict[str, list[tuple[Any, ...]]] = {}
    with LadybugStore(path, read_only=True) as graph:
        for spec in gm.NODES:
            props = ", ".join(f"n.{p.name}" for p in spec.props)
            rows = graph.query(f"MATCH (n:{spec.label}) RETURN {props}").rows
            contents[spec.label] = sorted(rows, key=_sort_key)
        for rel in gm.RELS:
            props = "".join(f", r.{p.name}" for p in rel.props)
            rows = graph.query(f"MATCH (a:{rel.start.label})-[r:{rel.type}]->"
                               f"(b:{rel.end.label}) RETURN a.{rel.start.key}, "
                               f"b.{rel.end.key}{props}").rows
            contents[rel.type] = sorted(rows, key=_sort_key)
    return contents


def clean_load(extract_root: Path, runs: list[RunInfo], path: Path) -> dict[str, list[Any]]:
    """The contents of a fresh graph that loaded each run once, with nothing going wrong."""
    with LadybugStore(path) as graph:
        for run in runs:
            graph.load_run(extract_root, run)
    return graph_contents(path)


def without_floats(contents: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """Contents with every float blanked: for graphs from two runs of a model whose
    confidences differ in the last digits (batches padded differently), not in what they hold."""
    return {name: sorted((tuple(None if isinstance(v, float) else v for v in row)
                          for row in rows), key=_sort_key)
            for name, rows in contents.items()}


def assert_graph_holds_every_row(contents: dict[str, list[tuple[Any, ...]]],
                                 extract_root: Path) -> None:
    """The graph against the Parquet it was loaded from, not against another load: a report
    node per reports row, a mention (and MENTIONS edge) per entity, a RELATED edge per triple,
    a finding per record."""
    rows = {name: read_dataset(extract_root, name).num_rows
            for name in ("reports", "entities", "triples", "records")}
    assert rows["entities"] and rows["triples"] and rows["records"], rows  # data to compare
    assert len(contents["Report"]) == rows["reports"]
    assert len(contents["Mention"]) == len(contents["MENTIONS"]) == rows["entities"]
    assert len(contents["RELATED"]) == rows["triples"]
    assert len(contents["Finding"]) == len(contents["HAS_FINDING"]) == rows["records"]
