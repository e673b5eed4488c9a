"""Against a real Neo4j: set NEO4J_URI (and NEO4J_USER, NEO4J_PASSWORD, NEO4J_DATABASE).

    docker run -p 7687:7687 -e NEO4J_AUTH=neo4j/testtest neo4j:5
    NEO4J_URI=neo4j://localhost:7687 NEO4J_PASSWORD=testtest pytest tests/test_neo4j_integration.py

The test writes reports with ids prefixed `itest-` and deletes them afterwards.
"""

import os

import pytest
from export_samples import NASTY_SENTENCE, RUN_DATE, coordination_doc, lad_doc, nasty_doc

from export import graph_model as gm
from export import parquet_sink as ps
from export.neo4j_store import Neo4jSettings, Neo4jWriter
from ingest.schema import load_schema

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not os.environ.get("NEO4J_URI"),
                       reason="NEO4J_URI is not set: no Neo4j server to test against"),
]

IDS = ["itest-1", "itest-2", "itest-3"]


@pytest.fixture
def writer():
    settings = Neo4jSettings.from_env(batch_size=3)
    driver, writer = Neo4jWriter.open(settings)
    try:
        writer.ensure_schema()
        writer.ensure_schema()  # idempotent
        writer.delete_reports(IDS)
        yield writer, driver, settings.database
        writer.delete_reports(IDS)
        driver.execute_query("MATCH (r:Report) WHERE r.id IN $ids DETACH DELETE r",
                             {"ids": IDS}, database_=settings.database)
    finally:
        driver.close()


def _count(driver, database, query):
    records, _, _ = driver.execute_query(query, {"ids": IDS}, database_=database)
    return records[0][0]


def test_load_reload_and_query_on_a_real_server(writer):
    w, driver, database = writer
    docs = [lad_doc(IDS[0]), coordination_doc(IDS[1]), nasty_doc(IDS[2])]
    run = ps.RunInfo("itest", RUN_DATE, "m")
    w.load_documents(docs, load_schema(), run)
    findings_q = ("MATCH (r:Report)-[:HAS_FINDING]->(f:Finding) WHERE r.id IN $ids "
                  "RETURN count(f)")
    first = _count(driver, database, findings_q)
    assert first == 5
    w.load_documents(docs, load_schema(), run)
    assert _count(driver, database, findings_q) == first
    records, _, _ = driver.execute_query(
        gm.QUERIES["severe-proximal-lad"], gm.QUERY_DEFAULTS["severe-proximal-lad"],
        database_=database)
    assert IDS[0] in [r["report_id"] for r in records]
    records, _, _ = driver.execute_query(
        "MATCH (f:Finding {report_id: $id}) RETURN f.sentence AS s", {"id": IDS[2]},
        database_=database)
    assert [r["s"] for r in records] == [NASTY_SENTENCE]
