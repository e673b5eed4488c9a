"""What `angiokg select` decides, as pure parts (no files, no archive): which reports are
already annotated or nearly so, and the bounded pool of the best N predictions.

The run itself (the archive streamed through the run protocol, the queue folder written) is in
`pipeline.select` and `pipeline.select_queue`; the active-learning simulation
(extraction.active_learning) uses these parts on documents it holds.

1. `AnnotatedFilter`: a report already annotated (same id) or nearly identical to one (MinHash
   over character n-grams, ingest/near_duplicates.py) is skipped before the model runs.
2. `QueuePool`: the predictions are scored (extraction/uncertainty.py; default: expected
   corrections) and the best N kept; a report nearly identical to one already in the pool keeps
   only the higher-scoring of the two, so the queue never holds two near-duplicates. Memory is
   N predictions and N signatures, whatever the archive's size.

Every input report is accounted for in `SelectSummary`: picked + not picked + already annotated
+ near-duplicates + quarantined + failed == inputs.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from extraction.uncertainty import DEFAULT_STRATEGY, expected_errors, scorer
from ingest.archive import ArchiveReport
from ingest.document import Document
from ingest.near_duplicates import DEFAULT_THRESHOLD, NearDuplicateIndex


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

    Counts: `offered`, `duplicates` (reports that lost to, or were replaced by, a better
    near-duplicate) and `not_picked` (pushed out by `n` better ones).
    """

    def __init__(self, n: int, score: Callable[[Document], float],
                 threshold: float = DEFAULT_THRESHOLD) -> None:
        if n <= 0:
            raise ValueError(f"--n must be at least 1, got {n}")
        self.n = n
        self.score = score
        self.index = NearDuplicateIndex(threshold)
        self.offered = 0
        self.duplicates = 0
        self.not_picked = 0
        self._pool: dict[str, tuple[float, Document]] = {}
        self._heap: list[tuple[_Worst, str]] = []  # lazily cleaned of removed ids

    def offer(self, document: Document) -> None:
        self.offered += 1
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


def new_pool(n: int, strategy: str = DEFAULT_STRATEGY, seed: int = 0,
             threshold: float = DEFAULT_THRESHOLD) -> QueuePool:
    """An empty pool scoring by `strategy` (an unknown one is refused here, before any work)."""
    score_of = scorer(strategy)
    return QueuePool(n, lambda d: score_of(d, seed), threshold)


def selection_of(pool: QueuePool, summary: SelectSummary) -> Selection:
    """The pool's ranked picks; its counts go into `summary`."""
    picks = tuple(pool.ranked())
    summary.scored = pool.offered
    summary.picked = len(picks)
    summary.not_picked = pool.not_picked
    summary.duplicate_in_archive = pool.duplicates
    return Selection(picks, summary)


def select_from_predictions(predictions: Iterable[Document], n: int, *,
                            strategy: str = DEFAULT_STRATEGY, seed: int = 0,
                            threshold: float = DEFAULT_THRESHOLD) -> Selection:
    """The ranked best `n` of a stream of predictions (pure: no model, no files)."""
    pool = new_pool(n, strategy, seed, threshold)
    for document in predictions:
        pool.offer(document)
    summary = SelectSummary(strategy, n, inputs=pool.offered)
    return selection_of(pool, summary)
