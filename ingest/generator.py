"""Synthetic coronary angiography reports, annotated exactly as the guideline says.

A report is built left to right: every entity is marked as its text is appended, so offsets and
recorded text cannot disagree, spans never overlap, and relations are only made between entities
of the clause being written (never across sentences). Report `i` of seed `s` is drawn from its
own `random.Random`, so it is the same report whether 10 or 100,000 are generated.

Layouts: vessel-by-vessel sections (左主干：… one line per vessel), narrative paragraphs, or a
short findings-only report; each with procedure sentences that carry no entity, a conclusion
(结论/诊断) and advice. Punctuation is full-width, half-width, or mixed within a report.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from ingest import generator_vocab as V
from ingest.brat_writer import write_document
from ingest.document import Document, Entity, Relation, Span
from ingest.schema import Schema, load_schema


class _Punct:
    """The report's punctuation habit: full-width, half-width, or a mix of both."""

    FULL = {"colon": "：", "comma": "，", "semi": "；", "pct": "%", "tilde": "~"}
    HALF = {"colon": ":", "comma": ",", "semi": ";", "pct": "%", "tilde": "~"}

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.mode = rng.choices(("full", "half", "mixed"), weights=(70, 12, 18))[0]

    def __call__(self, name: str) -> str:
        full = self.mode == "full" or (self.mode == "mixed" and self.rng.random() < 0.6)
        if name == "pct":  # reports type the full-width ％ now and then whatever else they use
            return "％" if self.rng.random() < 0.12 else "%"
        if name == "tilde":
            return self.rng.choice(("~", "～"))
        return (self.FULL if full else self.HALF)[name]


@dataclass
class _Builder:
    """Appends text and marks entities and relations as it goes."""

    doc_id: str
    parts: list[str] = field(default_factory=list)
    length: int = 0
    entities: list[Entity] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    def mark(self, entity_type: str, text: str) -> str:
        entity_id = f"T{len(self.entities) + 1}"
        span = Span(self.length, self.length + len(text))
        self.entities.append(Entity(entity_id, entity_type, (span,), text))
        self.say(text)
        return entity_id

    def relate(self, relation_type: str, arg1: str, arg2: str) -> None:
        self.relations.append(Relation(f"R{len(self.relations) + 1}", relation_type, arg1, arg2))

    def document(self, annotated: bool) -> Document:
        text = "".join(self.parts)
        if not annotated:
            return Document(self.doc_id, text, annotated=False)
        return Document(self.doc_id, text, tuple(self.entities), tuple(self.relations))


@dataclass(frozen=True)
class _Lesion:
    """A significant finding, remembered for the conclusion."""

    vessel: str
    location: str | None
    degree: str
    quantifier: str | None


class _Writer:
    """The grammar: one method per kind of phrase."""

    def __init__(self, rng: random.Random, builder: _Builder) -> None:
        self.rng = rng
        self.b = builder
        self.p = _Punct(rng)
        self.lesions: list[_Lesion] = []
        self.severity = rng.random()  # how diseased this patient is

    # --- entity phrases ------------------------------------------------------------------

    def quantifier(self, degree: str = "狭窄") -> tuple[str, str, int]:
        """Say (约) and mark a Quantifier fit for `degree` (重度 is 70% or more); return its id,
        its text and its main value."""
        r, pct = self.rng, self.p("pct")
        low, high = V.SEVERITY_RANGE.get(degree, (30, 99))
        value = r.choice([v for v in V.PERCENT_VALUES if low <= v <= high])
        form = r.choices(("plain", "about", "range", "above", "around"),
                         weights=(40, 18, 22, 10, 10))[0]
        if form == "range" and value <= 90:
            high = min(value + r.choice((10, 20)) if value < 80 else value + 5, 99)
            sep = r.choice(("-", self.p("tilde"), "-"))
            first = f"{value}{pct}" if r.random() < 0.7 else str(value)
            text = f"{first}{sep}{high}{pct}"
        elif form == "above" and value >= 70:
            text = f"{value}{pct}以上"
        elif form == "around":
            self.b.say("约")  # 约 is never part of the Quantifier
            text = f"{value}{pct}左右"
        else:
            if form == "about":
                self.b.say("约")
            text = f"{value}{pct}"
        return self.b.mark(V.QUANTIFIER, text), text, value

    def vessels(self, main: str | None = None, coordinate: bool = True) -> list[tuple[str, str]]:
        """Mark one vessel, or two or three coordinated ones; return (id, text) pairs."""
        r = self.rng
        if main is None:
            spellings, branches = r.choice(V.MAIN_VESSELS)
            main = r.choice(spellings + branches + V.EXTRA_VESSELS)
        names = [main]
        if coordinate and r.random() < 0.18:
            others = [s[0] for s, _ in V.MAIN_VESSELS] + ["第一对角支", "钝缘支", "后降支"]
            names += r.sample([o for o in others if o not in main and main not in o],
                              r.choice((1, 1, 2)))
        marked = []
        for k, name in enumerate(names):
            if k:
                self.b.say(r.choice(V.COORDINATORS))
            marked.append((self.b.mark(V.BODY_PART, name), name))
        return marked

    def locations(self, vessel_ids: list[str]) -> list[str]:
        """Maybe mark one or two Locations, each a Position of every vessel; return the texts."""
        r = self.rng
        roll = r.random()
        if roll < 0.3:
            return []
        names = list(r.choice(V.LOCATION_PAIRS)) if roll > 0.9 else [r.choice(V.LOCATIONS)]
        for k, name in enumerate(names):
            if k:
                self.b.say(r.choice(("至", "及", "、", "到")))
            location_id = self.b.mark(V.LOCATION, name)
            for vessel_id in vessel_ids:
                self.b.relate(V.POSITION, vessel_id, location_id)
        return names

    def degree(self, text: str, vessel_ids: list[str]) -> str:
        degree_id = self.b.mark(V.DEGREE, text)
        for vessel_id in vessel_ids:
            self.b.relate(V.MODIFIER, degree_id, vessel_id)
        return degree_id

    # --- clauses -------------------------------------------------------------------------

    def finding(self, vessels: list[tuple[str, str]] | None = None, healthy: bool = False) -> None:
        """One clause about a vessel (group): vessels unless given by a heading, then a lesion."""
        r = self.rng
        if vessels is None:
            vessels = self.vessels()
        ids = [v for v, _ in vessels]
        if healthy or r.random() > 0.35 + 0.6 * self.severity:
            self.negated(ids)
            return
        where = self.locations(ids)
        kind = r.choices(("stenosis", "plain", "plaque", "bridge", "stent"),
                         weights=(50, 24, 14, 5, 7))[0]
        getattr(self, f"_{kind}")(ids, [t for _, t in vessels], where)

    def negated(self, vessel_ids: list[str], degrees: tuple[str, ...] = V.NEGATABLE) -> None:
        r = self.rng
        if r.random() < 0.15:
            self.b.say(r.choice(("管壁光滑", "血流通畅", "走行自然")) + self.p("comma"))
        negation_id = self.b.mark(V.NEGATION, r.choice(V.NEGATIONS))
        if r.random() < 0.7:
            self.b.say("明显")
        degree_id = self.degree(r.choice(degrees), vessel_ids)
        self.b.relate(V.NEGATIVE, degree_id, negation_id)

    def _remember(self, names: list[str], where: list[str], degree: str, q: str | None) -> None:
        for name in names:
            self.lesions.append(_Lesion(name, where[0] if where else None, degree, q))

    def _stenosis(self, ids: list[str], names: list[str], where: list[str]) -> None:
        r = self.rng
        degree = r.choice(V.STENOSIS)
        form = r.choices(("after", "before", "worst", "extent"), weights=(50, 20, 15, 15))[0]
        if form == "before":  # 70%狭窄: Percentage holds in both directions
            q_id, q, value = self.quantifier(degree)
            degree_id = self.degree(degree, ids)
        else:
            if form == "worst":
                self.b.say("最重处")
            degree_id = self.degree(degree, ids)
            if form == "extent":
                self.b.say("程度")
            q_id, q, value = self.quantifier(degree)
        self.b.relate(V.PERCENTAGE, degree_id, q_id)
        if value >= 70:
            self._remember(names, where, degree, q)

    def _plain(self, ids: list[str], names: list[str], where: list[str]) -> None:
        r = self.rng
        degree = r.choice(V.NO_PERCENT)
        if degree.endswith("闭塞") and r.random() < 0.3:
            q_id = self.b.mark(V.QUANTIFIER, f"100{self.p('pct')}")
            self.b.relate(V.PERCENTAGE, self.degree(degree, ids), q_id)
        else:
            self.degree(degree, ids)
        if degree.endswith("闭塞"):
            if r.random() < 0.5:
                self.b.say(self.p("comma") + V.TIMI.format(grade=r.choice((0, 0, 1))))
            self._remember(names, where, degree, None)

    def _plaque(self, ids: list[str], names: list[str], where: list[str]) -> None:
        r = self.rng
        self.degree(r.choice(("斑块", "钙化", "管壁不规则", "弥漫性病变")), ids)
        self.b.say(self.p("comma") + r.choice(("最重处", "", "")))
        degree_id = self.degree("狭窄", ids)
        q_id, q, value = self.quantifier()
        self.b.relate(V.PERCENTAGE, degree_id, q_id)
        if value >= 70:
            self._remember(names, where, "狭窄", q)

    def _bridge(self, ids: list[str], names: list[str], where: list[str]) -> None:
        degree_id = self.degree("心肌桥", ids)
        self.b.say(self.p("comma") + "收缩期压缩")
        self.b.relate(V.PERCENTAGE, degree_id, self.quantifier()[0])

    def _stent(self, ids: list[str], names: list[str], where: list[str]) -> None:
        r = self.rng
        self.b.say("支架内" if r.random() < 0.5 else "原支架内")
        if r.random() < 0.4:
            self.negated(ids, ("再狭窄", "狭窄"))
            return
        degree_id = self.degree("再狭窄", ids)
        self.b.relate(V.PERCENTAGE, degree_id, self.quantifier("再狭窄")[0])

    # --- sentences and sections ----------------------------------------------------------

    def end(self, line: bool = False) -> None:
        """End a sentence: 。 or ；/; (or nothing, when a line break follows)."""
        r = self.rng
        if line and r.random() < 0.15:
            return
        self.b.say(r.choices(("。", self.p("semi")), weights=(70, 30))[0] if line else "。")

    def procedure(self, count: int) -> None:
        r = self.rng
        for phrase in r.sample(V.PROCEDURE, count):
            self.b.say(phrase.format(colon=self.p("colon"), comma=self.p("comma"),
                                     ml=r.randrange(40, 200, 10), units=r.choice((2000, 3000))))
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

    def sections(self) -> None:
        """One line per vessel: 左主干：未见明显狭窄。"""
        r = self.rng
        self.b.say(r.choice(V.SECTION_TITLES) + self.p("colon") + "\n")
        mains = [spellings for spellings, _ in V.MAIN_VESSELS]
        for index, spellings in enumerate(mains):
            main, branches = r.choice(spellings), V.MAIN_VESSELS[index][1]
            vessel = [(self.b.mark(V.BODY_PART, main), main)]
            if r.random() < 0.2 and main in V.ABBREVIATIONS:
                self.b.say(f"({V.ABBREVIATIONS[main]})")
            self.b.say(self.p("colon"))
            healthy = index == 0 and r.random() < 0.8  # the left main is mostly spared
            self.finding(vessel, healthy=healthy)
            for _ in range(0 if healthy else r.choice((0, 0, 1, 2))):
                self.b.say(self.p("comma"))
                if branches and r.random() < 0.5:
                    self.finding(self.vessels(r.choice(branches), coordinate=False))
                else:
                    self.finding(vessel)
            self.end(line=True)
            self.b.say("\n")
            if index == 2 and r.random() < 0.1:  # a ramus intermedius, when the patient has one
                self.finding(self.vessels(V.EXTRA_VESSELS[0], coordinate=False))
                self.end(line=True)
                self.b.say("\n")

    def narrative(self) -> None:
        """A paragraph: clauses joined by commas, sentences by 。 or ；."""
        r = self.rng
        for sentence in range(r.randint(2, 5)):
            for clause in range(r.choice((1, 1, 2, 3))):
                if clause:
                    self.b.say(self.p("comma"))
                self.finding(healthy=sentence == 0 and clause == 0 and r.random() < 0.3)
            self.b.say(r.choices(("。", self.p("semi")), weights=(60, 40))[0])
        self.b.say("\n")

    def conclusion(self) -> None:
        r = self.rng
        self.b.say(r.choice(V.CONCLUSION_HEADS) + self.p("colon"))
        if not self.lesions:
            self.b.say(r.choice(V.NORMAL_CONCLUSIONS) + "。\n")
            return
        self.b.say(r.choice(V.DISEASES))
        territories = {V.TERRITORY.get(lesion.vessel) for lesion in self.lesions} - {None}
        if r.random() < 0.5 and 1 <= len(territories) <= 3:
            self.b.say(self.p("comma") + V.DISEASE_TAILS[len(territories) - 1])
        self.b.say(self.p("comma"))
        for k, lesion in enumerate(self.lesions[:4]):
            if k:
                self.b.say(self.p("comma"))
            vessel_id = self.b.mark(V.BODY_PART, lesion.vessel)
            if lesion.location:
                self.b.relate(V.POSITION, vessel_id, self.b.mark(V.LOCATION, lesion.location))
            degree_id = self.degree(lesion.degree, [vessel_id])
            if lesion.quantifier and r.random() < 0.5:
                self.b.relate(V.PERCENTAGE, degree_id, self.b.mark(V.QUANTIFIER, lesion.quantifier))
        self.b.say("。\n")
        if r.random() < 0.7:
            self.b.say(r.choice(V.ADVICE) + "。\n")


def report_id(index: int, prefix: str = "rpt") -> str:
    return f"{prefix}-{index:06d}"


def generate_report(index: int, seed: int, annotated: bool = True, prefix: str = "rpt") -> Document:
    """Report `index` of corpus `seed`: the same document however many others are generated."""
    # A string seed is hashed (SHA-512) by random.Random: stable across runs and processes, and
    # unlike seed + index, seeds 7 and 8 do not share reports.
    rng = random.Random(f"angio-kg:{seed}:{index}")
    writer = _Writer(rng, _Builder(report_id(index, prefix)))
    layout = rng.choices(("sections", "narrative", "short"), weights=(45, 40, 15))[0]
    if layout != "short":
        writer.preamble()
    writer.sections() if layout == "sections" else writer.narrative()
    writer.conclusion()
    return writer.b.document(annotated)


def check_vocabulary(schema: Schema) -> None:
    """Fail before writing anything if the schema no longer has the generator's types."""
    missing = [t for t in (V.BODY_PART, V.LOCATION, V.DEGREE, V.QUANTIFIER, V.NEGATION)
               if t not in schema.entity_types]
    expected = {V.NEGATIVE: (V.DEGREE, V.NEGATION), V.MODIFIER: (V.DEGREE, V.BODY_PART),
                V.POSITION: (V.BODY_PART, V.LOCATION), V.PERCENTAGE: (V.DEGREE, V.QUANTIFIER)}
    for name, (arg1, arg2) in expected.items():
        relation = schema.relation(name)
        if relation is None or not relation.allows(arg1, arg2):
            missing.append(f"{name}({arg1}->{arg2})")
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
    check_vocabulary(schema or load_schema())
    for index in range(start, start + n):
        write_document(generate_report(index, seed, annotated, prefix), out_dir,
                       with_ann=annotated)
    return n
