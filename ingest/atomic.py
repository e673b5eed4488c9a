"""The one way the project writes a file: readers see the old file or the whole new one, never a
part, and the new one is on disk (fsync'd) before it takes the old one's place.

    write_text_atomic(path, text)            # and write_bytes_atomic, write_json_atomic
    with atomic_path(path) as tmp:           # for writers that want a path (pyarrow, csv)
        pq.write_table(table, tmp)
    with atomic_directory(folder) as tmp:    # a directory built whole, then swapped in
        model.save_pretrained(tmp)
    with atomic_group() as group:            # files that matter together (a shard's parts)
        for path, table in tables:
            with group.path(path) as tmp:
                pq.write_table(table, tmp)

The temporary name is hidden (a leading `.`) and sits beside the target, so the rename stays on
one filesystem and dataset readers (which skip `.` and `_` names) never take it for data. On any
error the temporary file is removed and the target is left as it was; an `OSError` comes out
as `WriteFailed`, whose message names the file and the cause ("cannot write OUT/x: No space
left on device"). A rename is durable only
once the folder holding it is fsync'd too, so that is done as well: a power cut after the call
returns cannot bring the old file back.

Each fsync waits for the disk (~1-5 ms here; a journal commit on ext4), and a run writes dozens
of files. Waits that need no order between them are taken together (`sync_together`): the
kernel then commits them as one (measured here, five files' fsyncs: ~20 ms one after another,
~1.5 ms at once). `atomic_group` does that for files that only matter together: every file's
data is fsync'd at once, then each is renamed into place, then each folder holding them is
fsync'd once, at once; the guarantee per file is `atomic_path`'s, the order across the files is
not promised (a caller that needs one file before another, e.g. a marker after its data, writes
it after the group's block).

It lives in `ingest`, the lowest room, so every package can use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


class WriteFailed(OSError):
    """A file could not be written; the message names it and the cause (a read-only folder,
    no space left, ...). The file as it was before is untouched."""


def _failed(target: Path, exc: OSError) -> WriteFailed:
    cause = exc.strerror or str(exc)
    return WriteFailed(exc.errno, f"cannot write {target}: {cause}", str(target))


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """Make the renames and creations inside `folder` durable."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # some filesystems cannot open a directory; the rename itself still happened
    try:
        os.fsync(fd)
    except OSError:
        pass  # e.g. a network filesystem that does not fsync directories
    finally:
        os.close(fd)


_SYNC_THREADS = 8
_sync_pool: tuple[int, ThreadPoolExecutor] | None = None  # (pid, pool): a forked child's own


def _pool() -> ThreadPoolExecutor:
    """The sync threads of this process (a child forked from a process that had them gets
    new ones: the parent's threads do not exist in it)."""
    global _sync_pool
    if _sync_pool is None or _sync_pool[0] != os.getpid():
        _sync_pool = (os.getpid(), ThreadPoolExecutor(_SYNC_THREADS,
                                                      thread_name_prefix="angiokg-fsync"))
    return _sync_pool[1]


def sync_together(sync: Callable[[Path], None], paths: Iterable[Path]) -> None:
    """`sync(path)` for every path, all at once (os.fsync releases the GIL, so the kernel sees
    the requests together and commits them as one); returns once every one is done, and
    raises the first failure (in `paths` order)."""
    todo = list(dict.fromkeys(paths))
    if len(todo) <= 1:
        for path in todo:
            sync(path)
        return
    futures = [_pool().submit(sync, path) for path in todo]
    errors = [f.exception() for f in futures]  # waits for every one, failed or not
    for error in errors:
        if error is not None:
            raise error


def _temp_name(target: Path) -> Path:
    """A new empty file beside `target`. Not `tempfile.mkstemp`: its files are private (0600),
    and outputs must get the permissions every other file of the user gets (the umask's)."""
    while True:
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write `path`'s new content to; put in place when the block ends."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_name(target)
    except WriteFailed:
        raise
    except OSError as exc:
        raise _failed(target, exc) from exc
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, WriteFailed):
            raise _failed(target, exc) from exc
        raise
    fsync_dir(target.parent)


class AtomicGroup:
    """Files written through `path` blocks, put in place together when the group ends."""

    def __init__(self) -> None:
        self._written: list[tuple[Path, Path]] = []  # (temporary, target)

    @contextlib.contextmanager
    def path(self, path: str | Path) -> Iterator[Path]:
        """A temporary path for `path`'s new content; an error in the block names `path`."""
        target = Path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = _temp_name(target)
        except OSError as exc:
            raise _failed(target, exc) from exc
        self._written.append((tmp, target))
        try:
            yield tmp
        except OSError as exc:
            if not isinstance(exc, WriteFailed):
                raise _failed(target, exc) from exc
            raise

    def _put_in_place(self) -> None:
        targets = {tmp: target for tmp, target in self._written}

        def fsync_named(tmp: Path) -> None:
            try:
                _fsync_file(tmp)
            except OSError as exc:
                raise _failed(targets[tmp], exc) from exc

        sync_together(fsync_named, targets)
        for tmp, target in self._written:
            try:
                os.replace(tmp, target)
            except OSError as exc:
                raise _failed(target, exc) from exc
        sync_together(fsync_dir, (target.parent for target in targets.values()))

    def _discard(self) -> None:
        for tmp, _target in self._written:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_group() -> Iterator[AtomicGroup]:
    """Several files that only matter together, each atomic as with `atomic_path`, made
    durable with one wait for the disk (two in all: the files' data, then their folders)
    instead of two per file. When the block ends every file is in place and durable; on an
    error no temporary is left, and a file not yet renamed keeps its old content (files
    renamed before the error stay renamed: the caller's marker, written after the group,
    says whether the set is whole)."""
    group = AtomicGroup()
    try:
        yield group
        group._put_in_place()
    except BaseException:
        group._discard()
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    """UTF-8, written byte for byte (no newline translation: brat offsets count `\\r`)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, payload: object) -> None:
    write_text_atomic(path, json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """A temporary sibling folder to build `path` in; swapped in whole when the block ends.

    An existing folder at `path` is renamed aside, the new one renamed into place, then the old
    one removed: there is no moment when `path` holds a half-written tree.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    tmp.mkdir()  # the umask's permissions, not mkdtemp's private 0700
    try:
        yield tmp
        for folder, _dirs, files in os.walk(tmp):
            for name in files:
                _fsync_file(Path(folder) / name)
            fsync_dir(Path(folder))
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.replaced-{tmp.name}")
            os.rename(target, old)
        try:
            os.rename(tmp, target)
        except BaseException:
            if old is not None:
                os.rename(old, target)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
