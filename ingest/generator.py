"""Synthetic coronary angiography reports, annotated exactly as the guideline says.

A report is built left to right: every entity is marked as its text is appended, so offsets and
recorded text cannot disagree, spans never overlap, and relations are only made between entities
of the clause being written (never across sentences). A relation's name is the one the schema
allows between its arguments' types. Report `i` of seed `s` is drawn from its own
`random.Random`, so it is the same report whether 10 or 100,000 are generated.

Each report has its writer's habits (`_Habits`): Chinese names, English abbreviations, both
(`前降支（LAD）`) or a mix; 近段/远段 or 近端/远端; a numbering style; full-width letters and
digits; homophone typos in lesion words. Layouts: vessel-by-vessel sections (numbered or not),
left/right system blocks, narrative paragraphs with long multi-vessel sentences, terse
English-heavy notes, or a short findings-only report; optionally a stent history (follow-up)
and a PCI paragraph; a conclusion and advice. Punctuation is full-width, half-width or mixed.

Sentences that name several vessels and lesions, vessels named without a finding, and
headings on a line of their own make many schema-allowed pairs that are NOT related, so the
model can learn which vessel a lesion belongs to instead of relating every allowed pair.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from ingest import generator_vocab as V
from ingest.brat_writer import write_document
from ingest.document import Document, Entity, Relation, Span
from ingest.generator_vocab import Vessel
from ingest.schema import Schema, load_schema

# Full-width forms of printable ASCII (an old input method types ＬＡＤ ７０％).
_FULL_WIDTH = {code: code + 0xFEE0 for code in range(0x21, 0x7F)}


class _Punct:
    """The report's punctuation habit: full-width, half-width, or a mix of both."""

    FULL = {"colon": "：", "comma": "，", "semi": "；", "open": "（", "close": "）"}
    HALF = {"colon": ":", "comma": ",", "semi": ";", "open": "(", "close": ")"}

    def __init__(self, rng: random.Random, mode: str | None = None) -> None:
        self.rng = rng
        self.mode = mode or rng.choices(("full", "half", "mixed"), weights=(66, 14, 20))[0]

    def __call__(self, name: str) -> str:
        full = self.mode == "full" or (self.mode == "mixed" and self.rng.random() < 0.6)
        if name == "pct":  # reports type the full-width ％ now and then whatever else they use
            return "％" if self.rng.random() < 0.12 else "%"
        if name == "tilde":
            return self.rng.choice(("~", "～"))
        return (self.FULL if full else self.HALF)[name]


@dataclass(frozen=True)
class _Habits:
    """How this report's writer writes: drawn once per report."""

    names: str  # "chinese", "english", "bracketed" (前降支（LAD）) or "mixed"
    ends: bool  # 近端/远端/开口处 rather than 近段/远段/开口
    numbering: str | None  # an item marker of V.NUMBERINGS, or none
    full_width: bool
    typo_rate: float  # chance that a lesion word or plain phrase has a homophone slip

    @classmethod
    def draw(cls, rng: random.Random, layout: str) -> _Habits:
        names = rng.choices(("chinese", "english", "bracketed", "mixed"),
                            weights=(55, 15, 12, 18))[0]
        if layout == "terse":
            names = rng.choice(("english", "english", "mixed"))
        numbering = rng.choice(V.NUMBERINGS) if rng.random() < 0.5 else None
        typo_rate = rng.choice((0.05, 0.1, 0.15)) if rng.random() < 0.12 else 0.0
        return cls(names=names, ends=rng.random() < 0.3, numbering=numbering,
                   full_width=rng.random() < 0.05, typo_rate=typo_rate)


@dataclass
class _Builder:
    """Appends text and marks entities and relations as it goes."""

    doc_id: str
    schema: Schema
    full_width: bool = False
    parts: list[str] = field(default_factory=list)
    length: int = 0
    entities: list[Entity] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)

    def say(self, text: str) -> None:
        if self.full_width:
            text = text.translate(_FULL_WIDTH)
        self.parts.append(text)
        self.length += len(text)

    def mark(self, entity_type: str, text: str) -> str:
        if self.full_width:
            text = text.translate(_FULL_WIDTH)
        entity_id = f"T{len(self.entities) + 1}"
        span = Span(self.length, self.length + len(text))
        self.entities.append(Entity(entity_id, entity_type, (span,), text))
        self.types[entity_id] = entity_type
        self.say(text)
        return entity_id

    def relate(self, arg1: str, arg2: str) -> None:
        name = self.schema.relation_from(self.types[arg1], self.types[arg2])
        if name is None:  # check_vocabulary rules this out before anything is written
            raise ValueError(f"the schema names no relation {self.types[arg1]}->"
                             f"{self.types[arg2]}")
        self.relations.append(Relation(f"R{len(self.relations) + 1}", name, arg1, arg2))

    def at_line_start(self) -> bool:
        return not self.parts or self.parts[-1].endswith("\n")

    def document(self, annotated: bool) -> Document:
        text = "".join(self.parts)
        if not annotated:
            return Document(self.doc_id, text, annotated=False)
        return Document(self.doc_id, text, tuple(self.entities), tuple(self.relations))


@dataclass(frozen=True)
class _Group:
    """The vessel mentions a clause is about: ids of every mention, and what they name."""

    ids: tuple[str, ...]
    vessels: tuple[Vessel, ...]
    names: tuple[str, ...]


@dataclass(frozen=True)
class _Lesion:
    """A significant finding, remembered for the conclusion."""

    vessel: Vessel
    name: str
    location: str | None
    degree: str
    quantifier: str | None


class _Writer:
    """The grammar: one method per kind of phrase."""

    def __init__(self, rng: random.Random, builder: _Builder, habits: _Habits,
                 punct: _Punct) -> None:
        self.rng = rng
        self.b = builder
        self.h = habits
        self.p = punct
        self.lesions: list[_Lesion] = []
        self.severity = rng.random()  # how diseased this patient is
        self.items = 0  # numbered items written so far
        self.dominance_said = False
        self.compared = False  # a follow-up: findings are compared with the last angiogram

    # --- words ---------------------------------------------------------------------------

    def typo(self, word: str) -> str:
        """`word`, now and then with one character typed as a homophone."""
        r = self.rng
        if not self.h.typo_rate or r.random() >= self.h.typo_rate:
            return word
        spots = [i for i, ch in enumerate(word) if ch in V.HOMOPHONES]
        if not spots:
            return word
        i = r.choice(spots)
        return word[:i] + r.choice(V.HOMOPHONES[word[i]]) + word[i + 1:]

    def name(self, vessel: Vessel) -> str:
        r = self.rng
        english = self.h.names == "english" or (self.h.names == "mixed" and r.random() < 0.5)
        if english and vessel.english:
            return r.choice(vessel.english)
        return r.choice(vessel.chinese)

    def location_word(self, name: str) -> str:
        if self.h.ends and name in V.ENDS_HABIT and self.rng.random() < 0.8:
            return self.rng.choice(V.ENDS_HABIT[name])
        return name

    def item(self) -> None:
        """The next item marker of a numbered list (nothing without a numbering habit)."""
        if self.h.numbering is None:
            return
        self.items += 1
        k = self.items
        self.b.say(self.h.numbering.format(k=k, circled=V.CIRCLED[(k - 1) % len(V.CIRCLED)],
                                           wide=str(k).translate(_FULL_WIDTH)))

    # --- entity phrases ------------------------------------------------------------------

    def quantifier(self, degree: str = "狭窄", about: bool = True) -> tuple[str, str, int]:
        """Say (约) and mark a Quantifier fit for `degree` (重度 is 70% or more); return its id,
        its text and its main value."""
        r, pct = self.rng, self.p("pct")
        low, high = V.SEVERITY_RANGE.get(degree, (30, 99))
        value = r.choice([v for v in V.PERCENT_VALUES if low <= v <= high])
        form = r.choices(("plain", "about", "range", "above", "around", "below"),
                         weights=(40, 18, 22, 10, 10, 2))[0]
        if form == "range" and value <= 90:
            high = min(value + r.choice((10, 20)) if value < 80 else value + 5, 99)
            sep = r.choice(("-", self.p("tilde"), "-", "至"))
            first = f"{value}{pct}" if r.random() < 0.7 else str(value)
            text = f"{first}{sep}{high}{pct}"
        elif form == "above" and value >= 70:
            text = f"{value}{pct}以上"
        elif form == "below" and value <= 30:
            text = f"<{value}{pct}"
        elif form == "around" and about:
            self.b.say("约")  # 约 is never part of the Quantifier
            text = f"{value}{pct}左右"
        else:
            if form == "about" and about:
                self.b.say("约")
            text = f"{value}{pct}"
        return self.b.mark(V.QUANTIFIER, text), text, value

    def vessel(self, vessel: Vessel, text: str | None = None) -> list[str]:
        """Mark a vessel, and its abbreviation in brackets when the report writes both."""
        text = text or self.name(vessel)
        ids = [self.b.mark(V.BODY_PART, text)]
        if (self.h.names == "bracketed" and vessel.english and text in vessel.chinese
                and self.rng.random() < 0.6):
            self.b.say(self.p("open"))
            ids.append(self.b.mark(V.BODY_PART, self.rng.choice(vessel.english)))
            self.b.say(self.p("close"))
        return ids

    def one(self, vessel: Vessel) -> _Group:
        """Mark one vessel (with its bracketed abbreviation, by habit) as a group."""
        text = self.name(vessel)
        return _Group(tuple(self.vessel(vessel, text)), (vessel,), (text,))

    def pick_vessel(self) -> Vessel:
        r = self.rng
        main, branches = r.choice(V.MAIN_VESSELS)
        roll = r.random()
        if roll < 0.04:
            return V.RAMUS
        return r.choice(branches) if branches and roll < 0.3 else main

    def vessels(self, main: Vessel | None = None, coordinate: bool = True) -> _Group:
        """Mark one vessel, or two or three coordinated ones."""
        r = self.rng
        chosen = [main or self.pick_vessel()]
        if coordinate and r.random() < 0.2:
            others = [m for m, _ in V.MAIN_VESSELS] + [b for _, bs in V.MAIN_VESSELS
                                                      for b in bs[:2]]
            chosen += r.sample([o for o in others if o not in chosen], r.choice((1, 1, 2)))
        ids: list[str] = []
        names: list[str] = []
        for k, vessel in enumerate(chosen):
            if k:  # 前降支、回旋支及右冠
                self.b.say("、" if k < len(chosen) - 1 else r.choice(V.COORDINATORS))
            text = self.name(vessel)
            ids += self.vessel(vessel, text)
            names.append(text)
        return _Group(tuple(ids), tuple(chosen), tuple(names))

    def locations(self, group: _Group) -> tuple[list[str], str | None]:
        """Maybe mark one or two Locations, each a Position of every vessel mention; return
        their texts and the word joining two (至 for a range, 、/及/和 for a list)."""
        r = self.rng
        roll = r.random()
        if roll < 0.3:
            return [], None
        joiner = None
        if group.vessels[0] is V.LEFT_MAIN:
            names = [r.choice(V.LEFT_MAIN_LOCATIONS)]
        elif roll > 0.86:
            names = list(r.choice(V.LOCATION_PAIRS))
            joiner = r.choice(V.RANGE_WORDS + V.LIST_WORDS)
        else:
            names = [r.choices(V.LOCATIONS, weights=V.LOCATION_WEIGHTS)[0]]
        written = []
        for k, name in enumerate(names):
            if k:
                self.b.say(joiner or "至")
            text = self.location_word(name)
            location_id = self.b.mark(V.LOCATION, text)
            written.append(text)
            for vessel_id in group.ids:
                self.b.relate(vessel_id, location_id)
        return written, joiner

    def degree(self, text: str, vessel_ids: tuple[str, ...] | list[str]) -> str:
        degree_id = self.b.mark(V.DEGREE, self.typo(text))
        for vessel_id in vessel_ids:
            self.b.relate(degree_id, vessel_id)
        return degree_id

    # --- clauses -------------------------------------------------------------------------

    def finding(self, group: _Group | None = None, healthy: bool = False) -> None:
        """One clause about a vessel (group): vessels unless given by a heading, then a lesion."""
        r = self.rng
        if group is None:
            group = self.vessels()
        if healthy or r.random() > 0.35 + 0.6 * self.severity:
            self.negated(group.ids)
            return
        where, joiner = self.locations(group)
        if len(where) == 2 and joiner in V.LIST_WORDS and r.random() < 0.5:
            self._respectively(group, 2, where)
            return
        if len(group.vessels) >= 2 and not where and r.random() < 0.35:
            self._respectively(group, len(group.vessels), where)
            return
        kind = r.choices(("stenosis", "plain", "plaque", "bridge", "stent"),
                         weights=(50, 26, 12, 5, 7))[0]
        getattr(self, f"_{kind}")(group, where)

    def negated(self, vessel_ids: tuple[str, ...] | list[str],
                degrees: tuple[str, ...] = V.NEGATABLE) -> None:
        r = self.rng
        if r.random() < 0.15:
            self.b.say(self.typo(r.choice(("管壁光滑", "血流通畅", "走行自然"))) + self.p("comma"))
        negation_id = self.b.mark(V.NEGATION, r.choice(V.NEGATIONS))
        if r.random() < 0.6:
            self.b.say(r.choice(("明显", "明显", "有意义")))
        count = 1 if r.random() < 0.8 else r.choice((2, 2, 3))
        for k, text in enumerate(r.sample(("狭窄", "斑块", "闭塞", "钙化"), count)
                                 if count > 1 else [r.choice(degrees)]):
            if k:
                self.b.say(r.choice(("及", "、", "或")))
            degree_id = self.degree(text, vessel_ids)
            self.b.relate(degree_id, negation_id)

    def _remember(self, group: _Group, where: list[str], degree: str, q: str | None) -> None:
        for vessel, name in zip(group.vessels, group.names, strict=True):
            self.lesions.append(_Lesion(vessel, name, where[0] if where else None, degree, q))

    def _stenosis(self, group: _Group, where: list[str]) -> None:
        r = self.rng
        degree = r.choice(V.STENOSIS)
        form = r.choices(("after", "before", "worst", "extent", "of", "reaches", "diameter"),
                         weights=(44, 16, 12, 12, 8, 8, 4))[0]
        if self.compared and r.random() < 0.3:
            self._compared(group, where)
            return
        if form == "diameter":  # QCA wording: 直径狭窄85%，病变长度约20mm
            self.b.say("直径")
            degree = "狭窄"
            degree_id = self.degree(degree, group.ids)
            q_id, q, value = self.quantifier(about=False)
            if r.random() < 0.5:
                self.b.say(self.p("comma") + r.choice(V.LESION_MEASURES).format(
                    mm=r.randrange(6, 40, 2), ref=r.choice(("2.5", "2.75", "3.0", "3.5"))))
        elif form == "before":  # 70%狭窄: Percentage holds in both directions
            q_id, q, value = self.quantifier(degree)
            degree_id = self.degree(degree, group.ids)
        elif form == "of":  # 可见约70%的狭窄
            self.b.say(r.choice(("可见", "见", "")))
            q_id, q, value = self.quantifier(degree)
            self.b.say("的")
            degree_id = self.degree(degree, group.ids)
        else:
            if form == "worst":
                self.b.say("最重处")
            degree_id = self.degree(degree, group.ids)
            if form == "extent":
                self.b.say(r.choice(("程度", "程度约为", "程度为")))
            if form == "reaches":
                self.b.say(r.choice(("达", "约为")))
            q_id, q, value = self.quantifier(degree, about=form not in ("extent", "reaches"))
        self.b.relate(degree_id, q_id)
        if value >= 70:
            self._remember(group, where, degree, q)

    def _compared(self, group: _Group, where: list[str]) -> None:
        """A follow-up's comparison: 新发狭窄约60%, 狭窄由50%进展至80%, …，较前加重."""
        r = self.rng
        form = r.choice(("new", "from-to", "tail"))
        if form == "new":
            self.b.say("新发")
        degree_id = self.degree("狭窄", group.ids)
        if form == "from-to":
            self.b.say("由")
            self.b.relate(degree_id, self.quantifier(about=False)[0])
            self.b.say(r.choice(("进展至", "加重至", "进展为")))
        q_id, q, value = self.quantifier(about=form != "from-to")
        self.b.relate(degree_id, q_id)
        if form == "tail":
            self.b.say(self.p("comma") + r.choice(V.COMPARISONS))
        if value >= 70:
            self._remember(group, where, "狭窄", q)

    def _respectively(self, group: _Group, count: int, where: list[str]) -> None:
        """前降支、回旋支分别狭窄50%和75%: one Degree, a Percentage to each value."""
        r = self.rng
        self.b.say("分别")
        before = r.random() < 0.3
        if before:
            self.b.say(r.choice(("见", "")))
        else:
            degree_id = self.degree("狭窄", group.ids)
        q_ids = []
        for k in range(count):
            if k:
                self.b.say(r.choice(("和", "、", "及")))
            q_ids.append(self.quantifier(about=False)[0])
        if before:
            degree_id = self.degree("狭窄", group.ids)
        for q_id in q_ids:
            self.b.relate(degree_id, q_id)

    def _plain(self, group: _Group, where: list[str]) -> None:
        r = self.rng
        degree = r.choice(V.NO_PERCENT)
        if self.h.names == "english" and r.random() < 0.4:
            degree = r.choice(("CTO", degree))
        if degree in V.OCCLUSIONS and degree != "次全闭塞" and r.random() < 0.3:
            q_id = self.b.mark(V.QUANTIFIER, f"100{self.p('pct')}")
            self.b.relate(self.degree(degree, group.ids), q_id)
        elif degree in V.WORST_OF and r.random() < 0.7:
            degree_id = self.degree(degree, group.ids)
            self.b.say(self.p("comma") + r.choice(("最重处", "最重", "最窄处")))
            self.b.relate(degree_id, self.quantifier(about=False)[0])
        else:
            self.degree(degree, group.ids)
        if degree in V.OCCLUSIONS:
            if r.random() < 0.4:
                self.b.say(self.p("comma") + V.TIMI.format(grade=r.choice((0, 0, 1))))
            elif r.random() < 0.3:
                self._collateral(group)
            self._remember(group, where, degree, None)

    def _collateral(self, group: _Group) -> None:
        """远端经右冠侧支逆向显影: a Location of the occluded vessel, a donor vessel unrelated."""
        r = self.rng
        donors = [m for m, _ in V.MAIN_VESSELS[1:] if m not in group.vessels]
        if not donors:
            return
        self.b.say(self.p("comma"))
        donor = r.choice(donors)
        if r.random() < 0.5:
            location_id = self.b.mark(V.LOCATION, self.location_word("远段"))
            for vessel_id in group.ids:
                self.b.relate(vessel_id, location_id)
            self.b.say("经")
            self.b.mark(V.BODY_PART, self.name(donor))
            self.b.say("侧支逆向显影")
        else:
            self.b.say("可见")
            self.b.mark(V.BODY_PART, self.name(donor))
            self.b.say("向其提供侧支循环")

    def _plaque(self, group: _Group, where: list[str]) -> None:
        r = self.rng
        self.degree(r.choice(V.PLAQUE_LIKE), group.ids)
        self.b.say(self.p("comma") + r.choice(("最重处", "", "伴")))
        degree_id = self.degree("狭窄", group.ids)
        q_id, q, value = self.quantifier()
        self.b.relate(degree_id, q_id)
        if value >= 70:
            self._remember(group, where, "狭窄", q)

    def _bridge(self, group: _Group, where: list[str]) -> None:
        degree_id = self.degree(self.rng.choice(("心肌桥", "心肌桥", "肌桥")), group.ids)
        self.b.say(self.p("comma") + "收缩期压缩")
        self.b.relate(degree_id, self.quantifier()[0])

    def _stent(self, group: _Group, where: list[str]) -> None:
        r = self.rng
        if V.LEFT_MAIN in group.vessels:  # a left-main stent is rare: say what else is seen
            self._plaque(group, where)
            return
        self.b.say("支架内" if r.random() < 0.5 else "原支架内")
        if r.random() < 0.4:
            self.negated(group.ids, ("再狭窄", "狭窄"))
            if r.random() < 0.4:
                self.b.say(self.p("comma") + "支架通畅")
            return
        degree_id = self.degree("再狭窄", group.ids)
        self.b.relate(degree_id, self.quantifier("再狭窄")[0])

    def bystander(self) -> None:
        """A vessel named without a finding (发育细小, 为优势血管): its pairs are NoRelation."""
        vessel = self.rng.choice([m for m, _ in V.MAIN_VESSELS[1:]])
        before, _, after = self.rng.choice(V.BYSTANDER).partition("{v}")
        self.b.say(before)
        self.b.mark(V.BODY_PART, self.name(vessel))
        self.b.say(after)

    def finding_without_vessel(self) -> None:
        """An item under a heading on its own line: locations and a lesion, no vessel in the
        sentence, so no Modifier or Position (relations never cross sentences)."""
        r = self.rng
        location = self.location_word(r.choices(V.LOCATIONS, weights=V.LOCATION_WEIGHTS)[0])
        self.b.mark(V.LOCATION, location)
        if r.random() < 0.3:
            negation_id = self.b.mark(V.NEGATION, r.choice(V.NEGATIONS))
            self.b.relate(self.degree("狭窄", ()), negation_id)
            return
        degree = r.choice(V.STENOSIS)
        degree_id = self.degree(degree, ())
        self.b.relate(degree_id, self.quantifier(degree)[0])

    # --- sentences and sections ----------------------------------------------------------

    def end(self, line: bool = False) -> None:
        """End a sentence: 。 or ；/; (or nothing, when a line break follows)."""
        r = self.rng
        if line and r.random() < 0.15:
            return
        self.b.say(r.choices(("。", self.p("semi")), weights=(70, 30))[0] if line else "。")

    def procedure(self, count: int) -> None:
        r = self.rng
        phrases = r.sample(V.PROCEDURE, count)
        dominance = [p for p in phrases if "优势" in p or "均衡" in p]
        self.dominance_said |= bool(dominance)
        for phrase in [p for p in phrases if p not in dominance[1:]]:  # one dominance at most
            self.b.say(self.typo(phrase.format(colon=self.p("colon"), comma=self.p("comma"),
                                               ml=r.randrange(40, 200, 10),
                                               units=r.choice((2000, 3000)))))
            self.b.say("。")

    def preamble(self) -> None:
        r = self.rng
        if r.random() < 0.5:
            self.b.say(r.choice(V.HEADERS) + "\n")
        if r.random() < 0.4:
            sex = r.choice(("男", "女"))
            self.b.say(V.PATIENT.format(sex_label="性别", colon=self.p("colon"), sex=sex,
                                        age=r.randint(38, 86), mrn=r.randint(100000, 999999)))
            self.b.say("\n")
        if r.random() < 0.4:
            self.b.say("患者" + r.choice(V.INDICATIONS).format(n=r.randint(1, 12)) + "。\n")
        self.procedure(r.randint(1, 4))
        self.b.say("\n")

    def follow_up(self) -> Vessel:
        """患者2年前于前降支近段植入支架1枚: the stent history; returns the stented vessel."""
        r = self.rng
        main, _ = r.choice(V.MAIN_VESSELS[1:])
        self.compared = True
        self.b.say(r.choice(V.FOLLOW_UP).format(n=r.randint(1, 5)))
        self.locations(self.one(main))
        self.b.say(f"植入支架{r.choice(('1', '1', '2'))}枚" + self.p("comma") + "此次复查造影"
                   + self.p("colon"))
        return main

    def sections(self, stented: Vessel | None = None) -> None:
        """One line per vessel: 左主干：未见明显狭窄。"""
        r = self.rng
        self.b.say(r.choice(V.SECTION_TITLES) + self.p("colon") + "\n")
        for index, (main, branches) in enumerate(V.MAIN_VESSELS):
            self.item()
            group = self.one(main)
            self.b.say(self.p("colon"))
            healthy = index == 0 and r.random() < 0.8  # the left main is mostly spared
            if main is stented:
                self._stent(group, [])
            else:
                self.finding(group, healthy=healthy)
            for _ in range(0 if healthy else r.choice((0, 0, 1, 2, 3))):
                self.b.say(self.p("comma"))
                if branches and r.random() < 0.5:
                    self.finding(self.vessels(r.choice(branches), coordinate=False))
                elif r.random() < 0.15:
                    self.bystander()
                else:
                    self.finding(group)
            self.end(line=True)
            self.b.say("\n")
            if index == 2 and r.random() < 0.1:  # a ramus intermedius, when the patient has one
                self.item()
                self.finding(self.vessels(V.RAMUS, coordinate=False))
                self.end(line=True)
                self.b.say("\n")

    def systems(self) -> None:
        """左冠状动脉：/右冠状动脉： headings on their own line, one item per vessel below."""
        r = self.rng
        for system, mains in ((V.LEFT_SYSTEM, V.MAIN_VESSELS[:3]),
                              (V.RIGHT_SYSTEM, V.MAIN_VESSELS[3:])):
            self.b.mark(V.BODY_PART, r.choice(system.chinese))
            self.b.say(self.p("colon") + "\n")
            self.items = 0
            for main, branches in mains:
                if system is V.RIGHT_SYSTEM and r.random() < 0.4:
                    for _ in range(r.choice((1, 2))):  # items that only name segments
                        self.item()
                        self.finding_without_vessel()
                        self.end(line=True)
                        self.b.say("\n")
                    continue
                self.item()
                self.finding(self.vessels(main, coordinate=False))
                if branches and r.random() < 0.4:
                    self.b.say(self.p("comma"))
                    self.finding(self.vessels(r.choice(branches), coordinate=False))
                self.end(line=True)
                self.b.say("\n")

    def narrative(self, stented: Vessel | None = None) -> None:
        """A paragraph: clauses joined by commas, sentences by 。 or ；; long multi-vessel ones."""
        r = self.rng
        if r.random() < 0.5:
            self.b.say(r.choice(V.NARRATIVE_OPENINGS) + self.p("colon"))
            if not self.dominance_said and r.random() < 0.4:
                self.b.say("冠状动脉呈" + r.choice(("右优势型", "左优势型", "均衡型"))
                           + self.p("comma"))
        if stented is not None:
            self._stent(self.one(stented), [])
            self.b.say(self.p("comma"))
        subjects = self.narrative_subjects()
        first = True
        while subjects:
            for clause in range(min(len(subjects), r.choice((1, 2, 2, 3, 3, 4, 5, 6)))):
                if clause:
                    self.b.say(self.p("comma"))
                if clause and r.random() < 0.08:
                    self.bystander()
                    self.b.say(self.p("comma"))
                vessel = subjects.pop(0)
                healthy = vessel is V.LEFT_MAIN and r.random() < 0.7
                self.finding(self.vessels(vessel), healthy=healthy or (first and r.random() < 0.2))
                first = False
            self.b.say(r.choices(("。", self.p("semi")), weights=(60, 40))[0])
        self.b.say("\n")

    def narrative_subjects(self) -> list[Vessel]:
        """The vessels a paragraph talks about: mostly in report order (LM, LAD, LCX, RCA, each
        perhaps followed by a branch), sometimes in any order, sometimes only a few."""
        r = self.rng
        subjects: list[Vessel] = []
        for main, branches in V.MAIN_VESSELS:
            if r.random() < 0.85:
                subjects.append(main)
            while branches and r.random() < 0.3:
                subjects.append(r.choice(branches))
            if main.territory == "LCX" and r.random() < 0.05:
                subjects.append(V.RAMUS)
        if r.random() < 0.3:
            r.shuffle(subjects)
        if r.random() < 0.2:
            subjects = subjects[: r.randint(1, 3)]
        return subjects or [self.pick_vessel()]

    def terse(self) -> None:
        """Terse notes: `LAD: 近段80%狭窄, 中段肌桥.` one line per vessel, half-width marks."""
        r = self.rng
        self.b.say(r.choice(V.TERSE_HEADS) + " " + r.choice(V.TERSE_DOMINANCE) + ".\n")
        bullet = r.choice(("", "", "- "))
        for index, (main, branches) in enumerate(V.MAIN_VESSELS):
            self.b.say(bullet)
            group = self.one(main)
            self.b.say(r.choice((": ", ": ", " ")))
            if index == 0 and r.random() < 0.4:
                self.b.say(r.choice(V.TERSE_NORMAL))
            else:
                self.finding(group, healthy=index == 0 and r.random() < 0.7)
            if branches and r.random() < 0.35:
                self.b.say(", ")
                branch = r.choice(branches)
                if r.random() < 0.3:  # `D1 70%`: a percentage written with no lesion word
                    self.b.mark(V.BODY_PART, self.name(branch))
                    self.b.say(" ")
                    self.quantifier(about=False)
                else:
                    self.finding(self.vessels(branch, coordinate=False))
            if main.territory == "RCA" and r.random() < 0.25:
                self.b.say(", " + r.choice(("dominant", "优势型", "non-dominant")))
            self.b.say(r.choice((".", "", ";")) + "\n")

    def pci(self) -> None:
        """The treatment paragraph: a vessel and segment where the stent went, no residue."""
        r = self.rng
        target = self.lesions[0].vessel if self.lesions else V.MAIN_VESSELS[1][0]
        self.b.say(r.choice(("PCI过程", "处理", "PCI")) + self.p("colon"))
        self.b.say(r.choice(("送导丝至", "以导丝通过病变至")))
        group = self.one(target)
        location_id = self.b.mark(V.LOCATION, self.location_word("远段"))
        for vessel_id in group.ids:
            self.b.relate(vessel_id, location_id)
        self.b.say(self.p("comma") + "于")
        location_id = self.b.mark(V.LOCATION, self.location_word(r.choice(("近段", "中段"))))
        for vessel_id in group.ids:
            self.b.relate(vessel_id, location_id)
        self.b.say(f"植入{r.choice(V.STENT_SIZES)}支架1枚" + self.p("comma") + "复查")
        negation_id = self.b.mark(V.NEGATION, r.choice(("无", "未见")))
        self.b.say("残余")
        self.b.relate(self.degree("狭窄", group.ids), negation_id)
        self.b.say(self.p("comma") + V.TIMI.format(grade=3) + "。\n")

    def conclusion(self) -> None:
        r = self.rng
        self.b.say(r.choice(V.CONCLUSION_HEADS) + self.p("colon"))
        if not self.lesions:
            self.b.say(r.choice(V.NORMAL_CONCLUSIONS) + "。\n")
            return
        self.b.say(r.choice(V.DISEASES))
        territories = {lesion.vessel.territory for lesion in self.lesions} - {None}
        if r.random() < 0.5 and 1 <= len(territories) <= 3:
            self.b.say(self.p("comma") + V.DISEASE_TAILS[len(territories) - 1])
            if r.random() < 0.4:  # （累及前降支、右冠）: vessels named, no finding related
                self.b.say(self.p("open") + "累及")
                named = sorted(territories)
                for k, territory in enumerate(named):
                    if k:
                        self.b.say("、")
                    main = next(m for m, _ in V.MAIN_VESSELS if m.territory == territory)
                    self.b.mark(V.BODY_PART, self.name(main))
                self.b.say(self.p("close") + "。\n")
                self._advice()
                return
        self.b.say(self.p("comma"))
        for k, lesion in enumerate(self.lesions[:4]):
            if k:
                self.b.say(self.p("comma"))
            vessel_id = self.b.mark(V.BODY_PART, lesion.name)
            if lesion.location:
                self.b.relate(vessel_id, self.b.mark(V.LOCATION, lesion.location))
            degree_id = self.degree(lesion.degree, [vessel_id])
            if lesion.quantifier and r.random() < 0.5:
                self.b.relate(degree_id, self.b.mark(V.QUANTIFIER, lesion.quantifier))
        self.b.say("。\n")
        self._advice()

    def _advice(self) -> None:
        if self.rng.random() < 0.7:
            self.b.say(self.typo(self.rng.choice(V.ADVICE)) + "。\n")


def report_id(index: int, prefix: str = "rpt") -> str:
    return f"{prefix}-{index:06d}"


def generate_report(index: int, seed: int, annotated: bool = True, prefix: str = "rpt",
                    schema: Schema | None = None) -> Document:
    """Report `index` of corpus `seed`: the same document however many others are generated."""
    # A string seed is hashed (SHA-512) by random.Random: stable across runs and processes, and
    # unlike seed + index, seeds 7 and 8 do not share reports.
    rng = random.Random(f"angio-kg:{seed}:{index}")
    layout = rng.choices(("sections", "systems", "narrative", "terse", "short"),
                         weights=(34, 10, 32, 10, 14))[0]
    habits = _Habits.draw(rng, layout)
    punct = _Punct(rng, "half" if layout == "terse" else None)
    builder = _Builder(report_id(index, prefix), schema or _bundled_schema(), habits.full_width)
    writer = _Writer(rng, builder, habits, punct)
    stented = None
    if layout in ("sections", "narrative") and rng.random() < 0.12:
        stented = writer.follow_up()
        builder.say("\n")
    elif layout not in ("short", "terse"):
        writer.preamble()
    if layout == "sections":
        writer.sections(stented)
    elif layout == "systems":
        writer.systems()
    elif layout == "terse":
        writer.terse()
    else:
        writer.narrative(stented)
    if layout != "short" and writer.lesions and rng.random() < 0.12:
        writer.pci()
    writer.conclusion()
    return builder.document(annotated)


_SCHEMA: list[Schema] = []


def _bundled_schema() -> Schema:
    if not _SCHEMA:
        _SCHEMA.append(load_schema())
    return _SCHEMA[0]


def check_vocabulary(schema: Schema) -> None:
    """Fail before writing anything if the schema no longer has the generator's types, or no
    longer names one relation for each pair of types the generator relates."""
    missing = [t for t in (V.BODY_PART, V.LOCATION, V.DEGREE, V.QUANTIFIER, V.NEGATION)
               if t not in schema.entity_types]
    for arg1, arg2 in V.RELATED_TYPES:
        if schema.relation_from(arg1, arg2) is None:
            missing.append(f"one relation {arg1}->{arg2}")
    if missing:
        raise ValueError(
            f"the schema lacks what the generator writes: {', '.join(missing)}; "
            "update ingest/generator_vocab.py to the new annotation.conf"
        )


def generate_corpus(
    n: int,
    seed: int,
    out_dir: str | Path,
    annotated: bool = True,
    *,
    prefix: str = "rpt",
    start: int = 0,
    schema: Schema | None = None,
) -> int:
    """Write reports `start .. start+n-1` as brat files (`.txt` only when not annotated)."""
    schema = schema or load_schema()
    check_vocabulary(schema)
    for index in range(start, start + n):
        write_document(generate_report(index, seed, annotated, prefix, schema), out_dir,
                       with_ann=annotated)
    return n
