"""One shard through the model: every input gets one outcome, model failures fail one report."""

from __future__ import annotations

from extraction_fakes import FakeExtractor

from extraction.shard import extract_reports
from ingest.archive import ArchiveReport
from ingest.document import ReportStatus
from pipeline.summary import RunSummary, ShardResult


def _report(i: int, text: str | None = "前降支近段狭窄70%。", problem: str | None = None):
    return ArchiveReport(f"r{i}", text, f"src/r{i}.txt", problem)


def test_every_input_gets_exactly_one_outcome_in_input_order():
    reports = [_report(i) for i in range(4)] + [_report(4, None, "bad bytes")]
    shard = extract_reports(reports, FakeExtractor())
    assert [o.report_id for o in shard.outcomes] == [f"r{i}" for i in range(5)]
    assert [o.status for o in shard.outcomes] == ["ok"] * 4 + ["quarantined"]
    assert shard.outcomes[-1].status is ReportStatus.QUARANTINED
    assert shard.outcomes[-1].reason == "bad bytes"
    assert len(shard.documents) == 4


def test_predicted_offsets_point_into_the_original_text():
    text = "结论：\r\n前降支近段狭窄70%；回旋支未见狭窄。"
    (doc,) = extract_reports([_report(0, text)], FakeExtractor()).documents
    assert len(doc.entities) == 4
    assert all(doc.text[e.start:e.end] == e.text for e in doc.entities)
    assert doc.annotated is False  # a prediction, not an annotation


def test_a_report_that_makes_the_model_fail_is_failed_and_the_rest_go_on():
    reports = [_report(0), _report(1, "BOOM 前降支狭窄"), _report(2)]
    shard = extract_reports(reports, FakeExtractor())
    assert [o.status for o in shard.outcomes] == ["ok", "failed", "ok"]
    assert "CUDA out of memory" in shard.outcomes[1].reason
    assert "src/r1.txt" in shard.outcomes[1].reason
    assert [d.doc_id for d in shard.documents] == ["r0", "r2"]


def test_predictions_with_offsets_off_the_text_are_failed_not_written():
    shard = extract_reports([_report(0)], FakeExtractor(shift=1))
    assert shard.outcomes[0].status == "failed"
    assert "the report has" in shard.outcomes[0].reason
    assert shard.documents == ()


def test_summary_accounts_for_every_input_and_the_skipped():
    reports = [_report(0), _report(1, None, "empty"), _report(2, "BOOM")]
    results = [ShardResult.of(0, "k0", extract_reports(reports, FakeExtractor())),
               ShardResult.of(1, "k1", extract_reports([_report(3)], FakeExtractor()))]
    summary = RunSummary.of(run_id="t", model_version="fake-1", archive="a", run_date=None,
                            skipped=2, results=reversed(results), published=True)
    d = summary.to_dict()
    assert d["processed"] + d["quarantined"] + d["failed"] == d["inputs"] == 6
    assert (d["extracted"], d["skipped"], d["quarantined"], d["failed"]) == (2, 2, 1, 1)
    assert (d["shards"], d["entities"], d["relations"]) == (2, 4, 2)
    assert [p.split(":")[0] for p in d["problems"]] == ["quarantined", "failed"]
    assert RunSummary.from_dict(d) == summary


def test_a_summary_written_before_a_counter_existed_still_reads():
    old = {"run_id": "r", "model_version": "m", "archive": "a", "inputs": 3, "extracted": 3,
           "processed": 3, "problems": [], "a_counter_from_the_future": 7}
    summary = RunSummary.from_dict(old)
    assert (summary.inputs, summary.extracted, summary.warnings) == (3, 3, 0)


class _GraftExtractor(FakeExtractor):
    """Also marks vein grafts, a vessel spelling the coronary synonym table lacks."""

    def extract(self, documents, batch_size=64):
        from dataclasses import replace

        from ingest.document import Entity, Span

        for doc in super().extract(documents, batch_size):
            at = doc.text.find("大隐静脉桥")
            if at >= 0:
                graft = Entity(f"T{len(doc.entities) + 1}", "BodyPart",
                               (Span(at, at + 5),), "大隐静脉桥", 0.9)
                doc = replace(doc, entities=(*doc.entities, graft))
            yield doc


def test_the_run_summary_counts_and_lists_unmapped_spellings():
    shards = [[_report(0, "大隐静脉桥闭塞。前降支近段狭窄70%。"), _report(1, "大隐静脉桥通畅。")],
              [_report(2, "大隐静脉桥狭窄。"), _report(3)]]
    results = [ShardResult.of(k, f"k{k}", extract_reports(reports, _GraftExtractor()))
               for k, reports in enumerate(shards)]
    assert results[0].unmapped_spellings == (("BodyPart", "大隐静脉桥", 2),)
    summary = RunSummary.of(run_id="t", model_version="fake-1", archive="a", run_date=None,
                            skipped=0, results=results, published=True)
    assert summary.unmapped == 1
    assert summary.unmapped_spellings == (("BodyPart", "大隐静脉桥", 3),)
    d = summary.to_dict()
    assert d["unmapped_spellings"] == [{"type": "BodyPart", "text": "大隐静脉桥", "count": 3}]
    assert RunSummary.from_dict(d) == summary  # the run's JSON reads back
    assert "1 unmapped spellings" in summary.format()
    assert "大隐静脉桥 (BodyPart) x3" in summary.format()
    assert "ingest/data/coronary-synonyms.tsv" in summary.format()


def test_a_run_without_unmapped_spellings_says_nothing_about_them():
    result = ShardResult.of(0, "k", extract_reports([_report(0)], FakeExtractor()))
    summary = RunSummary.of(run_id="t", model_version="fake-1", archive="a", run_date=None,
                            skipped=0, results=[result], published=True)
    assert summary.unmapped == 0 and "unmapped" not in summary.format()


def test_characters_unknown_to_the_vocabulary_are_counted_per_run():
    from extraction.tokenizer import SPECIAL_TOKENS, CharTokenizer, model_text

    tokenizer = CharTokenizer((*SPECIAL_TOKENS, *sorted(set(model_text("前降支近段狭窄70%。")))))

    class ExtractorWithVocabulary(FakeExtractor):
        def unknown_characters(self, texts):
            return tokenizer.unknown_characters(texts)

    shards = [[_report(0, "前降支近段狭窄７０％。"), _report(1, "前降支钝缘支狭窄。")],
              [_report(2, None, "bad bytes"), _report(3, "钝缘支狭窄鬱")]]
    results = [ShardResult.of(i, f"k{i}", extract_reports(reports, ExtractorWithVocabulary()))
               for i, reports in enumerate(shards)]
    summary = RunSummary.of(run_id="t", model_version="fake-1", archive="a", run_date=None,
                            skipped=0, results=results, published=True)
    assert results[0].unknown_characters == (("钝", 1), ("缘", 1))  # ７０％ folds to 70%
    assert summary.unknown == 5
    assert summary.unknown_characters == (("钝", 2), ("缘", 2), ("鬱", 1))
    d = summary.to_dict()
    assert d["unknown_characters"] == [{"character": "钝", "count": 2},
                                       {"character": "缘", "count": 2},
                                       {"character": "鬱", "count": 1}]
    assert RunSummary.from_dict(d) == summary  # the run's JSON reads back
    assert "5 characters read as [UNK]" in summary.format()
    assert "'鬱' x1" in summary.format()
    plain = ShardResult.of(0, "k", extract_reports(shards[0], FakeExtractor()))
    assert plain.unknown_characters == ()
    assert "[UNK]" not in RunSummary.of(run_id="t", model_version="fake-1", archive="a",
                                        run_date=None, skipped=0, results=[plain],
                                        published=True).format()
