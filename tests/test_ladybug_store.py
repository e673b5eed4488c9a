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

from export import parquet_sink as ps
from export.graph_model import batches
from export.graph_tables import run_graph_pieces
from export.ladybug_store import LadybugStore
from ingest.document import ReportOutcome
from ingest.schema import load_schema

SCHEMA = load_schema()
RUN = ps.RunInfo("run-1", RUN_DATE, "model-7")


def count(store, pattern):
    return store.query(f"MATCH {pattern} RETURN count(*)").rows[0][0]


def snapshot(store):
    return {
        "findings": count(store, "(f:Finding)"),
        "mentions": count(store, "(m:Mention)"),
        "arteries": count(store, "(a:Artery)"),
        "segments": count(store, "(s:Segment)"),
        "part_of": count(store, "()-[:PART_OF]->()"),
        "has_finding": count(store, "()-[:HAS_FINDING]->()"),
        "in_artery": count(store, "()-[:IN_ARTERY]->()"),
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
    assert first == {"findings": 4, "mentions": 12, "arteries": 16, "segments": 18,
                     "part_of": 18, "has_finding": 4, "in_artery": 4, "at_segment": 4,
                     "related": 10, "derived": 4}
    store.load_documents(docs, SCHEMA, RUN)
    assert snapshot(store) == first


def test_reloading_a_report_replaces_its_findings(store):
    store.load_documents([lad_doc(pct="80%")], SCHEMA, RUN)
    store.load_documents([lad_doc(pct="60%")], SCHEMA, RUN)
    rows = store.query(
        "MATCH (:Report {id: 'r1'})-[:HAS_FINDING]->(f:Finding) WHERE NOT f.negated "
        "RETURN f.percentage_text, f.percentage_low, f.run_id, f.model_version").rows
    assert rows == (("60%", 60.0, "run-1", "model-7"),)


def test_canonical_nodes_join_every_spelling_of_one_artery(store):
    # 前降支 and 左前降支 and LAD were three Vessel nodes; they are one Artery now.
    docs = [make_doc("r1", "前降支近段狭窄80%", [("T1", "BodyPart", "前降支", 0),
                     ("T2", "Location", "近段", 0), ("T3", "Degree", "狭窄", 0),
                     ("T4", "Quantifier", "80%", 0)],
                     [("R1", "Modifier", "T3", "T1", 0.9), ("R2", "Position", "T1", "T2", 0.9),
                      ("R3", "Percentage", "T3", "T4", 0.9)]),
            make_doc("r2", "左前降支开口狭窄90%", [("T1", "BodyPart", "左前降支", 0),
                     ("T2", "Location", "开口", 0), ("T3", "Degree", "狭窄", 0),
                     ("T4", "Quantifier", "90%", 0)],
                     [("R1", "Modifier", "T3", "T1", 0.9), ("R2", "Position", "T1", "T2", 0.9),
                      ("R3", "Percentage", "T3", "T4", 0.9)])]
    store.load_documents(docs, SCHEMA, RUN)
    rows = store.query(
        "MATCH (f:Finding)-[:IN_ARTERY]->(a:Artery {id: 'LAD'}), (f)-[:AT_SEGMENT]->(s:Segment)"
        "-[:PART_OF]->(a) RETURN f.report_id, f.vessel_text, f.location_text, s.id, s.name "
        "ORDER BY f.report_id").rows
    assert rows == (("r1", "前降支", "近段", "6", "LAD proximal"),
                    ("r2", "左前降支", "开口", "6", "LAD proximal"))
    [(segments, stenosis)] = store.query(
        "MATCH (f:Finding {report_id: 'r2'}) RETURN f.segments, f.stenosis").rows
    assert (segments, stenosis) == (["6"], 90.0)


def test_report_nodes_carry_the_report_summary(store):
    store.load_documents([lad_doc("r1", "80%")], SCHEMA, RUN)
    [row] = store.query(
        "MATCH (r:Report {id: 'r1'}) RETURN r.dominance, r.dominance_assumed, r.max_stenosis_lm,"
        " r.max_stenosis_lm_segments, r.max_stenosis_lad, r.max_stenosis_lad_segments,"
        " r.max_stenosis_rca, r.diseased_vessels, r.left_main_disease, r.total_occlusions").rows
    assert row == ("right", True, 0.0, ["5"], 80.0, ["6"], None, 1, False, 0)


def test_two_relations_between_the_same_mentions_stay_two_edges(tmp_path):
    doc = make_doc("r1", "前降支狭窄",
                   [("T1", "BodyPart", "前降支", 0), ("T2", "Degree", "狭窄", 0)],
                   [("R1", "Modifier", "T2", "T1", 0.9), ("R2", "Modifier", "T2", "T1", 0.4)])
    ps.write_run(tmp_path / "data", RUN, ps.document_tables([doc], outcomes_for([doc]), SCHEMA,
                                                            RUN))
    for bulk in (True, False):
        with LadybugStore(tmp_path / f"g-{bulk}.lbug") as g:
            if bulk:
                g.load_run(tmp_path / "data", RUN)
            else:
                g.load_documents([doc], SCHEMA, RUN)
            edges = g.query("MATCH ()-[r:RELATED]->() RETURN r.relation_id, r.probability "
                            "ORDER BY r.relation_id").rows
            assert edges == (("R1", 0.9), ("R2", 0.4)), f"bulk={bulk}"


def test_a_failing_load_leaves_every_report_as_it_was(store, monkeypatch):
    store.load_documents([lad_doc("r1", "80%")], SCHEMA, RUN)
    before = snapshot(store)
    real = store._execute

    def fail_on_mentions(cypher, parameters):
        if cypher.startswith("UNWIND $rows AS row MERGE (n:Mention"):
            raise ConnectionError("lost (simulated)")
        real(cypher, parameters)

    monkeypatch.setattr(store, "_execute", fail_on_mentions)
    with pytest.raises(ConnectionError):
        store.load_documents([lad_doc("r1", "50%")], SCHEMA, RUN)
    monkeypatch.undo()
    # the delete of r1's findings ran in the failed transaction, and was rolled back with it
    assert snapshot(store) == before
    [(pct,)] = store.query("MATCH (f:Finding) WHERE NOT f.negated RETURN f.percentage_text").rows
    assert pct == "80%"


def test_a_graph_of_the_earlier_model_is_refused_with_how_to_rebuild(tmp_path):
    import ladybug as lb

    db = lb.Database(str(tmp_path / "old.lbug"))
    conn = lb.Connection(db)
    conn.execute("CREATE NODE TABLE Vessel(name STRING, PRIMARY KEY(name))")
    conn.close()
    db.close()
    from export.ladybug_store import GraphSchemaError

    with pytest.raises(GraphSchemaError, match="rebuild it"):
        LadybugStore(tmp_path / "old.lbug")


def test_bulk_copy_from_parquet_equals_incremental_merge(tmp_path):
    docs = [lad_doc(), coordination_doc()]
    ps.write_run(tmp_path / "data", RUN, ps.document_tables(docs, outcomes_for(docs), SCHEMA, RUN))
    with LadybugStore(tmp_path / "bulk.lbug") as bulk:
        bulk.load_run(tmp_path / "data", RUN)
        bulk.load_run(tmp_path / "data", RUN)  # a run loaded twice: replaced, not doubled
        bulk_counts = snapshot(bulk)
        props = bulk.query("MATCH (f:Finding {vessel: '回旋支'}) RETURN f.segment, "
                           "f.segments, f.percentage_high, f.confidence, f.run_id").rows
    with LadybugStore(tmp_path / "merge.lbug") as merged:
        merged.load_documents(docs, SCHEMA, RUN)
        assert snapshot(merged) == bulk_counts
    assert props == (("近段", ["11"], 50.0, 0.8, "run-1"),)



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


def write_two_shards(data, order):
    """r1 processed in one shard, its refused duplicate beside r2 in the other; `order`: the
    shard numbers the two parts get."""
    dup = ReportOutcome("r1", "quarantined", "duplicate report id 'r1'", "b/r1.txt")
    parts = [ps.document_tables([lad_doc("r1")], outcomes_for([lad_doc("r1")]), SCHEMA, RUN),
             ps.document_tables([coordination_doc("r2")],
                                outcomes_for([coordination_doc("r2")], [dup]), SCHEMA, RUN)]
    ps.begin_run(data, RUN, resume=False)
    for number, part in zip(order, parts, strict=True):
        ps.write_shard(data, RUN, f"{number:05d}", part)
    ps.commit_run(data, RUN)


def test_a_run_loaded_piece_by_piece_keeps_the_processed_row_of_a_duplicate_id(tmp_path):
    # Loaded shard by shard (run_graph_pieces, as Neo4jWriter.load_run does), the refused
    # duplicate of r1 must not replace the r1 processed in another shard, whichever comes first.
    with LadybugStore(tmp_path / "merge.lbug") as merged:
        merged.load_documents([lad_doc("r1"), coordination_doc("r2")], SCHEMA, RUN)
        whole = snapshot(merged)
    for order in ((0, 1), (1, 0)):
        data = tmp_path / f"data{order[0]}"
        write_two_shards(data, order)
        with LadybugStore(tmp_path / f"pieces{order[0]}.lbug") as pieces:
            for graph in run_graph_pieces(data, RUN):
                pieces.load_graph(graph, bulk=True)
            statuses = pieces.query("MATCH (r:Report) RETURN r.id, r.status ORDER BY r.id").rows
            assert snapshot(pieces) == whole, order
        assert statuses == (("r1", "ok"), ("r2", "ok")), order
        with LadybugStore(tmp_path / f"bulk{order[0]}.lbug") as bulk:
            bulk.load_run(data, RUN)
            assert snapshot(bulk) == whole, order


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


def test_a_load_too_big_for_the_buffer_pool_says_what_to_raise_and_changes_nothing(tmp_path):
    from export.ladybug_store import BUFFER_POOL_ENV, GraphBufferPoolError

    docs = [lad_doc("r1"), coordination_doc("r2")]
    ps.write_run(tmp_path / "data", RUN, ps.document_tables(docs, outcomes_for(docs), SCHEMA, RUN))
    with LadybugStore(tmp_path / "graph.lbug", batch_size=2) as roomy:
        roomy.load_documents([lad_doc("r1", "50%")], SCHEMA, RUN)
        before = snapshot(roomy)
    # 32 MiB opens the database but cannot hold a bulk load (LadybugDB needs ~40 MiB for even a
    # small one); its own message names no setting, and the failed ROLLBACK used to hide it
    with LadybugStore(tmp_path / "graph.lbug", buffer_pool_mib=32) as tight, \
            pytest.raises(GraphBufferPoolError, match=BUFFER_POOL_ENV) as failed:
        tight.load_run(tmp_path / "data", RUN)
    assert "(32 MiB)" in str(failed.value) and "buffer pool is full" in str(failed.value)
    with LadybugStore(tmp_path / "graph.lbug", read_only=True) as after:
        assert snapshot(after) == before
        assert after.query("MATCH (f:Finding) WHERE NOT f.negated "
                           "RETURN f.percentage_text").rows == (("50%",),)
    assert not any("staging" in p.name for p in tmp_path.iterdir())


def test_the_buffer_pool_cap_comes_from_the_environment_with_a_clear_error(tmp_path,
                                                                        monkeypatch):
    from export.ladybug_store import (
        BUFFER_POOL_ENV,
        DEFAULT_BUFFER_POOL_MIB,
        buffer_pool_mib_from_env,
    )

    assert buffer_pool_mib_from_env({}) is None  # not given: the store sizes it
    assert buffer_pool_mib_from_env({BUFFER_POOL_ENV: " "}) is None
    assert buffer_pool_mib_from_env({BUFFER_POOL_ENV: " 512 "}) == 512
    assert buffer_pool_mib_from_env({BUFFER_POOL_ENV: "0"}) == 0  # LadybugDB's own default
    for bad in ("lots", "-1", "1.5"):
        with pytest.raises(ValueError, match=BUFFER_POOL_ENV):
            buffer_pool_mib_from_env({BUFFER_POOL_ENV: bad})
    monkeypatch.setenv(BUFFER_POOL_ENV, "96")
    with LadybugStore(tmp_path / "graph.lbug") as store:
        assert store.buffer_pool_mib == 96
    monkeypatch.delenv(BUFFER_POOL_ENV)
    with LadybugStore(tmp_path / "other.lbug") as store:
        assert store.buffer_pool_mib == DEFAULT_BUFFER_POOL_MIB


def test_a_bulk_load_leaves_no_staging_files_and_clears_a_killed_loads(tmp_path):
    docs = [lad_doc("r1"), coordination_doc("r2")]
    ps.write_run(tmp_path / "data", RUN, ps.document_tables(docs, outcomes_for(docs), SCHEMA, RUN))
    graph_dir = tmp_path / "graph"
    stale = graph_dir / ".angiokg.lbug.staging-killed"  # what a load killed midway leaves
    stale.mkdir(parents=True)
    (stale / "Finding-00000.parquet").write_bytes(b"half written")
    mine = graph_dir / "notes.txt"  # anything else in the folder is not the store's
    mine.write_text("keep", encoding="utf-8")
    with LadybugStore(graph_dir / "angiokg.lbug") as store:
        counts = store.load_run(tmp_path / "data", RUN)
        assert count(store, "(f:Finding)") == counts["Finding"] == 4
    assert sorted(p.name for p in graph_dir.iterdir() if "staging" in p.name) == []
    assert mine.read_text(encoding="utf-8") == "keep"


def test_the_default_pool_is_what_a_run_needs_within_half_the_memory():
    from export.ladybug_store import DEFAULT_BUFFER_POOL_MIB, pool_mib_for

    assert pool_mib_for(0, 64_000) == pool_mib_for(10_000, 64_000) == DEFAULT_BUFFER_POOL_MIB
    assert pool_mib_for(20_000, 64_000) == 480  # 24 MiB per 1,000 reports
    assert pool_mib_for(1_000_000, 4_096) == 2_048  # never above half of the machine's memory
    assert pool_mib_for(20_000, 0) == DEFAULT_BUFFER_POOL_MIB  # memory unknown: the default
    # reports the graph already holds cost their deletes too: a whole run reloaded, twice
    assert pool_mib_for(20_000, 64_000, replaced=20_000) == 480 + 360
    assert pool_mib_for(20_000, 64_000, replaced=5_000) == 480 + 90
    # 10,000 reloaded over themselves failed at 320 MiB (2026-12-02)
    assert pool_mib_for(10_000, 64_000, replaced=10_000) == 420 > 320


def test_a_run_replacing_loaded_reports_gets_the_pool_its_deletes_need_too(tmp_path,
                                                                           monkeypatch):
    from export import ladybug_store
    from export.ladybug_store import BUFFER_POOL_ENV

    # two reports are made to need 96 MiB as new ones, and 8 MiB more for each the graph holds
    monkeypatch.setattr(ladybug_store, "DEFAULT_BUFFER_POOL_MIB", 32)
    monkeypatch.setattr(ladybug_store, "POOL_MIB_PER_1000_REPORTS", 48_000)
    monkeypatch.setattr(ladybug_store, "POOL_MIB_PER_1000_REPLACED", 8_000)
    monkeypatch.delenv(BUFFER_POOL_ENV, raising=False)
    docs = [lad_doc("r1"), coordination_doc("r2")]
    ps.write_run(tmp_path / "data", RUN, ps.document_tables(docs, outcomes_for(docs), SCHEMA, RUN))
    db = tmp_path / "graph.lbug"
    with LadybugStore(db, buffer_pool_mib=64) as store:  # r1 alone, as a night before loaded it
        store.load_documents([lad_doc("r1")], SCHEMA, RUN)
    with LadybugStore(db) as half:
        half.load_run(tmp_path / "data", RUN)
        assert half.buffer_pool_mib == 96 + 8
    with LadybugStore(db) as whole:
        whole.load_run(tmp_path / "data", RUN)
        assert whole.buffer_pool_mib == 96 + 16
        assert count(whole, "(n:Report)") == 2
        assert count(whole, "(f:Finding)") == 4


def test_a_run_too_big_for_the_default_pool_gets_a_larger_one_and_a_given_pool_is_a_cap(
        tmp_path, monkeypatch):
    from export import ladybug_store
    from export.ladybug_store import BUFFER_POOL_ENV, GraphBufferPoolError

    docs = [lad_doc("r1"), coordination_doc("r2")]
    ps.write_run(tmp_path / "data", RUN, ps.document_tables(docs, outcomes_for(docs), SCHEMA, RUN))
    # a default of 32 MiB cannot hold even this small bulk load (the test above); a run of two
    # reports is made to need 96
    monkeypatch.setattr(ladybug_store, "DEFAULT_BUFFER_POOL_MIB", 32)
    monkeypatch.setattr(ladybug_store, "POOL_MIB_PER_1000_REPORTS", 48_000)
    monkeypatch.delenv(BUFFER_POOL_ENV, raising=False)
    with LadybugStore(tmp_path / "grown.lbug") as grown:
        assert grown.buffer_pool_mib == 32
        grown.load_run(tmp_path / "data", RUN)
        assert grown.buffer_pool_mib == 96
        assert count(grown, "(n:Report)") == 2
    monkeypatch.setenv(BUFFER_POOL_ENV, "32")
    with LadybugStore(tmp_path / "capped.lbug") as capped, \
            pytest.raises(GraphBufferPoolError, match=BUFFER_POOL_ENV):
        capped.load_run(tmp_path / "data", RUN)
    assert capped.buffer_pool_mib == 32
