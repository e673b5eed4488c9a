"""`angiokg select`: the N reports of an archive the model would learn most from, written as a
brat queue for the annotators.

1. Reports already annotated (same id in `--exclude`) or nearly identical to one (MinHash over
   character n-grams, ingest/near_duplicates.py) are skipped before the model runs.
2. The others are predicted shard by shard (extraction.batch, the archive streamed) and scored
   (extraction/uncertainty.py; default: expected corrections).
3. A bounded pool keeps the best N: a report nearly identical to one already in the pool keeps
   only the higher-scoring of the two, so the queue never holds two near-duplicates. Memory is
   N predictions and N signatures, whatever the archive's size.
4. The queue folder is a brat collection: the N reports as `.txt` + predicted `.ann` (with the
   model's doubt as AnnotatorNotes), annotation.conf + visual.conf + tools.conf, and
   `queue.csv`: rank, report id, score, expected corrections, the least sure annotations with
   their text, source.

Every input report is accounted for in the summary: picked + not picked + already annotated +
near-duplicates + quarantined + failed == inputs.
"""

from __future__ import annotations

import csv
import heapq
import io
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from extraction.shard import DocumentExtractor, ExtractedShard, extract_reports
from extraction.uncertainty import DEFAULT_STRATEGY, expected_errors, least_sure, scorer
from ingest.archive import ArchiveReport, iter_reports
from ingest.atomic import write_text_atomic
from ingest.brat_collection import write_collection_confs
from ingest.brat_writer import write_document
from ingest.document import Document
from ingest.model_notes import DEFAULT_NOTE_BELOW, with_model_notes
from ingest.near_duplicates import DEFAULT_THRESHOLD, NearDuplicateIndex
from ingest.schema import Schema

QUEUE_CSV = "queue.csv"
QUEUE_COLUMNS = ("rank", "report_id", "score", "expected_corrections", "least_sure", "source")


@dataclass(frozen=True)
class Pick:
    rank: int
    document: Document  # the model's prediction of the report
    score: float

    @property
    def expected_corrections(self) -> float:
        return expected_errors(self.document)


@dataclass
class SelectSummary:
    strategy: str
    n: int
    inputs: int = 0
    scored: int = 0
    already_annotated: int = 0
    duplicate_of_annotated: int = 0
    duplicate_in_archive: int = 0  # a near-duplicate of a better-scoring report of the archive
    quarantined: int = 0
    failed: int = 0
    picked: int = 0
    not_picked: int = 0  # scored, but N others scored higher
    problems: list[str] = field(default_factory=list)

    MAX_PROBLEMS = 50

    def format(self) -> str:
        lines = [f"selected {self.picked} of {self.inputs} reports by {self.strategy}: "
                 f"{self.scored} scored ({self.not_picked} not picked), "
                 f"{self.already_annotated} already annotated, "
                 f"{self.duplicate_of_annotated} near-duplicates of annotated ones, "
                 f"{self.duplicate_in_archive} near-duplicates of better ones in the archive, "
                 f"{self.quarantined} quarantined, {self.failed} failed"]
        return "\n".join(lines + [f"  {p}" for p in self.problems])


SHARD_REPORTS = 256  # reports predicted together; memory stays flat whatever the archive


@dataclass(frozen=True)
class _Shard:
    outcomes: tuple
    documents: tuple[Document, ...]
    skipped: tuple[str, ...]


def extract_shards(reports: Iterable[ArchiveReport], extractor: DocumentExtractor, *,
                   run_id: str, skip: Callable[[ArchiveReport], bool], batch_size: int = 64
                   ) -> Iterable[_Shard]:
    """The archive's reports in shards of SHARD_REPORTS through the model (extraction.shard):
    a report `skip` turns down never reaches it."""
    todo: list[ArchiveReport] = []
    skipped: list[str] = []
    for report in reports:
        if skip(report):
            skipped.append(report.report_id)
            continue
        todo.append(report)
        if len(todo) >= SHARD_REPORTS:
            yield _from(extract_reports(todo, extractor, batch_size=batch_size), skipped)
            todo, skipped = [], []
    if todo or skipped:
        yield _from(extract_reports(todo, extractor, batch_size=batch_size), skipped)


def _from(extracted: ExtractedShard, skipped: list[str]) -> _Shard:
    return _Shard(extracted.outcomes, extracted.documents, tuple(skipped))


class AnnotatedFilter:
    """The `skip` predicate of the extraction run: True for a report already annotated (by id)
    or nearly identical to one; counts each reason in `summary`."""

    def __init__(self, annotated: Iterable[ArchiveReport], summary: SelectSummary,
                 threshold: float = DEFAULT_THRESHOLD) -> None:
        self.index = NearDuplicateIndex(threshold)
        self.ids: set[str] = set()
        for report in annotated:
            self.ids.add(report.report_id)
            if report.text is not None:
                self.index.add_text(report.report_id, report.text)
        self.summary = summary

    def __call__(self, report: ArchiveReport) -> bool:
        if report.report_id in self.ids:
            self.summary.already_annotated += 1
            return True
        if report.text is not None and len(self.index) and self.index.near(
                self.index.hasher.signature(report.text)):
            self.summary.duplicate_of_annotated += 1
            return True
        return False


@dataclass(order=True)
class _Worst:
    """Heap key: the worst candidate comes out first (lowest score; on a tie the larger id)."""

    score: float
    rev_id: tuple[int, ...]


def _key(score: float, report_id: str) -> _Worst:
    return _Worst(score, tuple(-ord(c) for c in report_id))


class QueuePool:
    """The best `n` reports seen so far, never two near-duplicates of each other.

    Counts: `duplicates` (reports that lost to, or were replaced by, a better near-duplicate)
    and `not_picked` (pushed out by `n` better ones).
    """

    def __init__(self, n: int, score: Callable[[Document], float],
                 threshold: float = DEFAULT_THRESHOLD) -> None:
        if n <= 0:
            raise ValueError(f"--n must be at least 1, got {n}")
        self.n = n
        self.score = score
        self.index = NearDuplicateIndex(threshold)
        self.duplicates = 0
        self.not_picked = 0
        self._pool: dict[str, tuple[float, Document]] = {}
        self._heap: list[tuple[_Worst, str]] = []  # lazily cleaned of removed ids

    def offer(self, document: Document) -> None:
        score = self.score(document)
        signature = self.index.hasher.signature(document.text)
        rivals = [key for key, _ in self.index.near(signature) if key in self._pool]
        mine = _key(score, document.doc_id)
        if any(_key(self._pool[key][0], key) > mine for key in rivals):
            self.duplicates += 1
            return
        for key in rivals:  # all worse than this one: it replaces them
            self._drop(key)
            self.duplicates += 1
        self._pool[document.doc_id] = (score, document)
        self.index.add(document.doc_id, signature)
        heapq.heappush(self._heap, (mine, document.doc_id))
        while len(self._pool) > self.n:
            self._drop(self._worst())
            self.not_picked += 1

    def ranked(self) -> list[Pick]:
        order = sorted(self._pool.items(), key=lambda kv: _key(kv[1][0], kv[0]), reverse=True)
        return [Pick(rank, document, score)
                for rank, (_, (score, document)) in enumerate(order, start=1)]

    def _drop(self, key: str) -> None:
        self._pool.pop(key, None)
        self.index.remove(key)

    def _worst(self) -> str:
        while True:
            worst, key = heapq.heappop(self._heap)
            if key in self._pool and _key(self._pool[key][0], key) == worst:
                return key


@dataclass(frozen=True)
class Selection:
    picks: tuple[Pick, ...]
    summary: SelectSummary


def select_from_predictions(predictions: Iterable[Document], n: int, *,
                            strategy: str = DEFAULT_STRATEGY, seed: int = 0,
                            threshold: float = DEFAULT_THRESHOLD,
                            summary: SelectSummary | None = None) -> Selection:
    """The ranked best `n` of a stream of predictions (pure: no model, no files)."""
    score_of = scorer(strategy)
    counting_inputs = summary is None  # else the caller counts them (with the skipped ones)
    summary = summary or SelectSummary(strategy, n)
    pool = QueuePool(n, lambda d: score_of(d, seed), threshold)
    for document in predictions:
        summary.inputs += counting_inputs
        summary.scored += 1
        pool.offer(document)
    picks = tuple(pool.ranked())
    summary.picked = len(picks)
    summary.not_picked = pool.not_picked
    summary.duplicate_in_archive = pool.duplicates
    return Selection(picks, summary)


def select(extractor: DocumentExtractor, archive: str | Path, n: int, *,
           exclude: str | Path | None = None, strategy: str = DEFAULT_STRATEGY, seed: int = 0,
           threshold: float = DEFAULT_THRESHOLD, batch_size: int = 64,
           only: Container[str] | None = None) -> Selection:
    """Stream `archive` through the model and keep the best `n` reports not yet annotated;
    with `only`, the archive's other reports are not considered at all (the nightly queue
    takes the night's new reports)."""
    scorer(strategy)  # an unknown strategy fails before the model runs
    summary = SelectSummary(strategy, n)
    annotated = iter_reports(exclude) if exclude is not None else ()
    skip = AnnotatedFilter(annotated, summary, threshold)

    def predictions() -> Iterable[Document]:
        reports = (r for r in iter_reports(archive) if only is None or r.report_id in only)
        for shard in extract_shards(reports, extractor, run_id="select",
                                    skip=skip, batch_size=batch_size):
            summary.inputs += len(shard.outcomes) + len(shard.skipped)
            for outcome in shard.outcomes:
                if outcome.status == "ok":
                    continue
                if outcome.status == "quarantined":
                    summary.quarantined += 1
                else:
                    summary.failed += 1
                if len(summary.problems) < summary.MAX_PROBLEMS:
                    summary.problems.append(f"{outcome.status}: {outcome.reason}")
            yield from shard.documents

    return select_from_predictions(predictions(), n, strategy=strategy, seed=seed,
                                   threshold=threshold, summary=summary)


# --- the queue folder -----------------------------------------------------------------------


def check_queue_folder(out_dir: str | Path) -> Path:
    """`out_dir` must be new or empty: annotators may be at work in an older queue."""
    out = Path(out_dir)
    # the output lock (pipeline.lock, `_angiokg.lock`) is the only file a new queue may find
    if out.exists() and (not out.is_dir() or any(p.name != "_angiokg.lock"
                                                 for p in out.iterdir())):
        raise ValueError(f"{out}: exists and is not an empty folder; write each queue to a new "
                         "folder (annotators may be correcting the files of an older one)")
    return out


def queue_rows(picks: Iterable[Pick], unsure: int = 3) -> list[dict[str, object]]:
    return [{"rank": p.rank, "report_id": p.document.doc_id, "score": round(p.score, 4),
             "expected_corrections": round(p.expected_corrections, 3),
             "least_sure": "; ".join(i.format() for i in least_sure(p.document, unsure)),
             "source": p.document.source or ""} for p in picks]


def write_queue(selection: Selection, out_dir: str | Path, schema: Schema, *,
                note_below: float = DEFAULT_NOTE_BELOW) -> Path:
    """The queue as a brat collection in `out_dir`; returns the path of queue.csv."""
    out = check_queue_folder(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_collection_confs(out, schema)
    for pick in selection.picks:
        write_document(with_model_notes(pick.document, note_below), out)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=QUEUE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(queue_rows(selection.picks))
    write_text_atomic(out / QUEUE_CSV, buffer.getvalue())
    return out / QUEUE_CSV
