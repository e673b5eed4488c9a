"""Everything around the Neo4j driver, with a recording fake in place of the server."""

import logging

import pytest
from export_samples import RUN_DATE, coordination_doc, lad_doc

from export import graph_model as gm
from export import parquet_sink as ps
from export.neo4j_store import Neo4jConfigError, Neo4jSettings, Neo4jWriter, redact_uri
from ingest.schema import load_schema

SCHEMA = load_schema()
PASSWORD = "s3cr3t-Pa55word"
ENV = {"NEO4J_URI": "neo4j://db.example:7687", "NEO4J_USER": "loader",
       "NEO4J_PASSWORD": PASSWORD, "NEO4J_DATABASE": "angio"}


class FakeTx:
    def __init__(self, log):
        self.log = log

    def run(self, statement, parameters=None):
        self.log.append((statement, dict(parameters or {})))
        return self

    def consume(self):
        return None


class FakeSession:
    def __init__(self, log, database):
        self.log, self.database = log, database
        self.managed = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute_write(self, work):
        FakeDriver.managed += 1
        return work(FakeTx(self.log))


class FakeDriver:
    managed = 0

    def __init__(self):
        self.log = []
        self.databases = []

    def session(self, database=None):
        self.databases.append(database)
        return FakeSession(self.log, database)


def test_settings_come_from_the_environment():
    s = Neo4jSettings.from_env(ENV, batch_size=50)
    assert (s.uri, s.user, s.password, s.database, s.batch_size) == (
        "neo4j://db.example:7687", "loader", PASSWORD, "angio", 50)


def test_missing_uri_or_password_says_what_to_set():
    with pytest.raises(Neo4jConfigError, match="NEO4J_URI"):
        Neo4jSettings.from_env({})
    with pytest.raises(Neo4jConfigError, match="NEO4J_PASSWORD"):
        Neo4jSettings.from_env({"NEO4J_URI": "bolt://x"})


def test_password_can_come_from_a_prefect_secret_block():
    asked = []

    def loader(name):
        asked.append(name)
        return PASSWORD

    env = {"NEO4J_URI": "bolt://x", "NEO4J_PASSWORD_SECRET": "neo4j-password"}
    s = Neo4jSettings.from_env(env, secret_loader=loader)
    assert s.password == PASSWORD and asked == ["neo4j-password"]


def test_password_is_not_in_repr_str_or_logs(caplog, monkeypatch):
    env = dict(ENV, NEO4J_URI=f"neo4j://loader:{PASSWORD}@db.example:7687")
    s = Neo4jSettings.from_env(env)
    assert PASSWORD not in repr(s) and PASSWORD not in str(s) and PASSWORD not in f"{s!r}"
    assert PASSWORD not in redact_uri(s.uri)

    import neo4j

    monkeypatch.setattr(neo4j.GraphDatabase, "driver", lambda uri, auth: FakeDriver())
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("settings: %s", s)
        _, writer = Neo4jWriter.open(s)
        writer.load_documents([lad_doc()], SCHEMA, ps.RunInfo("r", RUN_DATE))
    assert caplog.text and PASSWORD not in caplog.text


def test_load_is_batched_in_managed_transactions_with_parameters_only():
    driver = FakeDriver()
    FakeDriver.managed = 0
    writer = Neo4jWriter(driver, database="angio", batch_size=2)
    docs = [lad_doc("r1"), coordination_doc("r2")]
    counts = writer.load_documents(docs, SCHEMA, ps.RunInfo("run-1", RUN_DATE, "m"))
    assert set(driver.databases) == {"angio"}
    assert FakeDriver.managed == len(driver.log)  # every statement in execute_write
    statements = [s for s, _ in driver.log]
    # deletes of the reports' earlier findings and mentions come before any MERGE
    first_merge = next(i for i, s in enumerate(statements) if "MERGE" in s)
    assert all("DETACH DELETE" in s for s in statements[:first_merge])
    assert first_merge == 2  # two reports, one batch, two per-report labels
    finding_batches = [p["rows"] for s, p in driver.log
                       if s == gm.merge_node_statement(gm.FINDING)]
    assert [len(b) for b in finding_batches] == [2, 2]
    assert counts["Finding"] == 4
    assert all(len(p.get("rows", [])) <= 2 for _, p in driver.log)
    for statement in statements:  # no report text spliced into a statement
        assert "前降支" not in statement and "狭窄" not in statement


def test_schema_statements_are_idempotent_constraints_and_indexes():
    driver = FakeDriver()
    Neo4jWriter(driver).ensure_schema()
    statements = [s for s, _ in driver.log]
    assert all("IF NOT EXISTS" in s for s in statements)
    assert sum("IS UNIQUE" in s for s in statements) == len(gm.NODES)
    assert "FOR (n:Finding) REQUIRE n.id IS UNIQUE" in statements[3]


def test_merge_statements_match_on_keys_and_set_every_property():
    st = gm.merge_node_statement(gm.FINDING)
    assert st.startswith("UNWIND $rows AS row MERGE (n:Finding {id: row.id}) SET ")
    assert all(f"n.{p.name} = row.{p.name}" in st for p in gm.FINDING.props[1:])
    rel = gm.merge_rel_statement(gm.IN_VESSEL)
    assert rel == ("UNWIND $rows AS row MATCH (a:Finding {id: row.src}), "
                   "(b:Vessel {name: row.dst}) MERGE (a)-[r:IN_VESSEL]->(b)")
    assert "CAST(row.percentage_low AS DOUBLE)" in gm.merge_node_statement(gm.FINDING,
                                                                          gm.LADYBUG)


def test_zero_batch_size_is_refused():
    with pytest.raises(Neo4jConfigError):
        Neo4jSettings("bolt://x", "u", "p", batch_size=0)


def test_a_uri_the_driver_refuses_is_reported_without_its_password():
    # The real driver refuses credentials in a bolt:// URI, quoting the URI in its message.
    s = Neo4jSettings(f"bolt://loader:{PASSWORD}@db.example:7687", "loader", PASSWORD)
    with pytest.raises(Neo4jConfigError, match="NEO4J_PASSWORD, never in the URI") as caught:
        Neo4jWriter.open(s)
    assert "bolt://***@db.example:7687" in str(caught.value)
    assert PASSWORD not in str(caught.value) and caught.value.__suppress_context__
