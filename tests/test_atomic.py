"""The one atomic writer: the old file or the whole new one, never a part, never a temp left."""

from __future__ import annotations

import os
import stat

import pytest

from ingest.atomic import (
    WriteFailed,
    atomic_directory,
    atomic_group,
    atomic_path,
    write_json_atomic,
    write_text_atomic,
)


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_write_replaces_the_file_whole_and_leaves_nothing_beside_it(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    write_text_atomic(target, "旧\r\n")
    write_text_atomic(target, "新的内容\r\n")
    assert target.read_bytes() == "新的内容\r\n".encode()  # byte for byte, \r kept
    assert _names(target.parent) == ["a.txt"]


def test_a_writer_failing_midway_keeps_the_old_file_and_removes_its_temp(tmp_path):
    target = tmp_path / "ledger.json"
    write_json_atomic(target, {"runs": ["a"]})
    with pytest.raises(RuntimeError, match="disk gone"), atomic_path(target) as tmp:
        tmp.write_text('{"runs": ["a", "b"', encoding="utf-8")  # half written
        raise RuntimeError("disk gone")
    assert target.read_text(encoding="utf-8") == '{\n  "runs": [\n    "a"\n  ]\n}\n'
    assert _names(tmp_path) == ["ledger.json"]


def test_written_files_get_the_umask_permissions_not_private_ones(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "shared.csv", "report_id,split\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "shared.csv").stat().st_mode) == 0o644


def test_a_directory_is_swapped_in_whole_and_a_failed_build_keeps_the_old_one(tmp_path):
    target = tmp_path / "model"
    with atomic_directory(target) as building:
        (building / "weights").write_bytes(b"v1")
    with pytest.raises(KeyboardInterrupt), atomic_directory(target) as building:
        (building / "weights").write_bytes(b"v2-partial")
        raise KeyboardInterrupt
    assert (target / "weights").read_bytes() == b"v1"
    with atomic_directory(target) as building:
        (building / "weights").write_bytes(b"v2")
        (building / "config.json").write_text("{}", encoding="utf-8")
    assert _names(target) == ["config.json", "weights"]
    assert (target / "weights").read_bytes() == b"v2"
    assert _names(tmp_path) == ["model"]


def test_a_group_puts_every_file_in_place_durably_and_a_failure_names_its_file(tmp_path):
    targets = [tmp_path / name / "part-0.parquet" for name in ("reports", "entities", "triples")]
    synced = []
    real_fsync = os.fsync

    def counting_fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    os.fsync = counting_fsync
    try:
        with atomic_group() as group:
            for target in targets:
                with group.path(target) as tmp:
                    tmp.write_bytes(target.parent.name.encode())
                assert not target.exists()  # in place only when the group ends
    finally:
        os.fsync = real_fsync
    assert [t.read_bytes() for t in targets] == [b"reports", b"entities", b"triples"]
    assert all(_names(t.parent) == ["part-0.parquet"] for t in targets)
    # every file's data and every folder holding one, each synced once
    assert sorted(p for p in synced if p.endswith(".tmp")) == sorted(synced[:3])
    assert sorted(synced[3:]) == sorted(str(t.parent) for t in targets)

    failing = pytest.raises(WriteFailed, match="cannot write .*entities/part-0.parquet: gone")
    with failing, atomic_group() as group:
        with group.path(targets[0]) as tmp:
            tmp.write_bytes(b"new")
        with group.path(targets[1]) as tmp:
            raise OSError(5, "gone")
    assert [t.read_bytes() for t in targets] == [b"reports", b"entities", b"triples"]
    assert all(_names(t.parent) == ["part-0.parquet"] for t in targets)  # no temporary left
