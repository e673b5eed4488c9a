"""Where the run waits for the disk, and where it no longer does (pipeline.manifest,
"Durability"): the manifest's journal mode by filesystem, the one sync before a run can be
published, and the manifest held open for a run and let go at its end."""

from __future__ import annotations

import os

import pytest
from extraction_fakes import FakeExtractor

from export import parquet_sink
from pipeline import manifest as manifest_module
from pipeline.manifest import MANIFEST_NAME, Manifest, filesystem_type, hold, release
from pipeline.run import RunSettings, run
from pipeline.sinks import ParquetSink

TEXT = "前降支近段狭窄70%。回旋支未见明显狭窄。"
MOUNTS = "\n".join([
    "/dev/vda / ext4 rw,relatime 0 0",
    "server:/exports /mnt/nfs nfs4 rw,relatime 0 0",
    "tmpfs /mnt/nfs/scratch tmpfs rw 0 0",
    "/dev/sdb /mnt/my\\040disk xfs rw 0 0",
    "sshfs#me@host: /mnt/remote fuse.sshfs rw 0 0",
])


def _archive(folder, n=5):
    folder.mkdir()
    for i in range(n):
        (folder / f"r{i}.txt").write_text(f"{i}：{TEXT}", "utf-8")
    return folder


def _modes(manifest: Manifest) -> tuple[str, int]:
    db = manifest._db
    return (db.execute("PRAGMA journal_mode").fetchone()[0],
            db.execute("PRAGMA synchronous").fetchone()[0])


def test_the_filesystem_of_a_folder_is_its_longest_mount_point():
    assert filesystem_type("/work/out", MOUNTS) == "ext4"
    assert filesystem_type("/mnt/nfs", MOUNTS) == "nfs4"
    assert filesystem_type("/mnt/nfs/out/run", MOUNTS) == "nfs4"
    assert filesystem_type("/mnt/nfs/scratch/out", MOUNTS) == "tmpfs"
    assert filesystem_type("/mnt/nfsx/out", MOUNTS) == "ext4"  # a name that only starts alike
    assert filesystem_type("/mnt/my disk/out", MOUNTS) == "xfs"  # \040 is a space
    assert filesystem_type("/mnt/remote/out", MOUNTS) == "fuse.sshfs"
    assert filesystem_type("/work", "/dev/a / ext4 rw 0 0\n/dev/b / xfs rw 0 0") == "xfs"
    assert filesystem_type("/work", "") == ""


def test_the_manifest_uses_wal_on_a_local_filesystem_and_the_rollback_journal_elsewhere(
        tmp_path, monkeypatch):
    if not manifest_module._local_filesystem(os.path.realpath(tmp_path)):
        pytest.skip(f"{tmp_path} is not on a local filesystem here")
    with Manifest(tmp_path / "local" / MANIFEST_NAME) as local:
        assert local.wal and _modes(local) == ("wal", 1)  # 1: NORMAL

    monkeypatch.setattr(manifest_module, "_local_filesystem", lambda folder: False)
    path = tmp_path / "remote" / MANIFEST_NAME
    with Manifest(path) as remote:
        assert not remote.wal and _modes(remote) == ("delete", 2)  # 2: FULL, as before
        remote.make_durable()  # nothing to do: every commit was durable
    hold(path)
    assert manifest_module._held == {}  # nothing to hold without a log
    # and a run there works as before
    summary = run(_archive(tmp_path / "archive"), ParquetSink(path.parent), FakeExtractor())
    assert summary.published and summary.extracted == 5
    with Manifest(path) as remote:
        assert _modes(remote) == ("delete", 2) and len(remote.entries()) == 5


def test_the_manifest_is_made_durable_before_the_publish_journal_is_written(
        tmp_path, monkeypatch):
    out = tmp_path / "out"
    seen = []
    made_durable = Manifest.make_durable

    def watched(self):
        journals = list((out / "_staging").glob("run_id=*/COMMIT"))
        seen.append((len(self.entries()), journals, [r.committed for r in self.runs()]))
        made_durable(self)

    monkeypatch.setattr(Manifest, "make_durable", watched)
    summary = run(_archive(tmp_path / "archive"), ParquetSink(out), FakeExtractor(),
                  RunSettings(shard_reports=2))
    # once, with every shard's entries recorded, before the journal, the run not yet marked
    assert seen == [(5, [], [False])]
    assert summary.published and (out / parquet_sink.REPORTS).is_dir()


def test_a_run_holds_its_manifest_open_and_lets_go_at_its_end(tmp_path, monkeypatch):
    out = tmp_path / "out"
    if not manifest_module._local_filesystem(os.path.realpath(tmp_path)):
        pytest.skip(f"{tmp_path} is not on a local filesystem here")
    log = out / f"{MANIFEST_NAME}-wal"
    held_while_writing = []
    write_shard = parquet_sink.write_shard

    def watched(root, run_info, shard, tables):
        held_while_writing.append(dict(manifest_module._held))
        write_shard(root, run_info, shard, tables)

    monkeypatch.setattr(parquet_sink, "write_shard", watched)
    run(_archive(tmp_path / "archive"), ParquetSink(out), FakeExtractor(),
        RunSettings(shard_reports=2))
    assert len(held_while_writing) == 3
    assert all(list(held) == [(out / MANIFEST_NAME).absolute()] for held in held_while_writing)
    # let go: the last connection closed, the log checkpointed into the database and removed
    assert manifest_module._held == {} and not log.exists()

    # a run that finds nothing new lets go too
    again = run(tmp_path / "archive", ParquetSink(out), FakeExtractor())
    assert not again.published and manifest_module._held == {} and not log.exists()


def test_holding_again_replaces_the_connection_held_before(tmp_path):
    path = tmp_path / MANIFEST_NAME
    hold(path)
    first = manifest_module._held.get(path.absolute())
    hold(path)
    try:
        if first is None:
            pytest.skip("not on a local filesystem here: nothing is held")
        assert manifest_module._held[path.absolute()] is not first
        with pytest.raises(Exception, match="closed"):
            first.execute("SELECT 1")
    finally:
        release(path)
    assert manifest_module._held == {}
