"""Everything around the Neo4j driver, with a recording fake in place of the server."""

import logging

import pytest
from export_samples import RUN_DATE, coordination_doc, lad_doc

from export import graph_model as gm
from export import parquet_sink as ps
from export.graph_tables import graph_tables
from export.neo4j_store import Neo4jConfigError, Neo4jSettings, Neo4jWriter, redact_uri
from ingest.document import ReportOutcome
from ingest.schema import load_schema

SCHEMA = load_schema()
PASSWORD = "s3cr3t-Pa55word"
ENV = {"NEO4J_URI": "neo4j://db.example:7687", "NEO4J_USER": "loader",
       "NEO4J_PASSWORD": PASSWORD, "NEO4J_DATABASE": "angio"}


class FakeTx:
    def __init__(self, log, number):
        self.log, self.number = log, number

    def run(self, statement, parameters=None):
        self.log.append((statement, dict(parameters or {}), self.number))
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
        return work(FakeTx(self.log, FakeDriver.managed))


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


def test_a_secret_name_without_a_resolver_says_to_set_the_password():
    env = {"NEO4J_URI": "bolt://x", "NEO4J_PASSWORD_SECRET": "neo4j-password"}
    with pytest.raises(Neo4jConfigError, match="set NEO4J_PASSWORD here instead"):
        Neo4jSettings.from_env(env)


def test_the_command_line_hands_export_neo4j_prefects_secret_resolver():
    from flows.cli import build_parser
    from flows.secrets import prefect_secret

    args = build_parser().parse_args(["export-neo4j", "data"])
    assert args.secret_loader is prefect_secret and args.handler.__module__ == "export.export_cli"


def test_password_is_not_in_repr_str_or_logs(caplog, monkeypatch):
    env = dict(ENV, NEO4J_URI=f"neo4j://loader:{PASSWORD}@db.example:7687")
    s = Neo4jSettings.from_env(env)
    assert PASSWORD not in repr(s) and PASSWORD not in str(s) and PASSWORD not in f"{s!r}"
    assert PASSWORD not in redact_uri(s.uri)

    import neo4j

    config: dict = {}
    monkeypatch.setattr(neo4j.GraphDatabase, "driver",
                        lambda uri, auth, **kw: config.update(kw) or FakeDriver())
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("settings: %s", s)
        _, writer = Neo4jWriter.open(s)
        writer.load_documents([lad_doc()], SCHEMA, ps.RunInfo("r", RUN_DATE))
    assert caplog.text and PASSWORD not in caplog.text
    # The server sends no INFORMATION notifications (CartesianProduct notes at INFO).
    assert config == {"notifications_min_severity": "WARNING"}


def test_each_report_is_deleted_and_reloaded_in_one_transaction():
    driver = FakeDriver()
    FakeDriver.managed = 0
    writer = Neo4jWriter(driver, database="angio", batch_size=8)
    docs = [lad_doc("r1"), coordination_doc("r2"), lad_doc("r3")]
    counts = writer.load_documents(docs, SCHEMA, ps.RunInfo("run-1", RUN_DATE, "m"))
    assert set(driver.databases) == {"angio"}
    transactions: dict[int, list] = {}
    for statement, parameters, number in driver.log:
        transactions.setdefault(number, []).append((statement, parameters))
    first, *per_reports = transactions.values()
    # the coronary tree first, on its own: the same for every report
    assert {s.split(":")[1].split(" ")[0] for s, _ in first} <= {"Artery", "Segment)-[r",
                                                                   "Segment"}
    # then batches of whole reports (<= 8 Finding + Mention rows, r1 has 9: alone), each
    # deleting and reloading its reports inside one transaction
    loaded = []
    for statements in per_reports:
        deletes = [p["report_ids"] for s, p in statements if "DETACH DELETE" in s]
        first_merge = next(i for i, (s, _) in enumerate(statements) if "MERGE" in s)
        assert all("DETACH DELETE" in s for s, _ in statements[:first_merge])
        reports = [row["id"] for s, p in statements
                   if s == gm.merge_node_statement(gm.REPORT) for row in p["rows"]]
        assert deletes == [reports, reports]  # Finding and Mention of exactly these reports
        findings = [row["report_id"] for s, p in statements
                    if s == gm.merge_node_statement(gm.FINDING) for row in p["rows"]]
        assert set(findings) <= set(reports)
        loaded.append(reports)
    assert loaded == [["r1"], ["r2"], ["r3"]]
    assert counts["Finding"] == 6
    assert all(len(p.get("rows", [])) <= 8 for _, p, _ in driver.log)
    for statement, _, _ in driver.log:  # no report text spliced into a statement
        assert "前降支" not in statement and "狭窄" not in statement


def test_schema_statements_are_idempotent_constraints_and_indexes():
    driver = FakeDriver()
    Neo4jWriter(driver).ensure_schema()
    statements = [s for s, _, _ in driver.log]
    assert all("IF NOT EXISTS" in s for s in statements)
    assert sum("IS UNIQUE" in s for s in statements) == len(gm.NODES)
    assert "FOR (n:Finding) REQUIRE n.id IS UNIQUE" in statements[3]
    assert "FOR (n:Finding) ON (n.stenosis)" in " ".join(statements)


def test_merge_statements_match_on_keys_and_set_every_property():
    st = gm.merge_node_statement(gm.FINDING)
    assert st.startswith("UNWIND $rows AS row MERGE (n:Finding {id: row.id}) SET ")
    assert all(f"n.{p.name} = row.{p.name}" in st for p in gm.FINDING.props[1:])
    rel = gm.merge_rel_statement(gm.IN_ARTERY)
    assert rel == ("UNWIND $rows AS row MATCH (a:Finding {id: row.src}), "
                   "(b:Artery {id: row.dst}) MERGE (a)-[r:IN_ARTERY]->(b)")
    related = gm.merge_rel_statement(gm.RELATED)
    assert "MERGE (a)-[r:RELATED {relation_id: row.relation_id}]->(b) SET r.relation = " in related
    assert "r.relation_id =" not in related
    assert "CAST(row.segments AS STRING[])" in gm.merge_node_statement(gm.FINDING, gm.LADYBUG)
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


def test_a_run_is_read_and_loaded_shard_by_shard_with_its_rows_counted_once(tmp_path):
    run = ps.RunInfo("run-1", RUN_DATE, "m")
    shards = [[lad_doc("r1")], [coordination_doc("r2"), lad_doc("r3")]]
    ps.begin_run(tmp_path, run, resume=False)
    for number, docs in enumerate(shards):
        outcomes = [ReportOutcome(d.doc_id, "ok", None, d.source) for d in docs]
        ps.write_shard(tmp_path, run, f"{number:05d}",
                       ps.document_tables(docs, outcomes, SCHEMA, run))
    ps.commit_run(tmp_path, run)
    driver = FakeDriver()
    counts = Neo4jWriter(driver, database="angio", batch_size=8).load_run(tmp_path, run)
    whole = graph_tables(ps.read_run(tmp_path, run), run.run_id)
    assert counts == {name: t.num_rows for name, t in whole.items()}
    # each piece merges the tree again (idempotent), and no statement carries another
    # shard's reports: r1's delete and merge come before any of r2's or r3's
    deleted = [p["report_ids"] for s, p, _ in driver.log if "DETACH DELETE" in s]
    assert deleted == [["r1"], ["r1"], ["r2"], ["r2"], ["r3"], ["r3"]]
    trees = [s for s, _, _ in driver.log if s == gm.merge_node_statement(gm.ARTERY)]
    assert len(trees) == len(shards) * -(-whole[gm.ARTERY.label].num_rows // 8)  # 8 a batch
