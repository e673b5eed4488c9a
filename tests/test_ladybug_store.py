"""The shared statements run against a real embedded LadybugDB."""

import pytest
from export_samples import (
    NASTY_SENTENCE,
    RUN_DATE,
    coordination_doc,
    lad_doc,
    make_doc,
    nasty_doc,
    outcomes_for,
)

from export import graph_model as gm
from export import parquet_sink as ps
from export.graph_model import batches
from export.ladybug_store import LadybugStore
from ingest.schema import load_schema

SCHEMA = load_schema()
RUN = ps.RunInfo("run-1", RUN_DATE, "model-7")


def count(store, pattern):
    return store.query(f"MATCH {pattern} RETURN count(*)").rows[0][0]


def snapshot(store):
    return {
        "findings": count(store, "(f:Finding)"),
        "mentions": count(store, "(m:Mention)"),
        "vessels": count(store, "(v:Vessel)"),
        "has_finding": count(store, "()-[:HAS_FINDING]->()"),
        "at_segment": count(store, "()-[:AT_SEGMENT]->()"),
        "related": count(store, "()-[:RELATED]->()"),
        "derived": count(store, "()-[:DERIVED_FROM]->()"),
    }


@pytest.fixture
def store(tmp_path):
    with LadybugStore(tmp_path / "graph.lbug", batch_size=2) as s:
        yield s


def test_incremental_merge_loads_the_model_and_reload_adds_nothing(store):
    docs = [lad_doc(), coordination_doc()]
    store.load_documents(docs, SCHEMA, RUN)
    first = snapshot(store)
    assert first == {"findings": 4, "mentions": 12, "vessels": 3, "has_finding": 4,
                     "at_segment": 3, "related": 10, "derived": 4}
    store.load_documents(docs, SCHEMA, RUN)
    assert snapshot(store) == first


def test_reloading_a_report_replaces_its_findings(store):
    store.load_documents([lad_doc(pct="80%")], SCHEMA, RUN)
    store.load_documents([lad_doc(pct="60%")], SCHEMA, RUN)
    rows = store.query(
        "MATCH (:Report {id: 'r1'})-[:HAS_FINDING]->(f:Finding) WHERE NOT f.negated "
        "RETURN f.percentage_text, f.percentage_low, f.run_id, f.model_version").rows
    assert rows == (("60%", 60.0, "run-1", "model-7"),)


def test_analyst_queries_answer_from_the_graph(store):
    store.load_documents([lad_doc("r1", "80%"), lad_doc("r4", "50%"), coordination_doc()],
                         SCHEMA, RUN)
    q = gm.QUERIES
    severe = store.query(q["severe-proximal-lad"], gm.QUERY_DEFAULTS["severe-proximal-lad"])
    assert severe.rows == (("r1",),)
    per_segment = dict(((v, s), n) for v, s, n in
                       store.query(q["findings-per-vessel-segment"]).rows)
    assert per_segment == {("前降支", "近段"): 3, ("左主干", None): 2, ("回旋支", "近段"): 1}
    negated = store.query(q["negated-per-report"]).rows
    assert [(r, n) for r, n, _ in negated] == [("r1", 1), ("r4", 1)]


def test_bulk_copy_from_parquet_equals_incremental_merge(tmp_path):
    docs = [lad_doc(), coordination_doc()]
    ps.write_run(tmp_path / "data", RUN, ps.document_tables(docs, outcomes_for(docs), SCHEMA, RUN))
    with LadybugStore(tmp_path / "bulk.lbug") as bulk:
        bulk.load_run(tmp_path / "data", RUN)
        bulk.load_run(tmp_path / "data", RUN)  # a run loaded twice: replaced, not doubled
        bulk_counts = snapshot(bulk)
        props = bulk.query("MATCH (f:Finding {vessel: '回旋支'}) RETURN f.segment, "
                           "f.percentage_high, f.confidence, f.run_id").rows
    with LadybugStore(tmp_path / "merge.lbug") as merged:
        merged.load_documents(docs, SCHEMA, RUN)
        assert snapshot(merged) == bulk_counts
    assert props == (("近段", 50.0, 0.8, "run-1"),)



def test_bulk_load_of_a_run_written_in_shards_loses_no_row(tmp_path):
    # A run read back from many shards is a table of many record batches, some of them empty
    # (a shard whose reports had no entity); LadybugDB's Arrow scan drops rows after an empty
    # batch unless the store hands it one contiguous chunk.
    quiet = make_doc("r0", "术后安返病房。", [], [])
    shards = [[quiet], [lad_doc("r1")], [make_doc("r5", "嘱观察。", [], [])],
              [coordination_doc("r2"), lad_doc("r4", "50%")]]
    ps.begin_run(tmp_path / "data", RUN, resume=False)
    for number, docs in enumerate(shards):
        tables = ps.document_tables(docs, outcomes_for(docs), SCHEMA, RUN)
        ps.write_shard(tmp_path / "data", RUN, f"{number:05d}", tables)
    ps.commit_run(tmp_path / "data", RUN)
    with LadybugStore(tmp_path / "bulk.lbug") as bulk:
        claimed = bulk.load_run(tmp_path / "data", RUN)
        loaded = snapshot(bulk)
        reports = count(bulk, "(r:Report)")
    with LadybugStore(tmp_path / "merge.lbug") as merged:
        merged.load_documents([d for docs in shards for d in docs], SCHEMA, RUN)
        assert loaded == snapshot(merged)
    assert reports == claimed["Report"] == 5
    assert loaded["mentions"] == claimed["Mention"] == 19 and loaded["related"] == 15

def test_report_text_with_cypher_quotes_and_backslashes_is_stored_verbatim(store):
    doc = nasty_doc()
    store.load_documents([doc], SCHEMA, RUN)
    [(sentence,)] = store.query("MATCH (f:Finding) RETURN f.sentence").rows
    assert sentence == NASTY_SENTENCE
    assert count(store, "(r:Report)") == 1  # the DETACH DELETE in the text ran nowhere
    texts = {t for (t,) in store.query("MATCH (m:Mention) RETURN m.text").rows}
    assert texts == {"前降支", "狭窄"}


def test_schema_creation_is_idempotent(store):
    store.ensure_schema()
    store.ensure_schema()
    assert count(store, "(n:Report)") == 0


def test_batches_split_rows_and_refuse_zero():
    assert [list(b) for b in batches([1, 2, 3, 4, 5], 2)] == [[1, 2], [3, 4], [5]]
    with pytest.raises(ValueError):
        list(batches([1], 0))
