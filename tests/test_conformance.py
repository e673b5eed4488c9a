"""Real brat files written by others (../shared/brat-conformance, see its FEATURES.md): every
file is read without an exception and every annotation line is kept."""

from collections import Counter
from pathlib import Path

import pytest

from ingest.brat_reader import parse_ann
from ingest.corpus import VALID, load_corpus
from ingest.document import Span
from ingest.encoding import decode_bytes
from ingest.schema import load_schema

CONFORMANCE = Path(__file__).resolve().parents[1].parent / "shared" / "brat-conformance"
pytestmark = pytest.mark.skipif(
    not CONFORMANCE.is_dir(),
    reason=f"{CONFORMANCE} is absent: clone the shared/ folder beside the repository",
)


def kind_counts(folder: Path) -> tuple[Counter, int, int]:
    counts: Counter = Counter()
    files = empty = 0
    for path in sorted(folder.rglob("*.ann")):
        files += 1
        decoded = decode_bytes(path.read_bytes(), str(path), keep_bom=False)
        assert decoded.text is not None, decoded.findings
        empty += decoded.text == ""
        parsed = parse_ann(decoded.text, str(path))
        assert parsed.findings == (), parsed.findings[:3]
        counts["T"] += len(parsed.entities)
        counts["R"] += len(parsed.relations)
        counts.update(o.kind for o in parsed.others)
    return counts, files, empty


def test_brat_example_data_counts_match_features_md():
    counts, files, empty = kind_counts(CONFORMANCE / "brat-example-data")
    assert (files, empty) == (172, 10)
    assert dict(counts) == {"T": 9664, "R": 5786, "E": 700, "A": 3752, "M": 50, "#": 1173,
                            "*": 92, "N": 1}


def test_every_conformance_report_is_loaded_without_an_exception():
    load = load_corpus(CONFORMANCE, load_schema())
    assert len(load.reports) == 172 + 2
    assert all(r.txt_path and r.ann_path for r in load.reports)
    # our schema knows none of brat's example types: reports are quarantined, not crashed on
    assert len(load.valid) + len(load.quarantined) == len(load.reports)
    assert {f.code for f in load.findings} >= {"unknown-entity-type", "unknown-relation-type"}


def test_spec_examples_features_are_read_as_brat_means_them():
    root = CONFORMANCE / "spec-examples"
    parsed = parse_ann((root / "discontinuous_and_notes.ann").read_text("utf-8"))
    t6 = next(e for e in parsed.entities if e.id == "T6")
    assert t6.spans == (Span(0, 3), Span(7, 9)) and t6.text == "前降支 近段"
    text = (root / "discontinuous_and_notes.txt").read_text("utf-8")
    assert " ".join(text[s.start:s.end] for s in t6.spans) == t6.text
    others = {o.id: o.fields for o in parsed.others}
    assert others["#1"] == ("AnnotatorNotes R2", "coordination: one Degree, two vessels")
    assert others["A1"] == ("Uncertain T4",) and others["A2"] == ("Severity T4 Moderate",)
    assert others["N1"] == ("Reference T1 UMLS:C0226032", "前降支")


def test_crlf_report_offsets_count_carriage_returns():
    load = load_corpus(CONFORMANCE / "spec-examples", load_schema())
    crlf = next(r for r in load.reports if r.report_id == "crlf_text")
    assert crlf.status == VALID and crlf.findings == ()
    doc = crlf.document
    assert "\r\n" in doc.text
    assert all(doc.text[e.start:e.end] == e.text for e in doc.entities)
