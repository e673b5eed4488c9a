"""The one way the project writes a file: readers see the old file or the whole new one, never a
part, and the new one is on disk (fsync'd) before it takes the old one's place.

    write_text_atomic(path, text)            # and write_bytes_atomic, write_json_atomic
    with atomic_path(path) as tmp:           # for writers that want a path (pyarrow, csv)
        pq.write_table(table, tmp)
    with atomic_directory(folder) as tmp:    # a directory built whole, then swapped in
        model.save_pretrained(tmp)

The temporary name is hidden (a leading `.`) and sits beside the target, so the rename stays on
one filesystem and dataset readers (which skip `.` and `_` names) never take it for data. On any
error the temporary file is removed and the target is left as it was; an `OSError` comes out
as `WriteFailed`, whose message names the file and the cause ("cannot write OUT/x: No space
left on device"). A rename is durable only
once the folder holding it is fsync'd too, so that is done as well: a power cut after the call
returns cannot bring the old file back.

It lives in `ingest`, the lowest room, so every package can use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
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
