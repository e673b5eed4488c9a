"""The annotated corpus in the model's output shape: brat files -> the run's Parquet datasets.

`angiokg records CORPUS --out DIR` gives data engineers the gold annotations as the same five
datasets (records and report_summary, with reports, entities and triples beside them) that a
model's run writes, with no model: records built from the annotators' relations by the same
code as from predictions. Every report is accounted for: a report the validator rejects is a
`quarantined` row of the reports dataset with its findings as the reason. The corpus is read and
written in shards, so memory stays flat on a large one.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from export import parquet_sink as ps
from ingest.corpus import VALID, LoadedReport, iter_corpus
from ingest.document import ReportOutcome
from ingest.records import unmapped_spellings
from ingest.schema import Schema

SHARD_REPORTS = 256


@dataclass
class AnnotatedRun:
    run: ps.RunInfo
    reports: int = 0
    quarantined: int = 0
    unannotated: int = 0  # a .txt without .ann: a valid report, with no annotations to read
    records: int = 0
    unmapped: Counter[tuple[str, str]] = field(default_factory=Counter)

    def format(self, out: Path) -> str:
        unannotated = f", {self.unannotated} without .ann" if self.unannotated else ""
        lines = [f"{self.reports} reports ({self.reports - self.quarantined} valid"
                 f"{unannotated}, {self.quarantined} quarantined): {self.records} records; run "
                 f"{self.run.run_id} in {out} ({', '.join(ps.DATASETS)})"]
        if self.unmapped:
            shown = ", ".join(f"{text} ({kind}) x{n}"
                              for (kind, text), n in self.unmapped.most_common(10))
            lines.append(f"{len(self.unmapped)} spellings are not in the coronary synonym table "
                         f"(their records have no artery/segments): {shown}; add them to "
                         "ingest/data/coronary-synonyms.tsv")
        return "\n".join(lines)


def _outcome(report: LoadedReport) -> ReportOutcome:
    source = str(report.txt_path or report.ann_path)
    if report.status == VALID:
        unannotated = report.document is not None and not report.document.annotated
        return ReportOutcome(report.report_id, "ok",
                             "no .ann beside it: not annotated, so no records" if unannotated
                             else None, source)
    reason = "; ".join(f.format() for f in report.errors) or "not readable"
    return ReportOutcome(report.report_id, "quarantined", reason, source)


def write_annotated_run(corpus: str | Path, out: str | Path, schema: Schema, *,
                        run_id: str | None = None, run_date: dt.date | None = None
                        ) -> AnnotatedRun:
    """Write the corpus's datasets as one run under `out` (replacing an earlier run of the
    same id). Rows carry no model version and no confidence: they are the annotators'."""
    now = dt.datetime.now(dt.UTC)
    run = ps.RunInfo(run_id or now.strftime("annotations-%Y%m%dT%H%M%SZ"),
                     run_date or now.date(), None)
    result = AnnotatedRun(run)
    ps.begin_run(out, run, resume=False)
    shard: list[LoadedReport] = []

    def flush() -> None:
        documents = [r.document for r in shard if r.status == VALID and r.document is not None]
        tables = ps.document_tables(documents, [_outcome(r) for r in shard], schema, run)
        ps.write_shard(out, run, f"{result.reports // SHARD_REPORTS:05d}", tables)
        result.reports += len(shard)
        result.quarantined += len(shard) - len(documents)
        result.unannotated += sum(not d.annotated for d in documents)
        result.records += tables[ps.RECORDS].num_rows
        for document in documents:
            result.unmapped.update(unmapped_spellings(document))
        shard.clear()

    for report in iter_corpus(corpus, schema):
        shard.append(report)
        if len(shard) == SHARD_REPORTS:
            flush()
    if shard:
        flush()
    ps.commit_run(out, run)
    return result
