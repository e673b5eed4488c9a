"""One shard of reports through the model: an outcome for every report, a prediction for the good.

The run protocol (`pipeline.run`) decides which reports make a shard and what becomes of its
outputs; this room only turns the shard's reports into `ReportOutcome`s and predicted
`Document`s. A report the model fails on becomes `failed` with the reason and the rest of its
shard goes on; a batch that fails is retried report by report to find the culprit.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from ingest.archive import ArchiveReport
from ingest.document import Document, ReportOutcome, ReportStatus
from ingest.schema import Schema

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 64


class DocumentExtractor(Protocol):
    """What the run needs of `extraction.predict.Extractor` (a fake satisfies it in tests)."""

    model_version: str
    schema: Schema

    def extract(self, documents: Iterable[Document], batch_size: int = DEFAULT_BATCH_SIZE
                ) -> Iterator[Document]: ...

    def unknown_characters(self, texts: Iterable[str]) -> Counter[str]:
        """How often each character of `texts` is read as [UNK] by the model's vocabulary."""
        ...


@dataclass(frozen=True)
class ExtractedShard:
    """`outcomes`: one per input report, in input order. `documents`: the predictions of the
    `ok` outcomes, in the same order. `warnings`: the inputs' non-fatal notes."""

    outcomes: tuple[ReportOutcome, ...]
    documents: tuple[Document, ...]
    warnings: tuple[str, ...] = ()
    # (character, count) the vocabulary reads as [UNK] in the extracted reports, most first
    unknown_characters: tuple[tuple[str, int], ...] = ()


def _offset_problem(document: Document) -> str | None:
    """Why a prediction cannot be trusted (an entity not pointing at its own text), or None."""
    for entity in document.entities:
        pieces = [document.text[s.start:s.end] for s in entity.spans]
        # brat joins the fragments of a discontinuous entity with a space.
        if entity.end > len(document.text) or entity.text not in (" ".join(pieces),
                                                                   "".join(pieces)):
            return (f"entity {entity.id} {entity.type} at {entity.start}-{entity.end} has "
                    f"text {entity.text!r} but the report has {''.join(pieces)!r} there")
    return None


def _extract_one_by_one(extractor: DocumentExtractor, inputs: list[Document], batch_size: int
                        ) -> dict[str, Document | str]:
    """Prediction or failure reason per doc_id: isolates the reports that make the model fail."""
    results: dict[str, Document | str] = {}
    for document in inputs:
        try:
            (predicted,) = list(extractor.extract([document], batch_size=batch_size))
            results[document.doc_id] = predicted
        except Exception as exc:  # noqa: BLE001 - any model error fails this report, not the run
            log.warning("%s: extraction failed: %s: %s", document.source, type(exc).__name__, exc)
            results[document.doc_id] = f"model failed: {type(exc).__name__}: {exc}"
    return results


def _predict(extractor: DocumentExtractor, inputs: list[Document], batch_size: int
             ) -> dict[str, Document | str]:
    if not inputs:
        return {}
    try:
        predicted = list(extractor.extract(inputs, batch_size=batch_size))
    except Exception as exc:  # noqa: BLE001 - retried one by one to find the culprit
        log.info("batch failed (%s); retrying its %d reports one by one", exc, len(inputs))
        return _extract_one_by_one(extractor, inputs, batch_size)
    by_id = {d.doc_id: d for d in predicted}
    if set(by_id) != {d.doc_id for d in inputs}:
        return _extract_one_by_one(extractor, inputs, batch_size)
    return by_id


def extract_reports(reports: Sequence[ArchiveReport], extractor: DocumentExtractor, *,
                    batch_size: int = DEFAULT_BATCH_SIZE) -> ExtractedShard:
    """Extract the good reports of a shard and account for every report in it."""
    inputs = [Document(doc_id=r.report_id, text=r.text, annotated=False, source=r.source)
              for r in reports if r.problem is None and r.text is not None]
    results = _predict(extractor, inputs, batch_size)
    outcomes, documents, warnings = [], [], []
    for report in reports:
        result = results.get(report.report_id) if report.problem is None else None
        if report.problem is not None or report.text is None:
            outcome = ReportOutcome(report.report_id, ReportStatus.QUARANTINED,
                                    report.problem or "no text", report.source)
        elif isinstance(result, Document):
            problem = _offset_problem(result)
            if problem is None:
                outcome = ReportOutcome(report.report_id, ReportStatus.OK, report.warning,
                                        report.source)
                documents.append(result)
            else:
                outcome = ReportOutcome(report.report_id, ReportStatus.FAILED,
                                        f"{report.source}: {problem}", report.source)
        else:
            outcome = ReportOutcome(report.report_id, ReportStatus.FAILED,
                                    f"{report.source}: {result or 'no prediction returned'}",
                                    report.source)
        if report.warning:
            warnings.append(report.warning)
        outcomes.append(outcome)
    unknown = extractor.unknown_characters(d.text for d in inputs).most_common()
    return ExtractedShard(tuple(outcomes), tuple(documents), tuple(warnings), tuple(unknown))
