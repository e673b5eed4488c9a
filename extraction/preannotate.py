"""Pre-annotation: the model's predictions as brat files, so annotators correct instead of
starting blank.

Each report of IN_DIR is copied to OUT_DIR with a `.ann` of the predictions beside it (brat has
no confidence syntax, so confidences are dropped). Reports that cannot be read are reported and
left out; a report the model fails on is reported and copied with an empty `.ann`, so the
annotator still gets it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from extraction.batch import DocumentExtractor, build_shard, group_shards
from ingest.archive import iter_reports
from ingest.brat_writer import write_document
from ingest.document import Document


@dataclass
class PreannotateSummary:
    written: int = 0
    entities: int = 0
    relations: int = 0
    problems: list[str] = field(default_factory=list)

    def format(self) -> str:
        lines = [f"pre-annotated {self.written} reports: {self.entities} entities, "
                 f"{self.relations} relations; {len(self.problems)} problems"]
        return "\n".join(lines + [f"  {p}" for p in self.problems])


def preannotate(extractor: DocumentExtractor, in_dir: str | Path, out_dir: str | Path, *,
                batch_size: int = 64) -> PreannotateSummary:
    """Write `OUT_DIR/<id>.txt` + `<id>.ann` for every readable report under `in_dir`."""
    in_path, out_path = Path(in_dir).resolve(), Path(out_dir).resolve()
    if out_path == in_path:
        raise ValueError(f"{out_dir}: the output folder must differ from the input folder, or "
                         "the annotators' existing .ann files would be overwritten")
    summary = PreannotateSummary()
    groups = group_shards(iter_reports(in_path), skip=lambda _report: False)
    for index, (reports, _skipped) in enumerate(groups):
        shard = build_shard(index, reports, [], extractor, run_id="preannotate",
                            batch_size=batch_size)
        # The texts as read (not read again): a report the model failed on is copied as is.
        texts = {r.report_id: r.text for r in reports if r.text is not None}
        predicted = {d.doc_id: d for d in shard.documents}
        for outcome in shard.outcomes:
            if outcome.status == "quarantined":
                summary.problems.append(f"skipped: {outcome.reason}")
                continue
            document = predicted.get(outcome.report_id)
            if document is None:
                summary.problems.append(f"written without predictions: {outcome.reason}")
                document = Document(outcome.report_id, texts[outcome.report_id],
                                    annotated=False)
            write_document(document, out_path)
            summary.written += 1
            summary.entities += len(document.entities)
            summary.relations += len(document.relations)
    return summary

