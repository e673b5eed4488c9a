"""Key-value records: one per finding, vessel and set of segments, keyed by the coronary tree.

The BodyPart is the central word. A Degree (finding) with a Modifier relation to a BodyPart
(vessel) gives records for that vessel; coordination ("前降支及回旋支近段狭窄50%") is annotated as
one Modifier per vessel, so it gives one record per vessel. The schema links a vessel to its
locations, not a finding to a location, so when one vessel mention has several locations the
finding gets the one(s) that scope it in the text (`docs/records.md`, the contract
`../shared/schema/coronary-tree.md`):

- locations joined by a list cue (近段、中段) form a list, one record per location; two joined
  by a range cue (开口至近段) are one record covering both and every segment between;
- a list scopes the findings that follow it until the next location of the same vessel;
- a list introduced by a backward cue (狭窄约40%，位于远段) instead takes the findings written
  just before it, back to the previous location of that vessel;
- a finding before every location of its vessel, with no backward one after it, has none.

Each record carries the artery id, the SYNTAX segments (`ingest.coronary`), the report's
dominance, the stenosis by the contract's rules, and the spellings as written. A gold document
and a prediction give records the same way; predictions add a confidence.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ingest.coronary import CoronaryTree, Dominance, Place, default_tree
from ingest.document import Document, Entity, Relation
from ingest.percentages import PercentageRange, parse_percentage
from ingest.roles import SEGMENT_TYPE, VESSEL_TYPE, Roles, roles_from_schema
from ingest.schema import Schema
from ingest.sentences import sentence_boundaries

logger = logging.getLogger(__name__)

# Where a clause ends, for "written after 收缩期": the cue's reach stops at the next clause.
_CLAUSE_ENDS = tuple("，,；;。\r\n")
# How the texts of a record's several locations or percentages are joined in one column.
TEXT_JOINER = "、"


@dataclass(frozen=True)
class KeyValueRecord:
    """One finding at one place. Offsets are character offsets into the report text (brat's).

    `vessel` and `segment` are the spellings as the first schema had them (the BodyPart text and
    the Location text); `vessel_text` and `location_text` are the same spellings under the
    names the coronary-tree columns use. `segment_*` fields point at the record's first
    location entity (`segment_end` at the last one's end, for a range)."""

    report_id: str
    vessel: str
    segment: str | None
    finding: str
    percentage_text: str | None
    percentage_low: float | None
    percentage_high: float | None
    negated: bool
    sentence: str
    sentence_start: int
    degree_id: str
    degree_start: int
    degree_end: int
    vessel_id: str
    vessel_start: int
    vessel_end: int
    segment_id: str | None
    segment_start: int | None
    segment_end: int | None
    artery: str | None  # the contract's artery id; None when the spelling is not in the table
    segments: tuple[str, ...]  # SYNTAX segment ids; () when nothing places the finding
    stenosis: float | None  # % by the contract's rules; 0 = examined, none; None = not stated
    vessel_text: str
    location_text: str | None
    dominance: str
    dominance_assumed: bool
    confidence: float | None  # min of the relations' confidences; None for gold annotations
    model_version: str | None
    run_id: str | None

    @property
    def finding_id(self) -> str:
        """Stable key of the record: the same report and entities give the same id on reload."""
        return f"{self.report_id}/{self.degree_id}/{self.vessel_id}/{self.segment_id or '-'}"


@dataclass(frozen=True)
class _Unit:
    """One place of a vessel: a location, or a range of two (开口至近段)."""

    locations: tuple[tuple[Relation, Entity], ...]
    place: Place | None  # None: a spelling the table lacks
    text: str


@dataclass(frozen=True)
class _Scope:
    """Units joined by list cues: what one finding at this point of the text is placed at."""

    units: tuple[_Unit, ...]
    start: int
    backward: bool  # introduced by 位于 / 累及 / 在: takes the findings written before it


def _min_confidence(relations: Iterable[Relation]) -> float | None:
    values = [r.confidence for r in relations if r.confidence is not None]
    return min(values) if values else None


def _sentence_of(text: str, bounds: list[tuple[int, int]], starts: list[int], offset: int
                 ) -> tuple[int, str]:
    """Start and text of the sentence holding `offset` (the whole text if none does);
    `starts` are the bounds' starts."""
    k = bisect_right(starts, offset) - 1
    if k >= 0 and offset < bounds[k][1]:
        start, end = bounds[k]
        return start, text[start:end]
    return 0, text


def _distinct_targets(links: list[tuple[Relation, Entity]]) -> list[tuple[Relation, Entity]]:
    """One link per target entity: a relation annotated twice is one fact, not two records."""
    seen: dict[str, tuple[Relation, Entity]] = {}
    for rel, entity in links:
        seen.setdefault(entity.id, (rel, entity))
    return list(seen.values())


def _gap(text: str, left: Entity, right: Entity) -> str | None:
    """The text between two entities, None when they overlap (a malformed prediction)."""
    return text[left.end:right.start] if right.start >= left.end else None


def _scopes(text: str, located: list[tuple[Relation, Entity]], tree: CoronaryTree
            ) -> list[_Scope]:
    """A vessel's locations (its Position relations) as scopes, in text order."""
    seen: set[str] = set()
    ordered = []
    for rel, loc in sorted(located, key=lambda x: (x[1].start, x[1].end)):
        if loc.id not in seen:
            seen.add(loc.id)
            ordered.append((rel, loc))
    units: list[_Unit] = []
    i = 0
    while i < len(ordered):
        first = ordered[i]
        gap = _gap(text, first[1], ordered[i + 1][1]) if i + 1 < len(ordered) else None
        if gap is not None and tree.is_cue("range", gap):
            second = ordered[i + 1]
            a, b = tree.place(first[1].text), tree.place(second[1].text)
            units.append(_Unit((first, second), a.through(b) if a and b else None,
                               text[first[1].start:second[1].end]))
            i += 2
        else:
            units.append(_Unit((first,), tree.place(first[1].text), first[1].text))
            i += 1
    scopes: list[_Scope] = []
    members: list[_Unit] = []
    for k, unit in enumerate(units):
        members.append(unit)
        after = units[k + 1] if k + 1 < len(units) else None
        gap = _gap(text, unit.locations[-1][1], after.locations[0][1]) if after else None
        if gap is not None and tree.is_cue("list", gap):
            continue
        start = members[0].locations[0][1].start
        before = text[max(0, start - tree.cue_reach):start]
        scopes.append(_Scope(tuple(members), start, tree.ends_with_cue("backward", before)))
        members = []
    return scopes


def _scope_of(text: str, scopes: Sequence[_Scope], offset: int) -> _Scope | None:
    """The scope of a finding at `offset`.

    The last scope before the finding when the finding is in that scope's own clause (近段和中段
    可见斑块); else the next scope when it is a backward one (狭窄约40%，位于远段: it takes the
    findings before it back to the previous location); else the last scope before, else none.
    A finding after a backward scope, before any other location, takes it too: the last place
    the report named."""
    before = [s for s in scopes if s.start < offset]
    after = [s for s in scopes if s.start > offset]
    if before and not any(c in _CLAUSE_ENDS for c in text[before[-1].start:offset]):
        return before[-1]
    if after and after[0].backward:
        return after[0]
    return before[-1] if before else None


def _clause_prefix(text: str, offset: int) -> str:
    start = max(text.rfind(c, 0, offset) for c in _CLAUSE_ENDS) + 1
    return text[start:offset]


def _quantifiers_per_vessel(text: str, degree: Entity,
                            modifiers: list[tuple[Relation, Entity]],
                            quantifiers: list[tuple[Relation, Entity]], tree: CoronaryTree
                            ) -> dict[str, list[tuple[Relation, Entity]]]:
    """Each vessel's percentages: in order with 分别 (respectively) when the counts match,
    else all of them for every vessel."""
    vessels = sorted({v.id: v for _, v in modifiers}.values(), key=lambda v: v.start)
    if len(vessels) >= 2 and len(quantifiers) == len(vessels):
        span = text[min(vessels[0].start, degree.start):max(q.end for _, q in quantifiers)]
        if tree.has_cue("respectively", span):
            return {v.id: [q] for v, q in zip(vessels, quantifiers, strict=True)}
    return {v.id: list(quantifiers) for v in vessels}


def records_from_document(
    document: Document,
    schema: Schema,
    *,
    model_version: str | None,
    run_id: str | None,
    roles: Roles | None = None,
    tree: CoronaryTree | None = None,
) -> list[KeyValueRecord]:
    """The document's key-value records, ordered by degree, vessel and location offsets."""
    roles = roles or roles_from_schema(schema)
    tree = tree or default_tree()
    text = document.text
    entities = document.entities_by_id()
    outgoing: dict[tuple[str, str], list[tuple[Relation, Entity]]] = defaultdict(list)
    for rel in document.relations:
        if rel.arg1 not in entities or rel.arg2 not in entities:
            logger.warning(
                "%s: relation %s names an unknown entity (%s -> %s); skipped",
                document.doc_id, rel.id, rel.arg1, rel.arg2,
            )
            continue
        outgoing[(rel.type, rel.arg1)].append((rel, entities[rel.arg2]))

    dominance = tree.dominance(text)
    bounds = sentence_boundaries(text)
    starts = [start for start, _ in bounds]
    scopes_of: dict[str, list[_Scope]] = {}
    records: list[KeyValueRecord] = []
    for degree in document.entities:
        modifiers = _distinct_targets(outgoing.get((roles.modifier, degree.id), []))
        if not modifiers:
            continue
        quantifiers = sorted(_distinct_targets(outgoing.get((roles.percentage, degree.id), [])),
                             key=lambda x: x[1].start)
        per_vessel = _quantifiers_per_vessel(text, degree, modifiers, quantifiers, tree)
        negations = [r for r, _ in outgoing.get((roles.negative, degree.id), [])]
        sentence_start, sentence = _sentence_of(text, bounds, starts, degree.start)
        for modifier, vessel in modifiers:
            if vessel.id not in scopes_of:
                scopes_of[vessel.id] = _scopes(
                    text, outgoing.get((roles.position, vessel.id), []), tree)
            scope = _scope_of(text, scopes_of[vessel.id], degree.start)
            records += _records_at(
                document, degree, vessel, modifier, scope, per_vessel[vessel.id], negations,
                (sentence_start, sentence), dominance, tree, model_version, run_id)
    records.sort(key=lambda r: (r.degree_start, r.vessel_start, r.segment_start or -1))
    return records


def _records_at(document: Document, degree: Entity, vessel: Entity, modifier: Relation,
                scope: _Scope | None, quantifiers: list[tuple[Relation, Entity]],
                negations: list[Relation], sentence: tuple[int, str], dominance: Dominance,
                tree: CoronaryTree, model_version: str | None, run_id: str | None
                ) -> list[KeyValueRecord]:
    """One record per distinct set of segments among the units of the finding's scope."""
    text = document.text
    artery = tree.artery(vessel.text)
    by_segments: dict[tuple[str, ...], list[_Unit]] = {}
    for unit in scope.units if scope else (None,):
        place = unit.place if unit else None
        segments = tree.segment_ids(artery, place, dominance.value)
        by_segments.setdefault(segments, []).extend([unit] if unit else [])
    percentages = [parse_percentage(q.text) for _, q in quantifiers]
    systolic = tree.has_cue("systolic", sentence[1]) and any(
        tree.has_cue("systolic", _clause_prefix(text, at))
        for at in [degree.start, *(q.start for _, q in quantifiers)])
    negated = bool(negations)
    stenosis = tree.stenosis(degree.text, percentages, negated=negated, systolic=systolic)
    pct = _worst(percentages)
    pct_text = TEXT_JOINER.join(q.text for _, q in quantifiers) or None
    out = []
    for segments, units in by_segments.items():
        locations = [loc for unit in units for loc in unit.locations]
        first = locations[0][1] if locations else None
        location_text = TEXT_JOINER.join(u.text for u in units) or None
        used = [modifier, *negations, *(r for r, _ in quantifiers), *(r for r, _ in locations)]
        out.append(KeyValueRecord(
            report_id=document.doc_id,
            vessel=vessel.text,
            segment=location_text,
            finding=degree.text,
            percentage_text=pct_text,
            percentage_low=pct.low,
            percentage_high=pct.high,
            negated=negated,
            sentence=sentence[1],
            sentence_start=sentence[0],
            degree_id=degree.id,
            degree_start=degree.start,
            degree_end=degree.end,
            vessel_id=vessel.id,
            vessel_start=vessel.start,
            vessel_end=vessel.end,
            segment_id=first.id if first else None,
            segment_start=first.start if first else None,
            segment_end=locations[-1][1].end if locations else None,
            artery=artery,
            segments=segments,
            stenosis=stenosis,
            vessel_text=vessel.text,
            location_text=location_text,
            dominance=dominance.value,
            dominance_assumed=dominance.assumed,
            confidence=_min_confidence(used),
            model_version=model_version,
            run_id=run_id,
        ))
    return out


def _worst(percentages: Sequence[PercentageRange]) -> PercentageRange:
    """The percentage that gives the stenosis (the highest upper bound): its range is the
    record's percentage_low / percentage_high; several are all kept in percentage_text."""
    if not percentages:
        return PercentageRange(None, None)

    def upper(p: PercentageRange) -> float:
        value = p.high if p.high is not None else p.low
        return -1.0 if value is None else value

    return max(percentages, key=upper)


def unmapped_spellings(document: Document, tree: CoronaryTree | None = None
                       ) -> Counter[tuple[str, str]]:
    """(entity type, text) of every BodyPart and Location whose spelling the synonym table
    lacks, with how often the document writes it: what an operator should add."""
    tree = tree or default_tree()
    found: Counter[tuple[str, str]] = Counter()
    for e in document.entities:
        if (e.type == VESSEL_TYPE and tree.artery(e.text) is None) or (
                e.type == SEGMENT_TYPE and tree.place(e.text) is None):
            found[(e.type, e.text)] += 1
    return found
