"""The streaming run: every input gets one outcome, model failures fail one report, not the run."""

from __future__ import annotations

from extraction_fakes import FakeExtractor

from extraction.batch import RunSummary, extract_shards, group_shards
from ingest.archive import ArchiveReport


def _report(i: int, text: str | None = "前降支近段狭窄70%。", problem: str | None = None):
    return ArchiveReport(f"r{i}", text, f"src/r{i}.txt", problem)


def test_every_input_gets_exactly_one_outcome_across_shards():
    reports = [_report(i) for i in range(10)] + [_report(10, None, "bad bytes")]
    shards = list(extract_shards(reports, FakeExtractor(), run_id="t", max_reports=4))
    assert [len(s.outcomes) for s in shards] == [4, 4, 3]
    ids = [o.report_id for s in shards for o in s.outcomes]
    assert ids == [f"r{i}" for i in range(11)]
    statuses = [o.status for s in shards for o in s.outcomes]
    assert statuses == ["ok"] * 10 + ["quarantined"]
    assert shards[-1].outcomes[-1].reason == "bad bytes"
    assert all(len(s.documents) == sum(o.status == "ok" for o in s.outcomes) for s in shards)


def test_predicted_offsets_point_into_the_original_text():
    text = "结论：\r\n前降支近段狭窄70%；回旋支未见狭窄。"
    (shard,) = extract_shards([_report(0, text)], FakeExtractor(), run_id="t")
    (doc,) = shard.documents
    assert len(doc.entities) == 4
    assert all(doc.text[e.start:e.end] == e.text for e in doc.entities)


def test_a_report_that_makes_the_model_fail_is_failed_and_the_rest_go_on():
    reports = [_report(0), _report(1, "BOOM 前降支狭窄"), _report(2)]
    (shard,) = extract_shards(reports, FakeExtractor(), run_id="t")
    assert [o.status for o in shard.outcomes] == ["ok", "failed", "ok"]
    assert "CUDA out of memory" in shard.outcomes[1].reason
    assert "src/r1.txt" in shard.outcomes[1].reason
    assert [d.doc_id for d in shard.documents] == ["r0", "r2"]


def test_predictions_with_offsets_off_the_text_are_failed_not_written():
    (shard,) = extract_shards([_report(0)], FakeExtractor(shift=1), run_id="t")
    assert shard.outcomes[0].status == "failed"
    assert "the report has" in shard.outcomes[0].reason
    assert shard.documents == ()


def test_skipped_reports_are_counted_but_get_no_outcome():
    reports = [_report(i) for i in range(5)]
    extractor = FakeExtractor()
    shards = list(extract_shards(reports, extractor, run_id="t", max_reports=2,
                                 skip=lambda r: r.report_id in {"r0", "r3", "r4"}))
    assert [o.report_id for s in shards for o in s.outcomes] == ["r1", "r2"]
    assert extractor.calls == 2
    summary = RunSummary("t", "fake-1", "a")
    for shard in shards:
        summary.add(shard)
    assert (summary.inputs, summary.processed, summary.skipped, summary.extracted) == (5, 5, 3, 2)


def test_shards_close_on_the_character_budget():
    reports = [_report(i, "前" * 100) for i in range(5)]
    groups = list(group_shards(reports, skip=lambda _r: False, max_reports=100, max_chars=250))
    assert [len(todo) for todo, _ in groups] == [3, 2]


def test_shard_key_is_the_same_for_the_same_reports_and_differs_otherwise():
    a = [_report(i) for i in range(3)]
    b = [_report(i) for i in range(3)]
    c = [_report(i, "右冠狭窄") for i in range(3)]
    key = lambda rs: next(extract_shards(rs, FakeExtractor(), run_id="x")).key  # noqa: E731
    assert key(a) == key(b) != key(c)


def test_summary_accounts_for_every_input():
    reports = [_report(0), _report(1, None, "empty"), _report(2, "BOOM")]
    summary = RunSummary("t", "fake-1", "a")
    for shard in extract_shards(reports, FakeExtractor(), run_id="t"):
        summary.add(shard)
    d = summary.to_dict()
    assert d["processed"] + d["quarantined"] + d["failed"] == d["inputs"] == 3
    assert (d["extracted"], d["quarantined"], d["failed"]) == (1, 1, 1)
    assert len(d["problems"]) == 2
