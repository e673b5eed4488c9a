"""Reading report archives: every member comes out once, bad members as problems, never raised."""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.archive import ArchiveError, iter_reports, read_capped, read_reports

REPORT = "左主干未见明显狭窄。前降支近段狭窄70%。\n"


def _by_id(archive, **kw):
    return {r.report_id: r for r in iter_reports(archive, **kw)}


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_folder_is_read_recursively_with_relative_ids(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "r1.txt").write_text(REPORT, encoding="utf-8")
    (tmp_path / "r2.txt").write_text(REPORT, encoding="utf-8")
    (tmp_path / "r2.ann").write_text("T1\tVessel 0 3\t左主干\n", encoding="utf-8")
    reports = list(iter_reports(tmp_path))
    assert [r.report_id for r in reports] == ["r2", "a/b/r1"]
    assert all(r.text == REPORT and r.problem is None for r in reports)


def test_bad_encodings_and_empty_reports_are_problems_not_exceptions(tmp_path):
    (tmp_path / "utf16.txt").write_bytes(REPORT.encode("utf-16"))
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_bytes(b" \r\n\n")
    (tmp_path / "gbk.txt").write_bytes(REPORT.encode("gb18030"))
    got = _by_id(tmp_path)
    for rid in ("utf16", "binary", "empty", "blank"):
        assert got[rid].text is None
        assert str(tmp_path / f"{rid}.txt") in got[rid].problem
    assert "UTF-16" in got["utf16"].problem
    assert "empty" in got["empty"].problem
    assert got["gbk"].text == REPORT and "GB18030" in got["gbk"].warning


def test_five_megabyte_report_is_read_whole(tmp_path):
    big = REPORT * (5 * 1024 * 1024 // len(REPORT.encode("utf-8")) + 1)
    (tmp_path / "big.txt").write_text(big, encoding="utf-8")
    (report,) = iter_reports(tmp_path)
    assert report.problem is None and report.text == big


def test_report_over_the_limit_is_refused_in_a_folder(tmp_path):
    (tmp_path / "big.txt").write_text("x" * 2000, encoding="utf-8")
    (report,) = iter_reports(tmp_path, max_bytes=1000)
    assert report.text is None and "exceeds the 1000-byte limit" in report.problem


def test_zip_slip_members_are_refused_and_the_rest_is_read(tmp_path):
    archive = _zip(tmp_path / "in.zip", {
        "../x.txt": REPORT.encode(), "/etc/abs.txt": REPORT.encode(),
        "sub/../../y.txt": REPORT.encode(), "ok/r1.txt": REPORT.encode(),
        "notes.md": b"ignored",
    })
    reports = list(iter_reports(archive))
    assert len(reports) == 4
    good = [r for r in reports if r.problem is None]
    assert [r.report_id for r in good] == ["ok/r1"]
    for bad in (r for r in reports if r.problem is not None):
        assert "escapes" in bad.problem and bad.text is None
        assert str(archive) in bad.problem


def test_zip_bomb_member_is_refused_by_declared_size(tmp_path):
    archive = _zip(tmp_path / "bomb.zip", {"bomb.txt": b"0" * 200_000, "r1.txt": REPORT.encode()})
    assert archive.stat().st_size < 5_000  # highly compressed: a (small) bomb
    got = _by_id(archive, max_bytes=100_000)
    assert got["bomb"].text is None and "possible zip bomb" in got["bomb"].problem
    assert got["r1"].text == REPORT


def test_zip_member_lying_about_its_size_is_refused(tmp_path):
    archive = _zip(tmp_path / "liar.zip", {"liar.txt": b"0" * 200_000})
    data = bytearray(archive.read_bytes())
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 10)  # declared uncompressed size: 10 bytes
    archive.write_bytes(bytes(data))
    (report,) = iter_reports(archive, max_bytes=100_000)
    assert report.text is None and report.problem


def test_read_is_capped_even_when_no_size_is_declared():
    assert read_capped(io.BytesIO(b"a" * 10), 10) == b"a" * 10
    assert read_capped(io.BytesIO(b"a" * 11), 10) is None


def test_duplicate_report_id_keeps_the_first_and_quarantines_the_second(tmp_path):
    archive = _zip(tmp_path / "dup.zip", {"r1.txt": b"first", "./r1.txt": b"second"})
    first, second = iter_reports(archive)
    assert (first.report_id, first.text, first.problem) == ("r1", "first", None)
    assert second.report_id == "r1" and second.text is None
    # The message names the refused member first, then the one that was kept.
    assert second.problem.startswith(f"{archive}!./r1.txt: duplicate report id 'r1'")
    assert f"already read from {archive}!r1.txt" in second.problem


def test_tar_gz_is_streamed_with_the_same_checks(tmp_path):
    archive = tmp_path / "in.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for name, data in (("a/r1.txt", REPORT.encode()), ("../x.txt", b"evil"),
                           ("a/r1.txt", b"again"), ("big.txt", b"z" * 5000)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    reports = list(iter_reports(archive, max_bytes=1000))
    assert [r.report_id for r in reports] == ["a/r1", "../x", "a/r1", "big"]
    assert reports[0].text == REPORT
    assert "escapes" in reports[1].problem
    assert "duplicate" in reports[2].problem
    assert "limit" in reports[3].problem


def test_parquet_table_is_read_in_batches(tmp_path):
    ids = [f"r{i}" for i in range(600)]
    texts = [REPORT] * 599 + [None]
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"report_id": ids, "text": texts, "extra": list(range(600))}), path,
                   row_group_size=100)
    reports = list(iter_reports(path))
    assert [r.report_id for r in reports] == ids
    assert reports[-1].text is None and "null" in reports[-1].problem
    assert "#row 599" in reports[-1].source


def test_csv_table_keeps_newlines_inside_quoted_text(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"report_id": ["a", "b", "a"], "text": [REPORT + "第二行", "", "x"]}).to_csv(
        path, index=False)
    a, b, dup = iter_reports(path)
    assert a.text == REPORT + "第二行"
    assert b.text is None and "empty" in b.problem
    assert "duplicate" in dup.problem


def test_table_without_the_columns_is_an_archive_error(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id,body\n1,x\n", encoding="utf-8")
    with pytest.raises(ArchiveError, match="report_id"):
        list(iter_reports(path))


def test_unknown_or_missing_archive_is_an_archive_error(tmp_path):
    with pytest.raises(ArchiveError, match="no such file"):
        list(iter_reports(tmp_path / "missing.zip"))
    (tmp_path / "x.rar").write_bytes(b"x")
    with pytest.raises(ArchiveError, match="unknown archive format"):
        list(iter_reports(tmp_path / "x.rar"))


def _tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _five_of_each_kind(root: Path) -> list[Path]:
    texts = {f"r{i}": f"{i}：{REPORT}" for i in range(5)}
    folder = root / "folder"
    (folder / "sub").mkdir(parents=True)
    for i, (rid, text) in enumerate(texts.items()):
        (folder / ("sub" if i % 2 else "") / f"{rid}.txt").write_text(text, encoding="utf-8")
    members = {f"{rid}.txt": text.encode() for rid, text in texts.items()}
    parquet = root / "t.parquet"
    pq.write_table(pa.table({"report_id": list(texts), "text": list(texts.values())}), parquet,
                   row_group_size=2)
    csv = root / "t.csv"
    pd.DataFrame({"report_id": list(texts), "text": list(texts.values())}).to_csv(csv,
                                                                                  index=False)
    return [folder, _zip(root / "a.zip", members), _tar_gz(root / "a.tar.gz", members),
            parquet, csv]


@pytest.mark.parametrize("kind", ["folder", "zip", "tar", "parquet", "csv"])
def test_references_read_back_the_same_reports_in_the_order_given(tmp_path, kind):
    archive = dict(zip(["folder", "zip", "tar", "parquet", "csv"],
                       _five_of_each_kind(tmp_path), strict=True))[kind]
    everything = list(iter_reports(archive))
    refs = [everything[i].ref for i in (3, 0, 4)]
    assert all(ref.chars == len(everything[0].text) and ref.problem is None for ref in refs)
    again = read_reports(archive, refs)
    assert again == [everything[i] for i in (3, 0, 4)]
    assert [r.content_sha256 for r in again] == [ref.sha256 for ref in refs]


def test_a_member_changed_or_removed_since_its_reference_comes_back_refused(tmp_path):
    (tmp_path / "a.txt").write_text(REPORT, encoding="utf-8")
    (tmp_path / "b.txt").write_text(REPORT, encoding="utf-8")
    refs = [r.ref for r in iter_reports(tmp_path)]
    (tmp_path / "a.txt").write_text("右冠狭窄50%。", encoding="utf-8")
    (tmp_path / "b.txt").unlink()
    a, b = read_reports(tmp_path, refs)
    assert a.text is None and "changed while the run was reading" in a.problem
    assert b.text is None and "no longer in the archive" in b.problem


def test_a_reference_with_a_problem_is_not_read_again(tmp_path):
    archive = _zip(tmp_path / "dup.zip", {"r1.txt": b"first", "./r1.txt": b"second"})
    _, second = (r.ref for r in iter_reports(archive))
    (again,) = read_reports(archive, [second])
    assert again.text is None and again.problem == second.problem
