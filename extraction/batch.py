"""The streaming extraction run: archive reports in, shards of predictions and outcomes out.

Reports are gathered into shards (bounded by a report count and a character budget, so memory
stays flat however large the archive), each shard's good reports go through the extractor, and
the shard comes out with one `ReportOutcome` per input and the predicted `Document`s. What to do
with a shard (write Parquet, record it in the manifest) is the caller's business: this room does
not know about `export`, and a shard is the unit that is written and committed atomically.

A report the model fails on becomes `failed` with the reason, and the rest of its shard goes on.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from extraction.manifest import ManifestEntry
from ingest.archive import ArchiveReport
from ingest.document import Document, ReportOutcome

log = logging.getLogger(__name__)

DEFAULT_SHARD_REPORTS = 256
# About 8 MB of UTF-8 Chinese text: a shard of huge reports closes early instead of growing.
DEFAULT_SHARD_CHARS = 3_000_000


class DocumentExtractor(Protocol):
    """What the run needs of `extraction.predict.Extractor` (a fake satisfies it in tests)."""

    model_version: str

    def extract(self, documents: Iterable[Document], batch_size: int = 64
                ) -> Iterator[Document]: ...


@dataclass(frozen=True)
class Shard:
    """One atomically written unit: every input report in it has exactly one outcome.

    `key` is derived from the shard's contents, so a run restarted after a crash rebuilds the
    same shard under the same key. `documents` are the predictions of the `ok` outcomes, in
    the same order. `skipped` are ids the manifest said were already processed (no outcome is
    written for them again).
    """

    index: int
    key: str
    outcomes: tuple[ReportOutcome, ...]
    documents: tuple[Document, ...]
    entries: tuple[ManifestEntry, ...]
    skipped: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass
class RunSummary:
    """Counts of one run: processed (ok now + skipped as done before) + quarantined + failed
    == inputs."""

    run_id: str
    model_version: str
    archive: str
    inputs: int = 0
    extracted: int = 0
    skipped: int = 0
    quarantined: int = 0
    failed: int = 0
    shards: int = 0
    entities: int = 0
    relations: int = 0
    warnings: int = 0
    problems: list[str] = field(default_factory=list)

    # Keep the summary small on a bad archive; the `reports` dataset holds every reason.
    MAX_PROBLEMS = 50

    @property
    def processed(self) -> int:
        return self.extracted + self.skipped

    def add(self, shard: Shard) -> None:
        self.shards += 1 if shard.outcomes else 0
        self.skipped += len(shard.skipped)
        self.inputs += len(shard.skipped) + len(shard.outcomes)
        self.warnings += len(shard.warnings)
        for outcome in shard.outcomes:
            if outcome.status == "ok":
                self.extracted += 1
            elif outcome.status == "quarantined":
                self.quarantined += 1
            else:
                self.failed += 1
            if outcome.reason and outcome.status != "ok" and len(self.problems) < self.MAX_PROBLEMS:
                self.problems.append(f"{outcome.status}: {outcome.reason}")
        self.entities += sum(len(d.entities) for d in shard.documents)
        self.relations += sum(len(d.relations) for d in shard.documents)

    def to_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run_id, "model_version": self.model_version, "archive": self.archive,
            "inputs": self.inputs, "processed": self.processed, "extracted": self.extracted,
            "skipped": self.skipped, "quarantined": self.quarantined, "failed": self.failed,
            "shards": self.shards, "entities": self.entities, "relations": self.relations,
            "warnings": self.warnings, "problems": list(self.problems),
        }

    def format(self) -> str:
        return (f"run {self.run_id} (model {self.model_version}): {self.inputs} inputs, "
                f"{self.processed} processed ({self.extracted} extracted, {self.skipped} already "
                f"done), {self.quarantined} quarantined, {self.failed} failed; "
                f"{self.entities} entities, {self.relations} relations in {self.shards} shards")


def shard_key(reports: Iterable[ArchiveReport], model_version: str) -> str:
    digest = hashlib.sha256(model_version.encode("utf-8"))
    for report in reports:
        digest.update(f"\n{report.report_id}\t{report.content_sha256}".encode())
    return digest.hexdigest()[:20]


def group_shards(reports: Iterable[ArchiveReport], *, skip: Callable[[ArchiveReport], bool],
                 max_reports: int = DEFAULT_SHARD_REPORTS, max_chars: int = DEFAULT_SHARD_CHARS
                 ) -> Iterator[tuple[list[ArchiveReport], list[str]]]:
    """(reports to process, ids skipped) per shard; a shard closes at either bound.

    The trailing group may hold only skipped ids (so they are still counted).
    """
    todo: list[ArchiveReport] = []
    skipped: list[str] = []
    chars = 0
    for report in reports:
        if skip(report):
            skipped.append(report.report_id)
            continue
        todo.append(report)
        chars += len(report.text or "")
        if len(todo) >= max_reports or chars >= max_chars:
            yield todo, skipped
            todo, skipped, chars = [], [], 0
    if todo or skipped:
        yield todo, skipped


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


def build_shard(index: int, reports: list[ArchiveReport], skipped: list[str],
                extractor: DocumentExtractor, *, run_id: str, batch_size: int = 64) -> Shard:
    """Extract one shard's good reports and account for every report in it."""
    model_version = extractor.model_version
    key = shard_key(reports, model_version)
    inputs = [Document(doc_id=r.report_id, text=r.text, annotated=False, source=r.source)
              for r in reports if r.problem is None and r.text is not None]
    results = _predict(extractor, inputs, batch_size)
    outcomes, documents, entries, warnings = [], [], [], []
    for report in reports:
        result = results.get(report.report_id) if report.problem is None else None
        if report.problem is not None or report.text is None:
            outcome = ReportOutcome(report.report_id, "quarantined",
                                    report.problem or "no text", report.source)
        elif isinstance(result, Document):
            problem = _offset_problem(result)
            if problem is None:
                outcome = ReportOutcome(report.report_id, "ok", report.warning, report.source)
                documents.append(result)
            else:
                outcome = ReportOutcome(report.report_id, "failed", f"{report.source}: {problem}",
                                        report.source)
        else:
            outcome = ReportOutcome(report.report_id, "failed",
                                    f"{report.source}: {result or 'no prediction returned'}",
                                    report.source)
        if report.warning:
            warnings.append(report.warning)
        outcomes.append(outcome)
        entries.append(ManifestEntry(report.report_id, report.content_sha256, model_version,
                                     outcome.status, run_id, key))
    return Shard(index=index, key=key, outcomes=tuple(outcomes), documents=tuple(documents),
                 entries=tuple(entries), skipped=tuple(skipped), warnings=tuple(warnings))


def extract_shards(reports: Iterable[ArchiveReport], extractor: DocumentExtractor, *,
                   run_id: str, skip: Callable[[ArchiveReport], bool] = lambda _r: False,
                   batch_size: int = 64, max_reports: int = DEFAULT_SHARD_REPORTS,
                   max_chars: int = DEFAULT_SHARD_CHARS) -> Iterator[Shard]:
    """Shards of predictions and outcomes, one at a time, in archive order."""
    groups = group_shards(reports, skip=skip, max_reports=max_reports, max_chars=max_chars)
    for index, (todo, skipped) in enumerate(groups):
        yield build_shard(index, todo, skipped, extractor, run_id=run_id, batch_size=batch_size)
