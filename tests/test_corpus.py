"""Corpus loading: one bad report of each kind is quarantined with a finding naming its file
(and line), and the good reports beside it are still loaded."""

import json

import pytest

from flows.cli import main
from ingest.corpus import (
    QUARANTINED,
    VALID,
    CorpusInvalid,
    iter_corpus,
    load_corpus,
    quarantine,
)
from ingest.schema import load_schema

SCHEMA = load_schema()
GOOD_TXT = "前降支近段狭窄70%。"
GOOD_ANN = "T1\tBodyPart 0 3\t前降支\nT2\tDegree 5 7\t狭窄\nR1\tModifier Arg1:T2 Arg2:T1\n"


def make_corpus(root, bad: dict[str, bytes]):
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "good.txt").write_bytes(GOOD_TXT.encode())
    (root / "sub" / "good.ann").write_bytes(GOOD_ANN.encode())
    (root / "plain.txt").write_bytes("回旋支未见狭窄。".encode())
    for name, data in bad.items():
        (root / name).write_bytes(data)
    return root


def load_with(tmp_path, bad):
    load = load_corpus(make_corpus(tmp_path / "c", bad), SCHEMA)
    by_id = {r.report_id: r for r in load.reports}
    assert by_id["sub/good"].status == VALID and by_id["sub/good"].document is not None
    assert by_id["plain"].status == VALID and by_id["plain"].document.annotated is False
    return load, by_id


def one_finding(report, code):
    found = [f for f in report.findings if f.code == code]
    assert found, report.findings
    return found[0]


ann_line_cases = {
    "malformed T line": (b"T1\tBodyPart 0 x\t\xe5\x89\x8d\n", "bad-offsets", 1),
    "malformed R line": (GOOD_ANN.encode() + b"R2\tModifier Arg1:T2\n", "bad-relation", 4),
    "malformed E line": (GOOD_ANN.encode() + b"E1\tProcess\n", "bad-event", 4),
    "malformed A line": (GOOD_ANN.encode() + b"A1\tX\n", "bad-attribute", 4),
    "malformed M line": (GOOD_ANN.encode() + b"M1\tX\n", "bad-attribute", 4),
    "malformed N line": (GOOD_ANN.encode() + b"N1\tReference T1\tx\n", "bad-normalization", 4),
    "malformed # line": (GOOD_ANN.encode() + b"#1\tAnnotatorNotes\tx\n", "bad-note", 4),
    "malformed * line": (GOOD_ANN.encode() + b"*\tEquiv T1\n", "bad-equivalence", 4),
    "unknown line kind": (GOOD_ANN.encode() + b"Q1\tX\n", "unknown-line-kind", 4),
    "line without tab": (b"T1 BodyPart 0 3\n", "missing-tab", 1),
    "offsets beyond text": (b"T1\tBodyPart 0 30\tx\n", "offset-out-of-range", 1),
    "text differs": ("T1\tBodyPart 0 3\t回旋支\n".encode(), "text-mismatch", 1),
}


@pytest.mark.parametrize("case", sorted(ann_line_cases))
def test_bad_ann_line_quarantines_that_report_with_file_and_line(tmp_path, case):
    ann, code, line = ann_line_cases[case]
    load, by_id = load_with(tmp_path, {"bad.txt": GOOD_TXT.encode(), "bad.ann": ann})
    bad = by_id["bad"]
    assert bad.status == QUARANTINED and bad.document is None
    finding = one_finding(bad, code)
    assert finding.path.endswith("bad.ann") and finding.line == line
    assert len(load.valid) == 2


@pytest.mark.parametrize(("data", "code"), [
    ("前降支狭窄".encode("utf-16"), "utf16"),
    ("LAD 70%".encode("utf-16-le"), "binary"),
    ("前降支狭窄".encode("utf-16-le"), "undecodable"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    (b"ok\n\xfd\x80\x81\xff", "undecodable"),
])
def test_utf16_and_binary_reports_are_refused(tmp_path, data, code):
    load, by_id = load_with(tmp_path, {"bad.txt": data, "bad.ann": b""})
    finding = one_finding(by_id["bad"], code)
    assert finding.path.endswith("bad.txt") and finding.is_error
    assert by_id["bad"].status == QUARANTINED


def test_gb18030_report_is_read_with_a_warning(tmp_path):
    _, by_id = load_with(tmp_path, {"gb.txt": GOOD_TXT.encode("gb18030"),
                                    "gb.ann": GOOD_ANN.encode()})
    report = by_id["gb"]
    assert report.status == VALID and report.document.text == GOOD_TXT
    finding = one_finding(report, "gb18030")
    assert finding.severity == "warning" and finding.path.endswith("gb.txt") and finding.line == 1


def test_bom_is_kept_as_character_zero_as_brat_counts_it(tmp_path):
    ann = "T1\tBodyPart 1 4\t前降支\n"  # offsets written by brat count the U+FEFF
    _, by_id = load_with(tmp_path, {"bom.txt": b"\xef\xbb\xbf" + GOOD_TXT.encode(),
                                    "bom.ann": b"\xef\xbb\xbf" + ann.encode()})
    report = by_id["bom"]
    assert report.status == VALID, report.findings
    assert report.document.text[0] == "\ufeff" and report.document.entities[0].text == "前降支"
    assert one_finding(report, "bom").severity == "warning"


def test_crlf_report_keeps_carriage_returns_in_offsets(tmp_path):
    text = "左主干未见狭窄。\r\n右冠中段闭塞。\r\n"
    ann = "T1\tBodyPart 10 12\t右冠\nT2\tDegree 14 16\t闭塞\nR1\tModifier Arg1:T2 Arg2:T1\n"
    _, by_id = load_with(tmp_path, {"crlf.txt": text.encode(), "crlf.ann": ann.encode()})
    report = by_id["crlf"]
    assert report.status == VALID and report.findings == ()
    assert report.document.text == text


def test_empty_txt_is_an_empty_report_error(tmp_path):
    _, by_id = load_with(tmp_path, {"empty.txt": b"", "empty.ann": b""})
    finding = one_finding(by_id["empty"], "empty-report")
    assert finding.path.endswith("empty.txt") and by_id["empty"].status == QUARANTINED


def test_empty_ann_is_a_report_without_annotations(tmp_path):
    _, by_id = load_with(tmp_path, {"noann.txt": GOOD_TXT.encode(), "noann.ann": b""})
    report = by_id["noann"]
    assert report.status == VALID and report.document.annotated
    assert report.document.entities == () and report.findings == ()


def test_ann_without_txt_is_quarantined_under_its_own_id(tmp_path):
    load, by_id = load_with(tmp_path, {"orphan.ann": GOOD_ANN.encode()})
    report = by_id["orphan"]
    assert report.status == QUARANTINED and report.txt_path is None
    assert one_finding(report, "missing-txt").path.endswith("orphan.ann")
    assert len(load.reports) == 3


def test_too_large_report_is_quarantined(tmp_path):
    root = make_corpus(tmp_path / "c", {"big.txt": "狭窄。".encode() * 1000})
    by_id = {r.report_id: r for r in iter_corpus(root, SCHEMA, max_bytes=5000)}
    assert one_finding(by_id["big"], "too-large").path.endswith("big.txt")
    assert by_id["sub/good"].status == VALID


def test_strict_policy_raises_with_every_error_listed(tmp_path):
    root = make_corpus(tmp_path / "c", {"bad.txt": GOOD_TXT.encode(),
                                        "bad.ann": b"T1\tBodyPart 0 30\tx\n"})
    with pytest.raises(CorpusInvalid, match=r"bad\.ann:1: error offset-out-of-range"):
        load_corpus(root, SCHEMA, policy="strict")


def test_warnings_alone_pass_strict(tmp_path):
    root = make_corpus(tmp_path / "c", {"gb.txt": GOOD_TXT.encode("gb18030")})
    assert len(load_corpus(root, SCHEMA, policy="strict").valid) == 3


def test_quarantine_copies_files_byte_for_byte_with_findings(tmp_path):
    bad_ann = b"T1\tBodyPart 0 30\tx\n"
    root = make_corpus(tmp_path / "c", {"bad.txt": GOOD_TXT.encode(), "bad.ann": bad_ann,
                                        "orphan.ann": bad_ann})
    load = load_corpus(root, SCHEMA)
    copied = quarantine(load.reports, tmp_path / "q")
    assert sorted(p.name for p in copied) == ["bad.ann", "bad.txt", "orphan.ann"]
    assert (tmp_path / "q" / "bad.ann").read_bytes() == bad_ann
    index = json.loads((tmp_path / "q" / "findings.json").read_text("utf-8"))
    assert [r["report_id"] for r in index["reports"]] == ["bad", "orphan"]
    assert index["reports"][0]["findings"][0]["line"] == 1


def test_a_fixed_report_leaves_the_quarantine_listing_and_others_stay(tmp_path):
    bad_ann = b"T1\tBodyPart 0 30\tx\n"
    root = make_corpus(tmp_path / "c", {"bad.txt": GOOD_TXT.encode(), "bad.ann": bad_ann})
    (root / "sub" / "worse.txt").write_bytes(GOOD_TXT.encode())
    (root / "sub" / "worse.ann").write_bytes(bad_ann)
    q = tmp_path / "q"
    quarantine(load_corpus(root, SCHEMA).reports, q)
    (tmp_path / "elsewhere").mkdir()  # a run over another corpus adds to the same listing
    (tmp_path / "elsewhere" / "other.ann").write_bytes(bad_ann)
    quarantine(load_corpus(tmp_path / "elsewhere", SCHEMA).reports, q)

    def listed():
        return [r["report_id"] for r in json.loads((q / "findings.json").read_text())["reports"]]

    assert listed() == ["bad", "other", "sub/worse"]
    (root / "bad.ann").write_bytes(GOOD_ANN.encode())  # the annotator fixes two of them
    (root / "sub" / "worse.ann").write_bytes(GOOD_ANN.encode())
    assert main(["validate", str(root), "--quarantine", str(q)]) == 0
    assert listed() == ["other"]
    assert sorted(p.relative_to(q).as_posix() for p in q.rglob("*")) == ["findings.json",
                                                                         "other.ann"]


def test_cli_prints_findings_and_summary_and_writes_json(tmp_path, capsys):
    root = make_corpus(tmp_path / "c", {"bad.txt": GOOD_TXT.encode(),
                                        "bad.ann": b"T1\tBodyPart 0 30\tx\n"})
    out = tmp_path / "v.json"
    assert main(["validate", str(root), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "bad.ann:1: error offset-out-of-range" in printed
    assert "3 reports read, 2 valid, 1 quarantined" in printed
    data = json.loads(out.read_text("utf-8"))
    assert {r["report_id"]: r["status"] for r in data["reports"]} == {
        "bad": "quarantined", "plain": "valid", "sub/good": "valid"}
    assert main(["validate", str(root), "--strict"]) == 1


def test_cli_exit_codes_for_nothing_readable_and_clean_strict(tmp_path):
    (tmp_path / "empty").mkdir()
    assert main(["validate", str(tmp_path / "empty")]) == 1
    assert main(["validate", str(tmp_path / "missing")]) == 2
    assert main(["validate", str(make_corpus(tmp_path / "c", {})), "--strict"]) == 0


def test_a_blank_txt_is_an_empty_report_as_in_an_archive(tmp_path):
    _, by_id = load_with(tmp_path, {"blank.txt": b" \r\n\n", "blank.ann": b""})
    assert one_finding(by_id["blank"], "empty-report").path.endswith("blank.txt")
    assert by_id["blank"].status == QUARANTINED
