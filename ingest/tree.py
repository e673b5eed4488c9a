"""Which entries of a folder tree are input files, and how one is opened.

The one rule the corpus reader (`ingest.corpus`) and the folder archive (`ingest.archive`) share:

- a name is matched case-insensitively on its extension (`A.TXT`, `b.Txt`); its stem, which is
  the report id, keeps its case;
- a symbolic link to a file is followed only when its target lies inside the root (the link
  then reads as its own name); a link out of the root, a broken link and a link to anything but
  a regular file are refused, and their target is never opened;
- a linked folder is never walked into: it is named (its files, when inside the root, are read
  where they really are; a folder outside the root is not read at all);
- only regular files are opened: a FIFO, socket or device named `*.txt` is refused from its
  `lstat`, and every open is `O_NONBLOCK | O_NOFOLLOW` then checked with `fstat`, so a file
  swapped for a FIFO or a link between the walk and the read still cannot block or lead out;
- a name that is not UTF-8 is reported with its bytes escaped (`caf\\xe9.txt`) and not opened:
  the run goes on, and the escaped name is what every message, id and output carries;
- an archive inside the tree (`.zip`, `.tar`, `.tar.gz`, `.tgz`) is named, not unpacked: give
  it as an archive of its own, or unpack it into the folder;
- a folder that cannot be listed (permissions) is named, not skipped.

Each refused entry comes out as a `TreeEntry` with a `problem` and a finding `code`, so the
caller accounts for it (quarantined, with the reason) instead of skipping it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPORT_SUFFIXES = (".txt", ".ann")
NESTED_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")

OUTSIDE_LINK = "link-outside-root"
BROKEN_LINK = "broken-link"
SPECIAL_FILE = "not-a-regular-file"
NOT_UTF8_NAME = "name-not-utf8"
NESTED_ARCHIVE = "nested-archive"
LINKED_FOLDER = "linked-folder"
UNLISTED_FOLDER = "unreadable-folder"


@dataclass(frozen=True)
class TreeEntry:
    """One input entry under a root. `member` is its path relative to the root, `/`-separated,
    escaped when not UTF-8. `path` is what to open (the file, or a link's target inside the
    root), None when the entry is refused; then `problem` says why (and what to do) and `code`
    names it."""

    member: str
    suffix: str  # the matched extension, lower case ("" for a linked folder)
    path: Path | None
    where: str  # the entry's own path for messages (a link's, not its target's), escaped
    problem: str | None = None
    code: str | None = None

    @property
    def refusal(self) -> str:
        """`where: problem`, the message an archive report carries."""
        return f"{self.where}: {self.problem}"

    @property
    def stem(self) -> str:
        """The member without its extension: the report id."""
        return self.member[: len(self.member) - len(self.suffix)] if self.suffix else self.member


def display(name: str | os.PathLike[str]) -> str:
    """A file name as text that can be printed and stored: bytes that are not UTF-8 (which
    Python carries as lone surrogates) are shown as `\\xNN`."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def matched_suffix(name: str, suffixes: Sequence[str]) -> str:
    """The first of `suffixes` that `name` ends with, compared case-insensitively; else ""."""
    lower = name.lower()
    return next((s for s in suffixes if lower.endswith(s) and len(name) > len(s)), "")


def nested_archive_problem(container: str) -> str:
    return (f"an archive inside the {container} is not read; unpack it into the {container}, "
            "or give it as an archive of its own")


def walk_tree(root: str | Path, suffixes: Sequence[str] = REPORT_SUFFIXES
              ) -> Iterator[TreeEntry]:
    """Every entry under `root` whose name ends with one of `suffixes` (or that is a nested
    archive or a linked folder), folder by folder: a folder's files in name order, then its
    sub-folders in name order. Other files (a README, annotation.conf) are not inputs."""
    root = Path(root)
    real_root = os.path.realpath(root)
    unlisted: list[OSError] = []  # folders os.walk could not list: named, not skipped
    for dirpath, dirnames, filenames in os.walk(root, onerror=unlisted.append):
        yield from _unlisted(root, unlisted)
        dirnames.sort()
        here = Path(dirpath)
        linked = [d for d in dirnames if os.path.islink(here / d)]
        for name in sorted(filenames):
            entry = _entry(root, real_root, here / name, suffixes)
            if entry is not None:
                yield entry
        for name in linked:  # os.walk does not follow them; say so
            dirnames.remove(name)
            yield _linked_folder(root, real_root, here / name)
    yield from _unlisted(root, unlisted)


def _unlisted(root: Path, errors: list[OSError]) -> Iterator[TreeEntry]:
    while errors:
        exc = errors.pop(0)
        path = Path(exc.filename or root)
        member = display(path.relative_to(root).as_posix()) if path != root else "."
        yield TreeEntry(member, "", None, display(path),
                        f"cannot list the folder ({exc.strerror or exc}); its files are not "
                        "read: check its permissions", UNLISTED_FOLDER)


def member_entry(root: str | Path, member: str, suffixes: Sequence[str] = REPORT_SUFFIXES
                 ) -> TreeEntry | None:
    """The entry for one member path (as `walk_tree` gave it) read again later, by the same
    rule; None when there is no such file any more."""
    root = Path(root)
    path = root / member
    if member.startswith("/") or ".." in member.split("/"):  # a reference must not lead out
        return TreeEntry(member, "", None, display(path), "the member path leads out of the "
                         "folder (absolute or '..'); refused", OUTSIDE_LINK)
    if not os.path.lexists(path):
        return None
    return _entry(root, os.path.realpath(root), path, suffixes)


def _entry(root: Path, real_root: str, path: Path, suffixes: Sequence[str]) -> TreeEntry | None:
    member = display(path.relative_to(root).as_posix())
    name = path.name
    archive_suffix = matched_suffix(name, NESTED_ARCHIVE_SUFFIXES)
    suffix = matched_suffix(name, suffixes) or archive_suffix
    if not suffix:
        return None
    where = display(path)

    def refused(code: str, problem: str) -> TreeEntry:
        return TreeEntry(member, suffix, None, where, problem, code)

    if member != path.relative_to(root).as_posix():
        return refused(NOT_UTF8_NAME, "the file name is not UTF-8 (its bytes are shown "
                                      "escaped); not read: rename it to UTF-8")
    if suffix == archive_suffix:
        return TreeEntry(member, suffix, None, where, nested_archive_problem("folder"),
                         NESTED_ARCHIVE)
    try:
        info = os.lstat(path)
    except OSError as exc:
        return refused(SPECIAL_FILE, f"cannot look at the file ({exc.strerror or exc})")
    target = path
    if stat.S_ISLNK(info.st_mode):
        resolved = os.path.realpath(path)
        if not _inside(real_root, resolved):
            return refused(OUTSIDE_LINK, f"a link to {display(resolved)}, outside "
                                         f"{display(root)}; not followed, the target is not "
                                         "read: put the report itself there")
        try:
            info = os.stat(resolved)
        except OSError:
            return refused(BROKEN_LINK, f"a link to {display(resolved)}, which does not "
                                        "exist; fix or remove the link")
        target = Path(resolved)
    if not stat.S_ISREG(info.st_mode):
        return refused(SPECIAL_FILE, f"not a regular file ({_kind(info.st_mode)}); not opened: "
                                     "put the report's text file there")
    return TreeEntry(member, suffix, target, where)


def _linked_folder(root: Path, real_root: str, path: Path) -> TreeEntry:
    member = display(path.relative_to(root).as_posix())
    resolved = os.path.realpath(path)
    if _inside(real_root, resolved):
        why = (f"a linked folder (-> {display(resolved)}); not followed: its reports are read "
               "where they are, under their own names")
    else:
        why = (f"a linked folder (-> {display(resolved)}), outside {display(root)}; not read: "
               "copy the reports into the folder or give that folder as its own input")
    return TreeEntry(member, "", None, display(path), why, LINKED_FOLDER)


def _inside(real_root: str, resolved: str) -> bool:
    return os.path.commonpath([real_root, resolved]) == real_root


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a file"


class NotRegularFile(OSError):
    """Raised by `open_regular` for anything but a regular file (FIFO, device, link, folder)."""


def open_regular(path: str | Path):
    """`path` opened for binary reading, only if it is a regular file and not a link: never
    blocks on a FIFO (O_NONBLOCK), never follows a link (O_NOFOLLOW), checked with fstat."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if os.path.islink(path):
            raise NotRegularFile(f"{display(path)} is a link; not followed") from exc
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegularFile(f"not a regular file ({_kind(mode)})")
    return os.fdopen(fd, "rb")
