"""The graph model in Neo4j, through the official driver.

Every write is a batched `UNWIND $rows ... MERGE` (the statements in `export.graph_model`, and
the load plan in `export.graph_load`, both shared with LadybugDB). A batch of reports is one
`session.execute_write`, a managed transaction the driver retries on transient errors
(deadlocks, leader changes): it deletes the findings and mentions an earlier load wrote for
those reports and merges them anew, so a reader never sees a report without its findings.
Constraints and indexes use `IF NOT EXISTS`.

Credentials come from the environment (NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD, NEO4J_DATABASE)
or a secret named by NEO4J_PASSWORD_SECRET, which the caller's `secret_loader` resolves (the
flows pass `flows.secrets.prefect_secret`, a Prefect Secret block: nothing below flows imports
Prefect); the password is never part of a repr, a log line or an error message.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from export import graph_model as gm
from export.graph_load import Statement, add_counts, delete_statements, merge_load
from export.graph_model import DEFAULT_BATCH_SIZE
from export.graph_tables import graph_tables, run_graph_pieces
from export.parquet_sink import RunInfo, document_tables
from ingest.document import Document, ReportOutcome
from ingest.schema import Schema

logger = logging.getLogger(__name__)

_USERINFO = re.compile(r"//[^/@]*@")
# The server sends no INFORMATION notifications (the driver logs each one at INFO: a planner
# note such as CartesianProduct per statement, ~170 lines on a sample load); warnings still come.
NOTIFICATIONS_MIN_SEVERITY = "WARNING"


class Neo4jConfigError(ValueError):
    """The Neo4j settings are missing or wrong; the message says which variable to set."""


def redact_uri(uri: str) -> str:
    """The URI without any `user:password@` part, fit for logs."""
    return _USERINFO.sub("//***@", uri)


SecretLoader = Callable[[str], str]


@dataclass(frozen=True)
class Neo4jSettings:
    uri: str
    user: str
    password: str = field(repr=False)
    database: str = "neo4j"
    batch_size: int = DEFAULT_BATCH_SIZE

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise Neo4jConfigError(f"batch size must be at least 1, got {self.batch_size}")

    def __repr__(self) -> str:  # the URI may hold credentials too
        return (f"Neo4jSettings(uri={redact_uri(self.uri)!r}, user={self.user!r}, "
                f"database={self.database!r}, batch_size={self.batch_size})")

    __str__ = __repr__

    def redact(self, text: str) -> str:
        """`text` without the password or a URI's `user:password@` part."""
        text = redact_uri(text)
        return text.replace(self.password, "***") if self.password else text

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        secret_loader: SecretLoader | None = None,
    ) -> Neo4jSettings:
        """`secret_loader`: resolves NEO4J_PASSWORD_SECRET (a name) to the password; without
        one, that variable is refused with what to do instead."""
        env = os.environ if env is None else env
        uri = env.get("NEO4J_URI", "").strip()
        if not uri:
            raise Neo4jConfigError("NEO4J_URI is not set (e.g. neo4j://localhost:7687)")
        password = env.get("NEO4J_PASSWORD")
        if password is None and env.get("NEO4J_PASSWORD_SECRET"):
            if secret_loader is None:
                raise Neo4jConfigError(
                    "NEO4J_PASSWORD_SECRET names a Prefect Secret block, which only the flows "
                    "and the angiokg command read; set NEO4J_PASSWORD here instead")
            password = secret_loader(env["NEO4J_PASSWORD_SECRET"])
        if password is None:
            raise Neo4jConfigError(
                "NEO4J_PASSWORD is not set; set it, or NEO4J_PASSWORD_SECRET to the name of a "
                "Prefect Secret block holding it"
            )
        return cls(uri=uri, user=env.get("NEO4J_USER", "neo4j"), password=password,
                   database=env.get("NEO4J_DATABASE", "neo4j"), batch_size=batch_size)


class Neo4jWriter:
    """Writes graph tables to one database of a driver (which the caller owns and closes)."""

    def __init__(self, driver: Any, *, database: str = "neo4j",
                 batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self._driver = driver
        self.database = database
        self.batch_size = batch_size

    @classmethod
    def open(cls, settings: Neo4jSettings) -> tuple[Any, Neo4jWriter]:
        """A driver from settings and a writer on it; close the driver when done."""
        import neo4j

        logger.info("connecting to %s as %s (database %s)", redact_uri(settings.uri),
                    settings.user, settings.database)
        try:
            driver = neo4j.GraphDatabase.driver(
                settings.uri, auth=(settings.user, settings.password),
                notifications_min_severity=NOTIFICATIONS_MIN_SEVERITY)
        except Exception as exc:
            # The driver's message quotes the URI, which may hold a password ("URI userinfo is
            # not supported ... Given URI: 'bolt://user:pw@...'"). `from None`: the original
            # must not reach a traceback in the logs either.
            raise Neo4jConfigError(
                f"NEO4J_URI {redact_uri(settings.uri)} was refused by the Neo4j driver "
                f"({settings.redact(str(exc))}); set it to neo4j://host:7687 or "
                "bolt://host:7687 and give the user and password in NEO4J_USER and "
                "NEO4J_PASSWORD, never in the URI"
            ) from None
        return driver, cls(driver, database=settings.database, batch_size=settings.batch_size)

    def transaction(self, statements: Iterable[Statement]) -> None:
        """One managed write transaction; the driver may run `work` again on a transient error,
        which the MERGE and DELETE statements allow."""
        statements = list(statements)

        def work(tx: Any) -> None:
            for statement, parameters in statements:
                tx.run(statement, parameters).consume()

        with self._driver.session(database=self.database) as session:
            session.execute_write(work)

    def ensure_schema(self) -> None:
        for statement in gm.neo4j_schema_statements():
            self.transaction([(statement, {})])  # schema commands take a transaction each

    def delete_reports(self, report_ids: Sequence[str]) -> None:
        self.transaction(delete_statements(report_ids, self.batch_size))

    def report_ids_of_run(self, run_id: str) -> list[str]:
        """The reports a load of `run_id` wrote (export.graph_sync: a redone run's)."""
        def work(tx: Any) -> list[str]:
            result = tx.run("MATCH (r:Report) WHERE r.run_id = $run RETURN r.id AS id",
                            {"run": run_id})
            return [record["id"] for record in result]

        with self._driver.session(database=self.database) as session:
            return session.execute_read(work)

    def load_graph(self, graph: Mapping[str, pa.Table]) -> dict[str, int]:
        """Replace the reports in `graph` (tables from `graph_tables`); returns rows per table."""
        counts = merge_load(self, graph, gm.NEO4J)
        logger.info("neo4j database %s: loaded %d reports", self.database,
                    graph[gm.REPORT.label].num_rows)
        return counts

    def load_run(self, root: str | Path, run: RunInfo) -> dict[str, int]:
        """Shard by shard, as LadybugStore.load_run: one shard's tables in memory at a time."""
        counts: dict[str, int] = {}
        for graph in run_graph_pieces(root, run):
            add_counts(counts, self.load_graph(graph))
        return counts

    def load_documents(self, documents: Sequence[Document], schema: Schema, run: RunInfo,
                       outcomes: Sequence[ReportOutcome] | None = None) -> dict[str, int]:
        if outcomes is None:
            outcomes = [ReportOutcome(d.doc_id, "ok", None, d.source) for d in documents]
        tables = document_tables(documents, outcomes, schema, run)
        return self.load_graph(graph_tables(tables, run.run_id))
