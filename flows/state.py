"""Where a run folder keeps what, and the small ledgers that carry state from one night to the next.

A run folder (`--out`) is the unit an operator backs up or deletes: outputs for analysts
(models, Parquet, graph, quarantine, summaries) and, under `state/`, what the next night needs:
the current-model pointer, the ledger of publications already loaded into the graph, and Prefect's
persisted task results (so a cached ingest or training survives a fresh Prefect database).
Every file here is written by `ingest.atomic` (fsync'd temp file + rename): a crash never
leaves half a ledger.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from export.published import Publication
from ingest.atomic import write_json_atomic


@dataclass(frozen=True)
class RunLayout:
    root: Path

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def results(self) -> Path:
        """Prefect result storage: cache records and results a retry needs."""
        return self.state / "prefect-results"

    @property
    def prefect_home(self) -> Path:
        return self.state / "prefect-home"

    @property
    def current_model_file(self) -> Path:
        return self.state / "current_model.json"

    @property
    def graph_ledger_file(self) -> Path:
        return self.state / "graph_loaded.json"

    @property
    def ingest(self) -> Path:
        return self.root / "ingest"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def extract(self) -> Path:
        """Parquet datasets and the run manifest of the batch extraction (pipeline.manifest)."""
        return self.root / "extract"

    @property
    def graph(self) -> Path:
        return self.root / "graph"

    @property
    def queue(self) -> Path:
        """One annotation queue (a brat collection) per night's run, `queue/<run_id>/`."""
        return self.root / "queue"

    @property
    def summaries(self) -> Path:
        return self.root / "summaries"


def tree_sha256(root: Path, suffixes: Iterable[str] = (".txt", ".ann")) -> str:
    """Hash of every file's relative path and bytes under `root`: the corpus's identity.

    Used as the cache key for ingest and training and to decide "annotations changed".
    """
    wanted = tuple(suffixes)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(wanted)):
        digest.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@dataclass(frozen=True)
class CurrentModel:
    """The pointer extraction reads: which model directory is "the model" tonight."""

    model_dir: str
    corpus_sha256: str
    profile: str
    trained_at: str

    @classmethod
    def now(cls, model_dir: Path, corpus_sha256: str, profile: str) -> CurrentModel:
        return cls(str(model_dir), corpus_sha256, profile,
                   datetime.now(UTC).isoformat(timespec="seconds"))


def read_current_model(layout: RunLayout) -> CurrentModel | None:
    path = layout.current_model_file
    if not path.exists():
        return None
    try:
        return CurrentModel(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{path}: not a current-model pointer ({exc}); delete it and run train_flow again"
        ) from exc


def write_current_model(layout: RunLayout, pointer: CurrentModel) -> None:
    write_json_atomic(layout.current_model_file, asdict(pointer))


def _read_ledger(layout: RunLayout) -> dict[str, list[str]]:
    path = layout.graph_ledger_file
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    stores = data.get("stores") if isinstance(data, dict) else None
    if not isinstance(stores, dict):
        raise ValueError(f"{path}: expected {{\"stores\": {{store: [publish ids]}}}}; fix or "
                         "delete it (export_flow then loads every run again)")
    return {str(k): [str(r) for r in v] for k, v in stores.items()}


def read_graph_ledger(layout: RunLayout, store_key: str) -> list[str]:
    """What is already in this graph store: the `Publication.publish_id` of each run's load
    (`run-x#7-9f2c01ab`: the run and which publication of it), in load order.

    Keyed by store (e.g. `ladybug:/path` or `neo4j:bolt://host/db`): switching stores loads
    everything into the new one. A ledger written when it held run ids alone lists those: they
    match no publication, so each such run is loaded once more (harmless: a load replaces its
    reports' findings, and the loads go in publish order).
    """
    return _read_ledger(layout).get(store_key, [])


def loaded_before(layout: RunLayout, store_key: str, run_id: str) -> bool:
    """Some publication of `run_id` is in the store already (loading another is a redo)."""
    return any(e.split("#", 1)[0] == run_id for e in read_graph_ledger(layout, store_key))


def record_graph_loaded(layout: RunLayout, store_key: str, publication: Publication) -> None:
    """`publication` is in the store: it replaces the run's earlier entry (an earlier
    publication of the same run id, or a run-id-only entry), so the ledger holds one per run."""
    ledger = _read_ledger(layout)
    run_id = publication.run.run_id
    earlier = ledger.get(store_key, [])
    kept = [e for e in earlier if e.split("#", 1)[0] != run_id]
    loaded = [*kept, publication.publish_id]
    if loaded != earlier:
        ledger[store_key] = loaded
        write_json_atomic(layout.graph_ledger_file, {"stores": ledger})
