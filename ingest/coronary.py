"""The coronary tree of the analysts' contract: arteries, SYNTAX segments, spellings, stenosis.

`../shared/schema/coronary-tree.md` fixes one vocabulary for where a finding is, so that one query
finds every way a doctor wrote the same place. Its tables live in three data files beside the
schema, never as literals in code:

- `data/coronary-arteries.tsv`: the artery ids and their territories (fixed by the contract);
- `data/coronary-segments.tsv`: the SYNTAX segments, the artery and locations each covers, and
  the dominance under which it exists (fixed by the contract);
- `data/coronary-synonyms.tsv`: how reports spell arteries, locations and dominance, and the cue
  words of scoping and stenosis (a user extends this one).

This module answers the questions the records ask of the tree: which artery a BodyPart spelling
names, which segments a Location means on that artery under the report's dominance, which
territory an artery counts for, and the stenosis a finding states. A spelling the table lacks
gives `None`: it is never guessed.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ingest.percentages import PercentageRange

# Anatomical order along an artery: a range "X至Y" covers X, Y and every position between.
POSITIONS = ("ostium", "proximal", "mid", "distal")
WHOLE, NO_SEGMENT = "whole", "none"
RIGHT, LEFT, BALANCED = "right", "left", "balanced"
DOMINANCES = (RIGHT, LEFT, BALANCED)
DOMINANT = "dominant"  # the territory of PDA and PLB: LCX under left dominance, else RCA
TERRITORIES = ("LM", "LAD", "LCX", "RCA")
CUE_KINDS = ("list", "range", "backward", "respectively", "systolic")
FINDING_KINDS = ("stenosis", "never")
SYNONYM_KINDS = ("artery", "location", "dominance", "cue", "finding", "occlusion")

ARTERIES_FILE = "coronary-arteries.tsv"
SEGMENTS_FILE = "coronary-segments.tsv"
SYNONYMS_FILE = "coronary-synonyms.tsv"


class CoronaryTableError(ValueError):
    """A line of a coronary data file could not be understood; the message names file and line."""


@functools.lru_cache(maxsize=65536)  # reports repeat a few hundred spellings millions of times
def spelling_key(text: str) -> str:
    """What spellings are compared by: NFKC (full-width forms fold), no surrounding white space,
    case-insensitive (LCx = LCX)."""
    return unicodedata.normalize("NFKC", text).strip().casefold()


@dataclass(frozen=True)
class Artery:
    id: str
    territory: str | None  # LM, LAD, LCX, RCA, DOMINANT, or None (LCA: the left system)
    name: str
    name_zh: str


@dataclass(frozen=True)
class Segment:
    id: str
    artery: str
    positions: frozenset[str]  # empty for a branch: one segment whatever the location
    dominance: str | None  # the dominance it exists under (balanced counts as right); None: any
    name: str
    name_zh: str
    rank: int  # SYNTAX order (1, 2, ..., 12, 12a, 12b, 13, ...) for sorting and display


@dataclass(frozen=True)
class Place:
    """What a Location spelling means along an artery: positions, every segment, or none."""

    positions: frozenset[str] = frozenset()
    whole: bool = False

    def through(self, other: Place) -> Place:
        """The range from this place to `other` (开口至近段): both and every position between."""
        if self.whole or other.whole:
            return Place(whole=True)
        both = self.positions | other.positions
        if not self.positions or not other.positions:  # a range from a bifurcation: no span
            return Place(both)
        indices = [POSITIONS.index(p) for p in both]
        return Place(frozenset(POSITIONS[min(indices) : max(indices) + 1]))


@dataclass(frozen=True)
class Dominance:
    value: str  # right, left or balanced
    assumed: bool  # the report does not say; right by the contract


def effective_dominance(dominance: str) -> str:
    """SYNTAX has no co-dominance: a balanced tree is segmented as a right-dominant one."""
    return RIGHT if dominance == BALANCED else dominance


@dataclass(frozen=True, eq=False)
class CoronaryTree:
    arteries: Mapping[str, Artery]
    segments: tuple[Segment, ...]  # in SYNTAX order
    artery_spellings: Mapping[str, str]  # spelling_key -> artery id
    place_spellings: Mapping[str, Place]  # spelling_key -> place
    dominance_spellings: tuple[tuple[str, str], ...]  # (spelling_key, dominance)
    cues: Mapping[str, tuple[str, ...]]  # cue kind -> spellings (NFKC)
    finding_words: Mapping[str, tuple[str, ...]]  # stenosis / never -> words
    occlusions: tuple[tuple[str, float], ...]  # longest word first
    _segments: dict[tuple[str, str], tuple[Segment, ...]] = field(
        default_factory=dict, repr=False)  # (artery, tree dominance) -> its segments, memoised

    # --- spellings -----------------------------------------------------------------------

    def artery(self, spelling: str) -> str | None:
        """The artery id a BodyPart spelling names, or None when the table lacks it."""
        return self.artery_spellings.get(spelling_key(spelling))

    def place(self, spelling: str) -> Place | None:
        """What a Location spelling means, or None when the table lacks it. A spelling the
        table lacks that is two known locations joined by a range cue (开口至近段 marked as one
        span) is that range."""
        key = spelling_key(spelling)
        if key in self.place_spellings:
            return self.place_spellings[key]
        for cue in self.cues.get("range", ()):
            first, sep, second = key.partition(spelling_key(cue))
            if sep and first in self.place_spellings and second in self.place_spellings:
                return self.place_spellings[first].through(self.place_spellings[second])
        return None

    def dominance(self, text: str) -> Dominance:
        """The report's dominance: the first one it states, else right (assumed)."""
        folded = unicodedata.normalize("NFKC", text).casefold()
        found = [(at, -len(spelling), value) for spelling, value in self.dominance_spellings
                 if (at := folded.find(spelling)) >= 0]
        if not found:
            return Dominance(RIGHT, assumed=True)
        return Dominance(min(found)[2], assumed=False)

    # --- the tree ------------------------------------------------------------------------

    def segments_of(self, artery: str | None, dominance: str) -> tuple[Segment, ...]:
        if artery is None:
            return ()
        key = (artery, effective_dominance(dominance))
        if key not in self._segments:
            self._segments[key] = tuple(s for s in self.segments
                                        if s.artery == artery and s.dominance in (None, key[1]))
        return self._segments[key]

    def segment_ids(self, artery: str | None, place: Place | None, dominance: str
                    ) -> tuple[str, ...]:
        """The SYNTAX segments `place` means on `artery` (None: no location written).

        A branch and the left main are one segment whatever the location; an artery without
        SYNTAX segments (SEPTAL, AM, CONUS, SAN, LCA) has none; otherwise the segments covering
        the place's positions, every one for `whole`, none for no location or a place that names
        no segment (a bifurcation)."""
        segments = self.segments_of(artery, dominance)
        if len(segments) == 1 and not segments[0].positions:
            return (segments[0].id,)
        if place is None:
            return ()
        if place.whole:
            return tuple(s.id for s in segments)
        return tuple(s.id for s in segments if s.positions & place.positions)

    def territory(self, artery: str | None, dominance: str) -> str | None:
        """The summary territory an artery counts for (LM, LAD, LCX, RCA), or None."""
        found = self.arteries.get(artery) if artery else None
        if found is None or found.territory is None:
            return None
        if found.territory == DOMINANT:
            return "LCX" if effective_dominance(dominance) == LEFT else "RCA"
        return found.territory

    # --- cues and stenosis ---------------------------------------------------------------

    # Cue words are matched as written (they are CJK words and punctuation, which NFKC leaves
    # alone), so a long text is never normalised just to look at its end.

    @property
    def cue_reach(self) -> int:
        """How far before a point a cue ending there can start (white space allowed)."""
        return max((len(c) for cues in self.cues.values() for c in cues), default=0) + 8

    def is_cue(self, kind: str, text: str) -> bool:
        """`text` (white space aside) is exactly one of the cue words of `kind`."""
        return text.strip() in self.cues.get(kind, ())

    def ends_with_cue(self, kind: str, text: str) -> bool:
        tail = text.rstrip()
        return any(tail.endswith(cue) for cue in self.cues.get(kind, ()))

    def has_cue(self, kind: str, text: str) -> bool:
        return any(cue in text for cue in self.cues.get(kind, ()))

    def stenosis(self, finding: str, percentages: Sequence[PercentageRange], *, negated: bool,
                 systolic: bool) -> float | None:
        """The stenosis (%) a finding states, by the contract's rules; None when it states none.

        A myocardial bridge and a compression written after 收缩期 never count. A finding counts
        when its text holds a stenosis word (狭窄, 闭塞) or it carries a percentage: negated it
        is 0 (examined, none); else the highest upper bound of its percentages (90%以上 -> 90),
        else the occlusion its text names (闭塞 100, 次全闭塞 99). Other findings: None."""
        if systolic or any(word in finding for word in self.finding_words.get("never", ())):
            return None
        values = [p.high if p.high is not None else p.low for p in percentages]
        numbers = [v for v in values if v is not None]
        if not numbers and not any(w in finding for w in self.finding_words.get("stenosis", ())):
            return None
        if negated:
            return 0.0
        if numbers:
            return max(numbers)
        return next((value for word, value in self.occlusions if word in finding), None)


# --- loading -------------------------------------------------------------------------------


def _rows(path: Path, columns: Sequence[str]) -> Iterable[tuple[int, list[str]]]:
    """(line number, fields) of a TSV data file; `#` comments and blank lines skipped, and the
    header line checked against `columns`."""
    header_seen = False
    for number, raw in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in raw.split("\t")]
        if not header_seen:
            if fields != list(columns):
                raise CoronaryTableError(
                    f"{path}:{number}: expected the header {'<TAB>'.join(columns)}, got {raw!r}")
            header_seen = True
            continue
        if len(fields) != len(columns) or not all(fields):
            raise CoronaryTableError(
                f"{path}:{number}: expected {len(columns)} TAB-separated fields "
                f"({', '.join(columns)}), got {raw!r}")
        yield number, fields


def _rank(segment_id: str) -> tuple[int, str]:
    digits = "".join(c for c in segment_id if c.isdigit())
    return int(digits), segment_id[len(digits):]


def _load_arteries(path: Path) -> dict[str, Artery]:
    arteries: dict[str, Artery] = {}
    for number, (artery_id, territory, name, name_zh) in _rows(
            path, ("artery", "territory", "name", "name_zh")):
        if territory not in (*TERRITORIES, DOMINANT, "-"):
            raise CoronaryTableError(f"{path}:{number}: territory {territory!r} is not one of "
                                     f"{', '.join((*TERRITORIES, DOMINANT))} or -")
        arteries[artery_id] = Artery(artery_id, None if territory == "-" else territory, name,
                                     name_zh)
    return arteries


def _load_segments(path: Path, arteries: Mapping[str, Artery]) -> tuple[Segment, ...]:
    segments = []
    for number, (segment_id, artery, positions, dominance, name, name_zh) in _rows(
            path, ("segment", "artery", "positions", "dominance", "name", "name_zh")):
        if artery not in arteries:
            raise CoronaryTableError(f"{path}:{number}: unknown artery {artery!r}")
        covered = frozenset() if positions == "-" else frozenset(positions.split("+"))
        if not covered <= set(POSITIONS) or dominance not in (RIGHT, LEFT, "-"):
            raise CoronaryTableError(
                f"{path}:{number}: positions must be {'+'.join(POSITIONS)} (some of them) or -, "
                f"dominance right, left or -; got {positions!r}, {dominance!r}")
        segments.append(Segment(segment_id, artery, covered,
                                None if dominance == "-" else dominance, name, name_zh, 0))
    ordered = sorted(segments, key=lambda s: _rank(s.id))
    return tuple(Segment(s.id, s.artery, s.positions, s.dominance, s.name, s.name_zh, rank)
                 for rank, s in enumerate(ordered, start=1))


def _place(value: str) -> Place | None:
    if value == WHOLE:
        return Place(whole=True)
    if value == NO_SEGMENT:
        return Place()
    positions = frozenset(value.split("+"))
    return Place(positions) if positions <= set(POSITIONS) else None


def _load_synonyms(path: Path, arteries: Mapping[str, Artery]) -> dict[str, dict]:
    tables: dict[str, dict] = {kind: {} for kind in SYNONYM_KINDS}
    for number, (kind, spelling, value) in _rows(path, ("kind", "spelling", "value")):
        where = f"{path}:{number}"
        parsed: object
        if kind == "artery":
            if value not in arteries:
                raise CoronaryTableError(f"{where}: {value!r} is not an artery id of "
                                         f"{ARTERIES_FILE} ({', '.join(arteries)})")
            parsed = value
        elif kind == "location":
            parsed = _place(value)
            if parsed is None:
                raise CoronaryTableError(
                    f"{where}: location {spelling!r}: {value!r} is not {'+'.join(POSITIONS)} "
                    f"(some of them), {WHOLE} or {NO_SEGMENT}")
        elif kind == "dominance":
            if value not in DOMINANCES:
                raise CoronaryTableError(f"{where}: dominance must be one of {DOMINANCES}")
            parsed = value
        elif kind == "cue":
            if value not in CUE_KINDS:
                raise CoronaryTableError(f"{where}: cue kind must be one of {CUE_KINDS}")
            parsed = value
        elif kind == "finding":
            if value not in FINDING_KINDS:
                raise CoronaryTableError(f"{where}: finding kind must be one of {FINDING_KINDS}")
            parsed = value
        elif kind == "occlusion":
            try:
                parsed = float(value)
            except ValueError:
                raise CoronaryTableError(f"{where}: occlusion value must be a percentage "
                                         f"number, got {value!r}") from None
        else:
            raise CoronaryTableError(f"{where}: kind {kind!r} is not one of {SYNONYM_KINDS}")
        key = spelling_key(spelling) if kind in ("artery", "location", "dominance") else spelling
        if tables[kind].get(key, parsed) != parsed:
            raise CoronaryTableError(f"{where}: {kind} {spelling!r} is already given as "
                                     f"{tables[kind][key]!r}; keep one line per spelling")
        tables[kind][key] = parsed
    return tables


def _grouped(table: Mapping[str, str], kinds: Sequence[str]) -> dict[str, tuple[str, ...]]:
    return {kind: tuple(sorted((w for w, k in table.items() if k == kind), key=len, reverse=True))
            for kind in kinds}


def load_tree(synonyms: str | Path | None = None, data_dir: str | Path | None = None
              ) -> CoronaryTree:
    """The tree from the data files (the bundled ones unless given)."""
    folder = Path(data_dir) if data_dir else Path(str(resources.files("ingest") / "data"))
    arteries = _load_arteries(folder / ARTERIES_FILE)
    segments = _load_segments(folder / SEGMENTS_FILE, arteries)
    tables = _load_synonyms(Path(synonyms) if synonyms else folder / SYNONYMS_FILE, arteries)
    return CoronaryTree(
        arteries=arteries,
        segments=segments,
        artery_spellings=tables["artery"],
        place_spellings=tables["location"],
        dominance_spellings=tuple(tables["dominance"].items()),
        cues=_grouped(tables["cue"], CUE_KINDS),
        finding_words=_grouped(tables["finding"], FINDING_KINDS),
        occlusions=tuple(sorted(tables["occlusion"].items(), key=lambda kv: -len(kv[0]))),
    )


@functools.cache
def default_tree() -> CoronaryTree:
    """The bundled tree, read once per process."""
    return load_tree()
