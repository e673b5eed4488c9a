"""Against a real Neo4j: set NEO4J_URI (and NEO4J_USER, NEO4J_PASSWORD, NEO4J_DATABASE).

    docker run -p 7687:7687 -e NEO4J_AUTH=neo4j/testtest neo4j:5
    NEO4J_URI=neo4j://localhost:7687 NEO4J_PASSWORD=testtest pytest tests/test_neo4j_integration.py

The test writes reports with ids prefixed `itest-` and deletes them afterwards.
"""

import os
from dataclasses import replace

import pytest
from export_samples import (
    NASTY_SENTENCE,
    RUN_DATE,
    coordination_doc,
    lad_doc,
    make_doc,
    nasty_doc,
)
from graph_reports import (
    FINDINGS_PER_SEGMENT,
    MAX_STENOSIS,
    SEVERE_PROXIMAL_LAD,
    THREE_VESSEL_OR_LEFT_MAIN,
    documents,
)

from export import graph_model as gm
from export import parquet_sink as ps
from export.neo4j_store import Neo4jSettings, Neo4jWriter
from ingest.schema import load_schema

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not os.environ.get("NEO4J_URI"),
                       reason="NEO4J_URI is not set: no Neo4j server to test against"),
]

IDS = ["itest-1", "itest-2", "itest-3", "itest-4"]
# The hand-written query reports, renamed so the test can delete exactly what it wrote.
QUERY_DOCS = [replace(d, doc_id=f"itest-{d.doc_id}") for d in documents()]
IDS += [d.doc_id for d in QUERY_DOCS]


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
    # the findings point at the canonical tree, whatever the spelling
    records, _, _ = driver.execute_query(
        "MATCH (f:Finding)-[:AT_SEGMENT]->(s:Segment)-[:PART_OF]->(a:Artery) "
        "WHERE f.report_id IN $ids RETURN f.vessel_text AS v, s.id AS s, a.id AS a",
        {"ids": IDS}, database_=database)
    assert sorted((r["v"], r["s"], r["a"]) for r in records) == [
        ("前降支", "6", "LAD"), ("前降支", "6", "LAD"), ("回旋支", "11", "LCX"),
        ("左主干", "5", "LM")]
    records, _, _ = driver.execute_query(
        "MATCH (f:Finding {report_id: $id}) RETURN f.sentence AS s", {"id": IDS[2]},
        database_=database)
    assert [r["s"] for r in records] == [NASTY_SENTENCE]


def _ours(rows, key="report_id"):
    return [r for r in rows if str(r[key]).startswith("itest-q")]


def test_named_queries_answer_as_in_ladybug(writer):
    w, driver, database = writer
    w.load_documents(QUERY_DOCS, load_schema(), ps.RunInfo("itest", RUN_DATE, "m"))

    def ask(name):
        records, _, _ = driver.execute_query(gm.QUERIES[name], gm.QUERY_DEFAULTS.get(name, {}),
                                             database_=database)
        return [r.data() for r in records]

    assert [r["report_id"] for r in _ours(ask("severe-proximal-lad"))] == [
        f"itest-{r}" for r in SEVERE_PROXIMAL_LAD]
    assert [(r["report_id"], r["diseased_vessels"], r["left_main_disease"])
            for r in _ours(ask("three-vessel-or-left-main"))] == [
        (f"itest-{r}", n, lm) for r, n, lm in THREE_VESSEL_OR_LEFT_MAIN]
    assert {r["report_id"]: (r["dominance"], r["lm"], r["lad"], r["lcx"], r["rca"],
                             r["diseased_vessels"])
            for r in _ours(ask("max-stenosis-per-territory"))} == {
        f"itest-{k}": v for k, v in MAX_STENOSIS.items()}
    # the server may hold other reports: count ours per segment
    records, _, _ = driver.execute_query(
        "MATCH (s:Segment) WHERE s.id IS NOT NULL "  # not a Segment {name} of the old model
        "OPTIONAL MATCH (f:Finding)-[:AT_SEGMENT]->(s) "
        "WHERE f.report_id STARTS WITH 'itest-q' "
        "RETURN s.id AS segment, count(f) AS findings, count(DISTINCT f.report_id) AS reports",
        database_=database)
    assert {r["segment"]: (r["findings"], r["reports"]) for r in records} == FINDINGS_PER_SEGMENT


def test_two_relations_between_the_same_mentions_stay_two_edges(writer):
    w, driver, database = writer
    doc = make_doc(IDS[3], "前降支狭窄", [("T1", "BodyPart", "前降支", 0),
                                       ("T2", "Degree", "狭窄", 0)],
                   [("R1", "Modifier", "T2", "T1", 0.9), ("R2", "Modifier", "T2", "T1", 0.4)])
    w.load_documents([doc], load_schema(), ps.RunInfo("itest", RUN_DATE, "m"))
    w.load_documents([doc], load_schema(), ps.RunInfo("itest", RUN_DATE, "m"))
    records, _, _ = driver.execute_query(
        "MATCH (a:Mention)-[r:RELATED]->() WHERE a.report_id = $id "
        "RETURN r.relation_id AS id ORDER BY id", {"id": IDS[3]}, database_=database)
    assert [r["id"] for r in records] == ["R1", "R2"]


def test_a_load_logs_no_informational_notifications(writer, caplog):
    import logging

    w, _, _ = writer
    caplog.set_level(logging.DEBUG, logger="neo4j.notifications")
    docs = [lad_doc(IDS[0]), coordination_doc(IDS[1])]
    w.load_documents(docs, load_schema(), ps.RunInfo("itest", RUN_DATE, "m"))
    chatter = [r for r in caplog.records
               if r.name == "neo4j.notifications" and r.levelno <= logging.INFO]
    assert not chatter, chatter[:3]


def test_the_reports_of_a_run_are_read_back_for_a_redone_run(writer):
    # export.graph_sync asks which reports a run's earlier load wrote (a redone run's).
    w, _driver, _database = writer
    w.load_documents([lad_doc(IDS[0]), coordination_doc(IDS[1])], load_schema(),
                     ps.RunInfo("itest-redo", RUN_DATE, "m"))
    assert {IDS[0], IDS[1]} <= set(w.report_ids_of_run("itest-redo"))
    assert IDS[0] not in w.report_ids_of_run("itest-other")
