"""Inputs are what they claim, by one rule for the corpus reader and every archive reader:
links, special files, names that are not UTF-8, nested archives and linked folders, extensions
in any case, and texts that are no report (empty, invisible, control characters, not a string).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from extraction_fakes import FakeExtractor

from export.parquet_sink import read_dataset
from flows.cli import main
from ingest.archive import ArchiveError, iter_reports, read_reports
from ingest.corpus import QUARANTINED, VALID, iter_corpus, quarantine
from ingest.schema import load_schema
from pipeline.preannotate import preannotate
from pipeline.run import RunSettings, run
from pipeline.sinks import ParquetSink

SCHEMA = load_schema()
TEXT = "前降支近段狭窄70%。回旋支未见明显狭窄。"
ANN = "T1\tBodyPart 0 3\t前降支\nT2\tDegree 5 7\t狭窄\nR1\tModifier Arg1:T2 Arg2:T1\n"
SECRET = "root:x:0:0:SECRET-LINE\n"
READERS = ("corpus", "folder archive")


def outcomes(reader: str, root: Path) -> dict[str, tuple[str | None, str]]:
    """{report id: (text or None, what the reader said about it)} for either reader."""
    if reader == "corpus":
        result = {}
        for r in iter_corpus(root, SCHEMA):
            said = " | ".join(f"{f.code}: {f.format()}" for f in r.findings)
            result[r.report_id] = (r.document.text if r.document else None, said)
        return result
    return {r.report_id: (r.text, r.problem or "") for r in iter_reports(root)}


def finishes(fn, fifos=(), seconds=20.0):
    """fn() run in a thread; fails (and unblocks the thread) if it hangs on one of `fifos`."""
    box = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 (re-raised in the test's thread)
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for fifo in fifos:  # release a reader blocked opening the FIFO, then fail
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        pytest.fail(f"blocked for {seconds} s reading a FIFO")
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.fixture
def hostile(tmp_path):
    """A report folder with one good report and one of each hostile entry."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text(SECRET, encoding="utf-8")
    (outside / "more").mkdir()
    (outside / "more" / "far.txt").write_text(TEXT, encoding="utf-8")
    os.mkfifo(outside / "pipe")
    root = tmp_path / "in"
    (root / "real").mkdir(parents=True)
    (root / "good.txt").write_text(TEXT, encoding="utf-8")
    (root / "real" / "inner.txt").write_text(TEXT, encoding="utf-8")
    (root / "leak.txt").symlink_to(outside / "passwd")
    (root / "leak-fifo.txt").symlink_to(outside / "pipe")
    (root / "dangling.txt").symlink_to(root / "gone.txt")
    (root / "alias.txt").symlink_to(root / "real" / "inner.txt")  # inside: followed
    os.mkfifo(root / "pipe.txt")
    (root / "linked-in").symlink_to(root / "real", target_is_directory=True)
    (root / "linked-out").symlink_to(outside / "more", target_is_directory=True)
    (root / os.fsdecode(b"caf\xe9.txt")).write_text(TEXT, encoding="utf-8")
    with zipfile.ZipFile(root / "nested.zip", "w") as zf:
        zf.writestr("hidden.txt", TEXT)
    with tarfile.open(root / "nested.tar.gz", "w:gz") as tf:
        data = TEXT.encode()
        info = tarfile.TarInfo("hidden.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return root, [outside / "pipe", root / "pipe.txt"]


EXPECTED = {  # id -> what the reason must say (None: read as a report)
    "good": None, "real/inner": None, "alias": None,
    "leak": "link-outside-root", "leak-fifo": "link-outside-root", "dangling": "broken-link",
    "pipe": "not-a-regular-file", "linked-in": "linked-folder", "linked-out": "linked-folder",
    "caf\\xe9": "name-not-utf8", "nested.zip": "nested-archive",
    "nested.tar.gz": "nested-archive",
}


@pytest.mark.parametrize("reader", READERS)
def test_every_hostile_entry_is_refused_with_its_reason_and_nothing_blocks(hostile, reader):
    root, fifos = hostile
    got = finishes(lambda: outcomes(reader, root), fifos)
    assert sorted(got) == sorted(EXPECTED)
    for report_id, code in EXPECTED.items():
        text, said = got[report_id]
        if code is None:
            assert text == TEXT and not said, report_id
        else:
            assert text is None and said, report_id
            assert code in said or code.replace("-", " ") in said or _named(code, said)
    assert all(SECRET.strip() not in said for _, said in got.values())
    assert "outside" in got["leak"][1] and "not followed" in got["leak"][1]
    assert "caf\\xe9" in got["caf\\xe9"][1]  # escaped, printable


def _named(code, said):
    return {"link-outside-root": "outside", "broken-link": "does not exist",
            "not-a-regular-file": "not a regular file", "linked-folder": "linked folder",
            "name-not-utf8": "not UTF-8", "nested-archive": "archive inside"}[code] in said


def test_validate_json_split_and_quarantine_survive_the_hostile_corpus(hostile, tmp_path):
    root, fifos = hostile
    out = tmp_path / "v.json"
    status = finishes(lambda: main(["validate", str(root), "--json", str(out),
                                    "--quarantine", str(tmp_path / "q")]), fifos)
    assert status == 0
    data = json.loads(out.read_text("utf-8"))  # whole, valid JSON with the escaped name
    assert {r["report_id"]: r["status"] for r in data["reports"]} == {
        k: VALID if v is None else QUARANTINED for k, v in EXPECTED.items()}
    copied = {p.relative_to(tmp_path / "q").as_posix() for p in (tmp_path / "q").rglob("*")}
    assert copied == {"findings.json"}  # no target of a refused link, no FIFO, was copied
    assert SECRET.strip() not in (tmp_path / "q" / "findings.json").read_text("utf-8")

    manifest = tmp_path / "splits.csv"
    split = ["split", str(root), "--seed", "1", "--out", str(manifest)]
    assert finishes(lambda: main(split), fifos) == 0
    split_ids = {line.split(",")[0] for line in manifest.read_text("utf-8").splitlines()[1:]}
    assert split_ids == {"good", "real/inner", "alias"}


def test_extract_accounts_for_every_hostile_entry_and_reads_no_outside_file(hostile, tmp_path):
    root, fifos = hostile
    out = tmp_path / "out"
    summary = finishes(lambda: run(root, ParquetSink(out), FakeExtractor(),
                                   RunSettings(run_id="h")), fifos)
    d = summary.to_dict()
    assert (d["inputs"], d["extracted"], d["quarantined"]) == (len(EXPECTED), 3, 9)
    reports = read_dataset(out, "reports").to_pandas().set_index("report_id")
    assert set(reports.index) == set(EXPECTED)
    assert reports.loc["caf\\xe9", "status"] == "quarantined"
    assert "not UTF-8" in reports.loc["caf\\xe9", "reason"]
    assert not read_dataset(out, "entities").to_pandas()["text"].str.contains("SECRET").any()


def test_preannotate_never_copies_a_file_from_outside_its_input(hostile, tmp_path):
    root, fifos = hostile
    out = tmp_path / "pre"
    summary = finishes(lambda: preannotate(FakeExtractor(), root, out), fifos)
    assert summary.written == 3 and len(summary.problems) == 9
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.txt"))
    assert written == ["alias.txt", "good.txt", "real/inner.txt"]
    assert all(SECRET.strip() not in p.read_text("utf-8") for p in out.rglob("*") if p.is_file())


def test_a_folder_reference_read_again_follows_the_same_rule(hostile):
    root, fifos = hostile
    refs = [r.ref for r in iter_reports(root)]
    again = finishes(lambda: read_reports(root, refs), fifos)
    assert [(r.report_id, r.text is None) for r in again] == [
        (ref.report_id, ref.problem is not None) for ref in refs]


@pytest.mark.parametrize("reader", READERS)
def test_a_folder_that_cannot_be_listed_is_named_not_skipped(tmp_path, monkeypatch, reader):
    root = tmp_path / "in"
    (root / "locked").mkdir(parents=True)
    (root / "locked" / "r.txt").write_text(TEXT, encoding="utf-8")
    (root / "good.txt").write_text(TEXT, encoding="utf-8")
    scandir = os.scandir

    def refusing(path="."):  # what a folder without read permission does (tests run as root)
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    got = outcomes(reader, root)
    assert sorted(got) == ["good", "locked"]
    assert got["locked"][0] is None and "cannot list the folder (Permission denied)" in got[
        "locked"][1]


def test_a_reference_that_leads_out_of_the_folder_is_not_read(hostile, tmp_path):
    root, _ = hostile
    (ref,) = [r.ref for r in iter_reports(root) if r.report_id == "good"]
    # far.txt outside holds the same text as good.txt: read, it would pass the hash check
    for member in ("../outside/more/far.txt", str(tmp_path / "outside" / "more" / "far.txt")):
        (again,) = read_reports(root, [replace(ref, member=member)])
        assert again.text is None and "leads out of the folder" in again.problem


def test_extensions_are_matched_in_any_case_and_pairs_form_across_cases(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    (root / "A.TXT").write_text(TEXT, encoding="utf-8")
    (root / "A.ANN").write_text(ANN, encoding="utf-8")
    (root / "b.Txt").write_text(TEXT, encoding="utf-8")
    (root / "b.ann").write_text(ANN, encoding="utf-8")
    (root / "c.txt").write_text(TEXT, encoding="utf-8")
    (root / "c.TXT").write_text(TEXT, encoding="utf-8")  # one report, two texts
    got = {r.report_id: r for r in iter_corpus(root, SCHEMA)}
    assert sorted(got) == ["A", "b", "c", "c.txt"]
    for rid in ("A", "b"):
        assert got[rid].status == VALID and len(got[rid].document.entities) == 2
    assert got["c"].status == VALID and got["c"].txt_path.name == "c.TXT"
    assert got["c.txt"].status == QUARANTINED
    assert "differing only in the case" in got["c.txt"].findings[0].message
    archive = [(r.report_id, r.problem is None) for r in iter_reports(root)]
    # the archive reader takes .txt in any case too; the second text of c is a duplicate id
    assert archive == [("A", True), ("b", True), ("c", True), ("c", False)]


def test_nested_archives_inside_a_zip_are_named(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("hidden.txt", TEXT)
    path = tmp_path / "outer.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("r1.txt", TEXT)
        zf.writestr("inner.zip", inner.getvalue())
        zf.writestr("sub/more.TGZ", gzip.compress(b"x"))
    got = {r.report_id: r for r in iter_reports(path)}
    assert got["r1"].text == TEXT
    for name in ("inner.zip", "sub/more.TGZ"):
        assert got[name].text is None and "archive inside the zip" in got[name].problem
        assert f"{path}!{name}" in got[name].problem


def test_a_link_stored_in_a_zip_is_refused_not_read_as_text(tmp_path):
    path = tmp_path / "links.zip"
    with zipfile.ZipFile(path, "w") as zf:
        link = zipfile.ZipInfo("leak.txt")
        link.external_attr = (0o120777 << 16)  # S_IFLNK: the data is the link's target
        zf.writestr(link, "/etc/passwd")
        zf.writestr("ok.txt", TEXT)
    got = {r.report_id: r for r in iter_reports(path)}
    assert got["ok"].text == TEXT
    assert got["leak"].text is None and "not a regular file" in got["leak"].problem


# --- texts that are no report: one rule for every reader -------------------------------------

JUNK = {
    "empty": ("", "empty-report"),
    "blank": (" \r\n\t\u3000\n", "empty-report"),
    "zero-width": ("\u200b\ufeff\u2060\u200d", "empty-report"),
    "nul": (TEXT + "\x00" + TEXT, "control-characters"),
    "bell": (TEXT + "\x07", "control-characters"),
    "c1": ("\x85" + TEXT, "control-characters"),
    "number": ("  12345\n", "not-report-text"),
}
_CODE_WORDS = {"empty-report": "empty", "control-characters": "control character",
               "not-report-text": "only the number"}


def _write_archive(kind: str, root: Path, texts: dict[str, str]) -> Path:
    if kind in ("corpus", "folder"):
        root.mkdir()
        for rid, text in texts.items():
            (root / f"{rid}.txt").write_bytes(text.encode("utf-8"))
        return root
    if kind == "zip":
        path = root.with_suffix(".zip")
        with zipfile.ZipFile(path, "w") as zf:
            for rid, text in texts.items():
                zf.writestr(f"{rid}.txt", text.encode("utf-8"))
        return path
    if kind == "tar":
        path = root.with_suffix(".tar.gz")
        with tarfile.open(path, "w:gz") as tf:
            for rid, text in texts.items():
                data = text.encode("utf-8")
                info = tarfile.TarInfo(f"{rid}.txt")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        return path
    if kind == "csv":
        import pandas as pd

        path = root.with_suffix(".csv")
        pd.DataFrame({"report_id": list(texts), "text": list(texts.values())}).to_csv(
            path, index=False)
        return path
    path = root.with_suffix(".parquet")
    pq.write_table(pa.table({"report_id": list(texts), "text": list(texts.values())}), path)
    return path


@pytest.mark.parametrize("kind", ["corpus", "folder", "zip", "tar", "csv", "parquet"])
def test_junk_texts_are_quarantined_with_their_reason_by_every_reader(tmp_path, kind):
    texts = {"good": TEXT, **{rid: text for rid, (text, _) in JUNK.items()}}
    if kind == "csv":  # a CSV cell cannot hold NUL; its empty cell is the empty case
        texts.pop("nul")
    path = _write_archive(kind, tmp_path / "in", texts)
    got = outcomes("corpus", path) if kind == "corpus" else {
        r.report_id: (r.text, r.problem or "") for r in iter_reports(path)}
    assert sorted(got) == sorted(texts)
    assert got["good"] == (TEXT, "")
    for rid in set(texts) - {"good"}:
        text, said = got[rid]
        code = JUNK[rid][1]
        # a NUL in a file is caught as bytes (binary); in a table cell, as a character
        words = ("NUL bytes", "U+0000") if rid == "nul" else (_CODE_WORDS[code],)
        assert text is None and any(w in said for w in words), (rid, said)


def test_nul_and_control_bytes_in_csv_text_are_quarantined(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"report_id,text\nok," + TEXT.encode()
                     + b"\nnul,\"a\x00b" + TEXT.encode() + b"\"\nesc,\x1b[31m" + TEXT.encode()
                     + b"\n")
    got = {r.report_id: r for r in iter_reports(path)}
    assert got["ok"].text == TEXT
    for rid, char in (("nul", "U+0000"), ("esc", "U+001B")):
        assert got[rid].text is None and char in got[rid].problem


def test_a_parquet_list_or_number_text_column_is_no_text(tmp_path):
    lists = tmp_path / "lists.parquet"
    pq.write_table(pa.table({"report_id": ["a", "b"], "text": [[TEXT], ["x", "y"]]}), lists)
    numbers = tmp_path / "numbers.parquet"
    pq.write_table(pa.table({"report_id": ["a"], "text": [7]}), numbers)
    for path, type_name in ((lists, "list<element: string>"), (numbers, "int64")):
        got = list(iter_reports(path))
        assert [r.report_id for r in got] == (["a", "b"] if path == lists else ["a"])
        for r in got:
            assert r.text is None and f"the text column is {type_name}, not text" in r.problem


def test_a_bit_flipped_tar_gz_is_a_corrupt_archive_with_its_crc_error(tmp_path):
    path = _write_archive("tar", tmp_path / "in", {f"r{i}": TEXT * 20 for i in range(5)})
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10  # one bit in the middle of the deflate stream
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError) as refused:
        list(iter_reports(path))
    message = str(refused.value)
    assert str(path) in message and "corrupt archive" in message
    assert "CRC" in message or "invalid" in message  # zlib says which check failed
    assert "UTF-8" not in message


def test_a_bit_flip_in_the_gzip_trailer_is_reported_as_a_crc_error(tmp_path):
    path = _write_archive("tar", tmp_path / "in", {"r1": TEXT})
    data = bytearray(path.read_bytes())
    data[-8] ^= 0x01  # the stored CRC-32: the data inflates fine, the check fails
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="CRC check failed"):
        list(iter_reports(path))


def test_a_corrupt_parquet_row_group_is_named_and_the_other_groups_are_read(tmp_path):
    path = tmp_path / "t.parquet"
    ids = [f"r{i}" for i in range(6)]
    pq.write_table(pa.table({"report_id": ids, "text": [f"{i}：{TEXT}" for i in range(6)]}),
                   path, row_group_size=3)
    offset = pq.ParquetFile(path).metadata.row_group(0).column(1).data_page_offset
    data = bytearray(path.read_bytes())
    data[offset : offset + 16] = b"\xff" * 16  # the text column's page header of group 0
    path.write_bytes(bytes(data))
    got = list(iter_reports(path))
    assert [r.report_id for r in got] == ids  # the ids column of group 0 is still readable
    for r in got[:3]:
        assert r.text is None and str(path) in r.problem and "row group 0" in r.problem
    assert [r.text for r in got[3:]] == [f"{i}：{TEXT}" for i in range(3, 6)]


def test_a_fixed_hostile_entry_leaves_the_quarantine_listing(hostile, tmp_path):
    root, fifos = hostile
    q = tmp_path / "q"
    quarantine(finishes(lambda: list(iter_corpus(root, SCHEMA)), fifos), q)
    (root / "pipe.txt").unlink()
    (root / "pipe.txt").write_text(TEXT, encoding="utf-8")
    quarantine(list(iter_corpus(root, SCHEMA)), q)
    listed = [r["report_id"] for r in json.loads((q / "findings.json").read_text())["reports"]]
    assert "pipe" not in listed and "leak" in listed
