"""What a run did, in numbers: per shard (`ShardResult`, what a worker sends back) and for the
whole run (`RunSummary`, what the command prints, the flow returns and `_runs/<id>.json` holds).

Both are small frozen dataclasses. A counter is a field: add it to `ShardResult` and to
`RunSummary` under the same name and `RunSummary.of` sums it; `from_dict` reads summaries
written before a field existed (it is then its default) and ignores keys it does not know.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from extraction.shard import ExtractedShard
from ingest.document import ReportStatus
from ingest.records import unmapped_spellings

# Keep summaries small on a bad archive; the `reports` dataset holds every reason.
MAX_PROBLEMS = 50
MAX_UNMAPPED_LISTED = 50
MAX_UNKNOWN_LISTED = 20  # characters read as [UNK] that a summary lists, most frequent first
SYNONYM_TABLE = "ingest/data/coronary-synonyms.tsv"

# (entity type, text, mentions): a BodyPart or Location spelling the coronary synonym table
# lacks; its records have no artery or segments until someone adds it to the table.
Unmapped = tuple[str, str, int]
# (character as written, occurrences): a character the model's vocabulary reads as [UNK].
Unknown = tuple[str, int]


def _counted(spellings: Iterable[Unmapped]) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for kind, text, n in spellings:
        counts[(kind, text)] += n
    return counts


def _listed(counts: Counter[tuple[str, str]], limit: int | None = None) -> tuple[Unmapped, ...]:
    return tuple((kind, text, n) for (kind, text), n in counts.most_common(limit))


@dataclass(frozen=True)
class ShardResult:
    """One extracted shard, as counts: all that crosses back from a worker."""

    index: int
    key: str
    extracted: int = 0
    quarantined: int = 0
    failed: int = 0
    entities: int = 0
    relations: int = 0
    warnings: int = 0
    problems: tuple[str, ...] = ()
    unmapped_spellings: tuple[Unmapped, ...] = ()
    # every character of the shard's reports the vocabulary reads as [UNK], most first
    unknown_characters: tuple[Unknown, ...] = ()

    @classmethod
    def of(cls, index: int, key: str, shard: ExtractedShard) -> ShardResult:
        by_status = {status: 0 for status in ReportStatus}
        problems = []
        for outcome in shard.outcomes:
            by_status[outcome.status] += 1
            if (outcome.reason and outcome.status != ReportStatus.OK
                    and len(problems) < MAX_PROBLEMS):
                problems.append(f"{outcome.status}: {outcome.reason}")
        return cls(index, key, extracted=by_status[ReportStatus.OK],
                   quarantined=by_status[ReportStatus.QUARANTINED],
                   failed=by_status[ReportStatus.FAILED],
                   entities=sum(len(d.entities) for d in shard.documents),
                   relations=sum(len(d.relations) for d in shard.documents),
                   warnings=len(shard.warnings), problems=tuple(problems),
                   unmapped_spellings=_listed(sum(
                       (unmapped_spellings(d) for d in shard.documents), Counter())),
                   unknown_characters=shard.unknown_characters)

    @property
    def reports(self) -> int:
        return self.extracted + self.quarantined + self.failed


@dataclass(frozen=True)
class RunSummary:
    """Counts of one run: processed (extracted now + skipped as done before) + quarantined +
    failed == inputs. `published`: the run's outputs were published (False for a run that
    found nothing new: no empty run is published)."""

    run_id: str
    model_version: str
    archive: str
    run_date: str | None = None
    inputs: int = 0
    extracted: int = 0
    skipped: int = 0
    quarantined: int = 0
    failed: int = 0
    shards: int = 0
    entities: int = 0
    relations: int = 0
    warnings: int = 0
    published: bool = False
    problems: tuple[str, ...] = field(default_factory=tuple)
    unmapped: int = 0  # distinct spellings not in the coronary synonym table
    unmapped_spellings: tuple[Unmapped, ...] = ()  # the most frequent, most frequent first
    # A vocabulary drift signal (another hospital's symbols, new typing habits): characters
    # read as [UNK], every occurrence; the most frequent say what a rebuilt vocabulary needs.
    unknown: int = 0
    unknown_characters: tuple[Unknown, ...] = ()

    @property
    def processed(self) -> int:
        return self.extracted + self.skipped

    @property
    def nothing_new(self) -> bool:
        return not self.published

    @classmethod
    def of(cls, *, run_id: str, model_version: str, archive: str, run_date: str | None,
           skipped: int, results: Iterable[ShardResult], published: bool,
           quarantined_before: Sequence[str] = ()) -> RunSummary:
        """`quarantined_before`: the reasons of inputs quarantined by an earlier run and
        unreadable still (not read again, counted as quarantined)."""
        ordered = sorted(results, key=lambda r: r.index)
        sums = {f.name: sum(getattr(r, f.name) for r in ordered)
                for f in fields(ShardResult) if f.type in ("int", int) and f.name != "index"}
        sums["quarantined"] += len(quarantined_before)
        problems = (*quarantined_before, *(p for r in ordered for p in r.problems))
        problems = problems[:MAX_PROBLEMS]
        reports = sum(r.reports for r in ordered) + len(quarantined_before)
        shards = sum(1 for r in ordered if r.reports)
        unmapped = _counted(u for r in ordered for u in r.unmapped_spellings)
        unknown: Counter[str] = Counter()
        for r in ordered:
            unknown.update(dict(r.unknown_characters))
        return cls(run_id=run_id, model_version=model_version, archive=archive,
                   run_date=run_date, inputs=skipped + reports, skipped=skipped, shards=shards,
                   published=published, problems=problems, unmapped=len(unmapped),
                   unmapped_spellings=_listed(unmapped, MAX_UNMAPPED_LISTED),
                   unknown=unknown.total(),
                   unknown_characters=tuple(unknown.most_common(MAX_UNKNOWN_LISTED)), **sums)

    def to_dict(self) -> dict[str, object]:
        values = asdict(self)
        values["problems"] = list(self.problems)
        values["processed"] = self.processed
        values["unmapped_spellings"] = [{"type": kind, "text": text, "count": n}
                                        for kind, text, n in self.unmapped_spellings]
        values["unknown_characters"] = [{"character": ch, "count": n}
                                        for ch, n in self.unknown_characters]
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, object]) -> RunSummary:
        known = {f.name for f in fields(cls)}
        kept: dict[str, Any] = {k: v for k, v in values.items() if k in known}
        kept["problems"] = tuple(kept.get("problems") or ())
        kept["unmapped_spellings"] = tuple(
            (u["type"], u["text"], u["count"]) for u in kept.get("unmapped_spellings") or ())
        kept["unknown_characters"] = tuple(
            (u["character"], u["count"]) for u in kept.get("unknown_characters") or ())
        return cls(**kept)

    def format(self) -> str:
        head = (f"run {self.run_id} (model {self.model_version}): {self.inputs} inputs, "
                f"{self.processed} processed ({self.extracted} extracted, {self.skipped} already "
                f"done), {self.quarantined} quarantined, {self.failed} failed; "
                f"{self.entities} entities, {self.relations} relations in {self.shards} shards")
        head += unmapped_line(self.unmapped, self.unmapped_spellings)
        head += unknown_line(self.unknown, self.unknown_characters)
        return head if self.published else head + "; nothing new, no run published"


def unmapped_line(distinct: int, listed: Iterable[Unmapped]) -> str:
    """What an operator reads about unmapped spellings (empty when there are none)."""
    if not distinct:
        return ""
    shown = ", ".join(f"{text} ({kind}) x{n}" for kind, text, n in list(listed)[:10])
    more = f" and {distinct - 10} more" if distinct > 10 else ""
    return (f"; {distinct} unmapped spellings, records without artery/segments until they "
            f"are added to {SYNONYM_TABLE}: {shown}{more}")


def unknown_line(occurrences: int, listed: Iterable[Unknown]) -> str:
    """What an operator reads about characters the vocabulary lacks (empty when none)."""
    if not occurrences:
        return ""
    shown = ", ".join(f"{ch!r} x{n}" for ch, n in list(listed)[:10])
    return (f"; {occurrences} characters read as [UNK] by the model's vocabulary (a sign of "
            f"text unlike its training reports; rebuild the vocabulary if it grows): {shown}")
