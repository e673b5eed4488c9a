"""The coronary tree tables: the contract's spellings, segments and rules, and the generator's
vocabulary, all covered by the data files."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from ingest import coronary
from ingest import generator_vocab as V
from ingest.coronary import CoronaryTableError, Place, default_tree, load_tree
from ingest.corpus import load_corpus
from ingest.generator import generate_report
from ingest.records import unmapped_spellings
from ingest.schema import load_schema

TREE = default_tree()
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "annotated"

# Every spelling ../shared/schema/coronary-tree.md names, with the id it gives.
CONTRACT_ARTERIES = {
    "LM": "LM", "LAD": "LAD", "LCX": "LCX", "LCx": "LCX", "RCA": "RCA", "D1": "D1", "D2": "D2",
    "OM1": "OM1", "OM2": "OM2", "RI": "RI", "PDA": "PDA", "PLV": "PLB", "PL": "PLB",
    "PLB": "PLB", "右冠": "RCA", "右冠脉": "RCA", "右冠状动脉": "RCA", "前降支": "LAD",
    "左前降支": "LAD", "回旋支": "LCX", "左回旋支": "LCX", "左主干": "LM", "左冠状动脉主干": "LM",
    "对角支": "D1", "钝缘支": "OM1", "后降支": "PDA", "左室后支": "PLB", "后侧支": "PLB",
    "中间支": "RI", "第一对角支": "D1", "第二对角支": "D2", "第一钝缘支": "OM1",
    "第二钝缘支": "OM2", "间隔支": "SEPTAL", "锐缘支": "AM", "圆锥支": "CONUS",
    "窦房结支": "SAN", "左冠状动脉": "LCA", "左冠": "LCA",
}
CONTRACT_LOCATIONS = {
    "开口": {"ostium"}, "近段": {"proximal"}, "近端": {"proximal"}, "中段": {"mid"},
    "远段": {"distal"}, "远端": {"distal"}, "末端": {"distal"}, "近中段": {"proximal", "mid"},
    "中远段": {"mid", "distal"},
}


@pytest.mark.parametrize(("spelling", "artery"), sorted(CONTRACT_ARTERIES.items()))
def test_every_artery_spelling_of_the_contract_maps(spelling, artery):
    assert TREE.artery(spelling) == artery


@pytest.mark.parametrize(("spelling", "positions"), sorted(CONTRACT_LOCATIONS.items()))
def test_every_location_spelling_of_the_contract_maps(spelling, positions):
    assert TREE.place(spelling) == Place(frozenset(positions))


def test_whole_and_bifurcation_are_known_places():
    assert TREE.place("全程") == Place(whole=True)
    assert TREE.place("分叉处") == Place()  # known, names no segment: not "unmapped"


def test_segments_are_the_syntax_table():
    table = {s.id: (s.artery, s.dominance) for s in TREE.segments}
    assert table == {
        "1": ("RCA", None), "2": ("RCA", None), "3": ("RCA", None), "4": ("PDA", "right"),
        "16": ("PLB", "right"), "5": ("LM", None), "6": ("LAD", None), "7": ("LAD", None),
        "8": ("LAD", None), "9": ("D1", None), "10": ("D2", None), "11": ("LCX", None),
        "12": ("RI", None), "12a": ("OM1", None), "12b": ("OM2", None), "13": ("LCX", None),
        "14": ("PLB", "left"), "15": ("PDA", "left"),
    }
    assert [s.id for s in TREE.segments][10:15] == ["11", "12", "12a", "12b", "13"]
    assert set(TREE.arteries) == {"LM", "LAD", "D1", "D2", "LCX", "OM1", "OM2", "RI", "RCA",
                                  "PDA", "PLB", "SEPTAL", "AM", "CONUS", "SAN", "LCA"}


@pytest.mark.parametrize(("artery", "dominance", "territory"), [
    ("LM", "right", "LM"), ("D2", "right", "LAD"), ("SEPTAL", "left", "LAD"),
    ("RI", "right", "LCX"), ("OM2", "right", "LCX"), ("CONUS", "left", "RCA"),
    ("SAN", "right", "RCA"), ("AM", "right", "RCA"), ("PDA", "right", "RCA"),
    ("PLB", "balanced", "RCA"), ("PDA", "left", "LCX"), ("PLB", "left", "LCX"),
    ("LCA", "right", None), (None, "right", None),
])
def test_territories(artery, dominance, territory):
    assert TREE.territory(artery, dominance) == territory


def test_first_stated_dominance_wins_and_none_is_assumed_right():
    assert TREE.dominance("冠脉分布呈左优势型，非右优势") == coronary.Dominance("left", False)
    assert TREE.dominance("右冠优势型") == coronary.Dominance("right", False)
    assert TREE.dominance("造影所见：") == coronary.Dominance("right", True)


def test_spellings_match_full_width_and_any_case():
    assert TREE.artery("ＬＡＤ") == TREE.artery("lad") == TREE.artery(" LAD ") == "LAD"
    assert TREE.artery("前降") is None  # not in the table: never guessed from a prefix


def _strings(value: object):
    """Every string inside a vocabulary constant (tuples, dicts, dataclasses, nested)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, tuple | list | set | frozenset):
        for item in value:
            yield from _strings(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _strings(getattr(value, f.name))


def generator_spellings() -> tuple[set[str], set[str]]:
    """The vessel and location spellings of ingest/generator_vocab.py, by constant name, so
    the walk survives a reshaped vocabulary (tuples of names or Vessel records)."""
    vessels: set[str] = set()
    locations: set[str] = set()
    for name, value in vars(V).items():
        if name.startswith("_") or isinstance(value, str | type) or callable(value):
            continue
        if re.search("LOCATION|ENDS_HABIT", name):
            locations |= set(_strings(value))
        elif re.search("VESSEL|SYSTEM|RAMUS|LEFT_MAIN|ABBREVIATION|TERRITORY|BRANCH", name):
            vessels |= set(_strings(value))
    return vessels, locations


def test_the_generator_vocabulary_is_in_the_synonym_table():
    # When the generator learns a new spelling, this test names it: add it to
    # ingest/data/coronary-synonyms.tsv.
    vessels, locations = generator_spellings()
    assert {"左主干", "前降支", "右冠"} <= vessels and {"近段", "全程"} <= locations
    assert sorted(v for v in vessels if TREE.artery(v) is None) == []
    assert sorted(name for name in locations if TREE.place(name) is None) == []


def test_every_spelling_generated_reports_write_is_mapped():
    unmapped: dict = {}
    for index in range(1500):
        for key, n in unmapped_spellings(generate_report(index, seed=11)).items():
            unmapped[key] = unmapped.get(key, 0) + n
    assert unmapped == {}


def test_the_bundled_sample_has_no_unmapped_spelling():
    corpus = load_corpus(SAMPLE, load_schema())
    assert len(corpus.documents) == 300
    found = {key for d in corpus.documents for key in unmapped_spellings(d)}
    assert found == set()


def _data_dir(tmp_path, synonyms_tail: str) -> Path:
    source = Path(coronary.__file__).parent / "data"
    for name in (coronary.ARTERIES_FILE, coronary.SEGMENTS_FILE):
        (tmp_path / name).write_text((source / name).read_text("utf-8"), encoding="utf-8")
    (tmp_path / coronary.SYNONYMS_FILE).write_text(
        (source / coronary.SYNONYMS_FILE).read_text("utf-8") + synonyms_tail, encoding="utf-8")
    return tmp_path


def test_a_user_extends_the_synonym_table(tmp_path):
    extra = "artery\t左冠旋支\tLCX\nlocation\t起始部\tostium\n"
    tree = load_tree(data_dir=_data_dir(tmp_path, extra))
    assert tree.artery("左冠旋支") == "LCX" and TREE.artery("左冠旋支") is None
    assert tree.segment_ids("LCX", tree.place("起始部"), "right") == ("11",)


@pytest.mark.parametrize(("tail", "message"), [
    ("artery\t左冠旋支\tLCXX\n", r"coronary-synonyms.tsv:\d+: 'LCXX' is not an artery id"),
    ("location\t起始部\tbeginning\n", r":\d+: location '起始部': 'beginning' is not"),
    ("artery\t前降支\tLCX\n", r":\d+: artery '前降支' is already given as 'LAD'"),
    ("artery 左冠旋支 LCX\n", r":\d+: expected 3 TAB-separated fields"),
    ("vessel\t左冠旋支\tLCX\n", r":\d+: kind 'vessel' is not one of"),
])
def test_a_bad_line_names_the_file_and_line(tmp_path, tail, message):
    with pytest.raises(CoronaryTableError, match=message):
        load_tree(data_dir=_data_dir(tmp_path, tail))
