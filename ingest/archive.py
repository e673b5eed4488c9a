"""Every way a report's bytes become text: archives streamed member by member, and files on disk.

An archive is a folder of `.txt` reports (recursively), a `.zip` or `.tar.gz` of them, or a
Parquet or CSV table with `report_id` and `text` columns. Two ways in:

- `iter_reports(archive)`: every report, in a deterministic order, one at a time (never more
  than one member, or one table batch, in memory), so an archive of any size can be read.
  Each `ArchiveReport` knows where it came from: `report.ref` is a small `ReportRef` (member
  name or row number, the text's hash and length, no text) that can be kept or sent to another
  process by the thousand.
- `read_reports(archive, refs)`: the reports those references point at, read again from the
  archive, so a worker holds only the texts of its own shard. Folders, zips and Parquet are read
  at the references (random access); a tar.gz and a CSV have no random access and are streamed
  to the references (`RANDOM_ACCESS` says which; the run protocol spools those instead).

A bad member never raises: it comes out as an `ArchiveReport` with `problem` set and no text, so
the run quarantines it with the reason and goes on. Only an archive that cannot be opened at
all (missing file, unknown format, table without the columns) raises `ArchiveError`.

`read_text_file` is the same capped read and decode for one file on disk: the corpus reader
reads `.txt` and `.ann` files with it, so there is one rule for how bytes become text. A folder
is walked by `ingest.tree`'s rule, the corpus reader's too (links inside the root only, regular
files only, names that are not UTF-8 refused, nested archives and linked folders named; in a zip
or tar, a nested archive or a link member is refused the same way), and every decoded text,
from a file or a table cell, passes `unusable_text` (empty, invisible, control characters, a
bare number). A tar.gz's gzip CRC is checked before any member is handed out, and a Parquet row
group that cannot be read turns its rows into problems naming the file, the others still read.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import posixpath
import re
import stat
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from ingest.encoding import Decoded, decode_bytes
from ingest.findings import Finding, error
from ingest.tree import (
    NESTED_ARCHIVE_SUFFIXES,
    SPECIAL_FILE,
    NotRegularFile,
    TreeEntry,
    display,
    matched_suffix,
    member_entry,
    nested_archive_problem,
    open_regular,
    walk_tree,
)

# A real angiography report is a few kB; 10 MB leaves room for pathological but honest input
# while refusing zip bombs before they are inflated.
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
TABLE_BATCH_ROWS = 256
_READ_CHUNK = 1024 * 1024
KINDS = ("folder", "zip", "tar", "parquet", "csv")
# Kinds whose members `read_reports` can reach without reading everything before them
# (`random_access` also looks at a Parquet file's row groups).
RANDOM_ACCESS = frozenset({"folder", "zip", "parquet"})
PARQUET_GROUP_ROWS = 10_000


class ArchiveError(ValueError):
    """The archive as a whole cannot be read (its members' problems are reported per report)."""


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_sha256(text: str | None, problem: str | None) -> str:
    """What the run's manifest (`pipeline.manifest`) keys on: the decoded text's hash, or for a
    refused member the hash of its problem (so a restarted run does not report it twice)."""
    return text_sha256(text) if text is not None else text_sha256(f"problem\0{problem}")


@dataclass(frozen=True)
class ReportRef:
    """Where one report sits in its archive and what reading it gave, without its text.

    `member` is the path inside a folder, zip or tar; `index` the member's position (zip and tar
    entries, table rows). `sha256` and `chars` describe the text as it was read, so a later
    reader can tell whether the member changed since; `problem` and `warning` are as read.
    """

    report_id: str
    source: str
    member: str
    index: int
    sha256: str
    chars: int
    problem: str | None = None
    warning: str | None = None


@dataclass(frozen=True)
class ArchiveReport:
    """One input report: `text` is None exactly when `problem` says why it cannot be used.

    `source` names where it came from (`archive.zip!a/b.txt`, `table.parquet#row 12`) so
    messages and the `reports` dataset point at the member. `warning` carries a non-fatal note
    (for instance a GB18030 fallback decode).
    """

    report_id: str
    text: str | None
    source: str
    problem: str | None = None
    warning: str | None = None
    member: str = ""
    index: int = 0

    @property
    def content_sha256(self) -> str:
        return content_sha256(self.text, self.problem)

    @property
    def ref(self) -> ReportRef:
        return ReportRef(self.report_id, self.source, self.member, self.index,
                         self.content_sha256, len(self.text or ""), self.problem, self.warning)


def archive_kind(path: str | Path) -> str:
    """"folder", "zip", "tar", "parquet" or "csv"; ArchiveError for anything else."""
    p = Path(path)
    if not p.exists():
        raise ArchiveError(f"{p}: no such file or folder; give a folder, .zip, .tar.gz, .parquet "
                           "or .csv archive of reports")
    name = p.name.lower()
    if p.is_dir():
        return "folder"
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        return "tar"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".csv"):
        return "csv"
    raise ArchiveError(f"{p}: unknown archive format; expected a folder, .zip, .tar.gz, "
                       ".parquet or .csv")


def iter_reports(archive: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 skip_folder: str | Path | None = None) -> Iterator[ArchiveReport]:
    """Every report of `archive`, in a deterministic order; duplicates of an id are quarantined.

    The first occurrence of a report id wins; later ones come out with a problem naming the
    source of the first, so each input is accounted for exactly once. `skip_folder`: a folder
    inside a folder archive that is not read (a command's own output written inside its input).
    """
    kind = archive_kind(archive)
    reader = _READERS[kind]
    if kind == "folder" and skip_folder is not None:
        reader = functools.partial(_iter_folder, skip=Path(skip_folder).resolve())
    first_seen: dict[str, str] = {}
    for report in reader(Path(archive), max_bytes, None):
        earlier = first_seen.get(report.report_id)
        if earlier is not None:
            yield _refused(report, f"{report.source}: duplicate report id "
                                   f"{report.report_id!r}: already read from {earlier}; the "
                                   "first one is kept, rename or remove this one")
            continue
        first_seen[report.report_id] = report.source
        yield report


def read_reports(archive: str | Path, refs: Sequence[ReportRef], *,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> list[ArchiveReport]:
    """The reports `refs` point at, read again from `archive`, in the order of `refs`.

    A reference that carries a problem is not read again: it comes back refused with that
    problem. A member that is gone, or whose text is no longer what the reference saw, comes
    back refused saying so (the archive changed while the run was using it). The report keeps
    the reference's id, source and warning, so a copy of the texts (a spool table of them) can
    stand in for the archive.
    """
    wanted = {ref.index: ref for ref in refs if ref.problem is None}
    found: dict[int, ArchiveReport] = {}
    if wanted:
        reader = _READERS[archive_kind(archive)]
        for report in reader(Path(archive), max_bytes, wanted):
            ref = wanted.get(report.index)
            if ref is not None and report.member == ref.member:
                found[report.index] = report
    return [_as_planned(ref, found.get(ref.index)) for ref in refs]


def _as_planned(ref: ReportRef, report: ArchiveReport | None) -> ArchiveReport:
    def refused(problem: str) -> ArchiveReport:
        return ArchiveReport(ref.report_id, None, ref.source, problem, None, ref.member,
                             ref.index)

    if ref.problem is not None:
        return replace(refused(ref.problem), warning=ref.warning)
    if report is None:
        return refused(f"{ref.source}: no longer in the archive (removed while the run was "
                       "reading it); the next run reads the archive afresh")
    if report.problem is not None:
        return refused(report.problem)
    if report.content_sha256 != ref.sha256:
        return refused(f"{ref.source}: changed while the run was reading the archive; the "
                       "next run extracts the new text")
    return replace(report, report_id=ref.report_id, source=ref.source, warning=ref.warning)


# --- one file on disk ------------------------------------------------------------------------


def read_capped(stream: IO[bytes], max_bytes: int) -> bytes | None:
    """Read at most max_bytes; None when there is more (a member lying about its size)."""
    chunks, total = [], 0
    while True:
        chunk = stream.read(min(_READ_CHUNK, max_bytes + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            return None


def too_big(size: int | str, max_bytes: int) -> str:
    return (f"{size} bytes exceeds the {max_bytes}-byte limit for one report; split it or "
            "raise the limit (--max-report-bytes)")


def read_text_file(path: Path, max_bytes: int, *, keep_bom: bool = True) -> Decoded:
    """Read one file (at most `max_bytes`) and decode it with the report rules
    (`ingest.encoding`); `keep_bom=False` for `.ann` files. Never raises for bad content: an
    oversized, unreadable or undecodable file, or one that is not a regular file (a FIFO, a
    device, a link: see `ingest.tree.open_regular`), is a `Decoded` without text and with the
    error."""
    where = display(path)
    try:
        with open_regular(path) as stream:
            size = os.fstat(stream.fileno()).st_size
            if size > max_bytes:
                return Decoded(None, None, (error(where, None, "too-large",
                                                  too_big(size, max_bytes)),))
            data = read_capped(stream, max_bytes)
    except NotRegularFile as exc:
        return Decoded(None, None, (error(where, None, SPECIAL_FILE,
                                          f"{exc}; not read: put the report's text file "
                                          "there"),))
    except OSError as exc:
        return Decoded(None, None, (error(where, None, "unreadable",
                                          f"cannot read the file ({exc.strerror or exc}); "
                                          "check permissions"),))
    if data is None:  # grew between the stat and the read
        return Decoded(None, None, (error(where, None, "too-large",
                                          too_big(f"more than {max_bytes}", max_bytes)),))
    return decode_bytes(data, where, keep_bom=keep_bom)


# C0 controls but tab, LF, VT, FF and CR (as ingest.encoding allows), DEL and the C1 controls:
# bytes no report holds (NUL included: a table cell or a CSV has no byte-level check before).
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")


def unusable_text(text: str, path: str) -> Finding | None:
    """The one rule for a decoded text that is no report, whichever reader read it (corpus
    file, folder, zip or tar member, Parquet or CSV cell): nothing in it but white space and
    invisible characters (zero-width space, BOM, word joiner: Unicode format characters),
    control characters, or nothing but a number (a table whose columns are the wrong way
    round). None when the text is usable."""
    if all(c.isspace() or unicodedata.category(c) == "Cf" for c in text):
        what = "empty" if not text else "only white space or invisible characters"
        return error(path, None, "empty-report",
                     f"the report text is {what}; add the text or remove the report")
    control = _CONTROL.search(text)
    if control is not None:
        at = control.start()
        line = text.count("\n", 0, at) + 1
        return error(path, line, "control-characters",
                     f"the text holds the control character U+{ord(control.group()):04X} at "
                     f"character {at} (line {line}): no report text does; remove it, or "
                     "replace the file with the report's plain text")
    if _NUMBER.fullmatch(text):
        return error(path, None, "not-report-text",
                     f"the text is only the number {text.strip()!r}, not a report; check "
                     "that the text column (or file) holds the report's text")
    return None


# --- members -> reports ----------------------------------------------------------------------


def _refused(report: ArchiveReport, problem: str) -> ArchiveReport:
    return replace(report, text=None, problem=problem, warning=None)


def _problem(report_id: str, source: str, member: str, index: int, problem: str
             ) -> ArchiveReport:
    return ArchiveReport(report_id, None, source, problem, None, member, index)


def _from_decoded(report_id: str, source: str, member: str, index: int, decoded: Decoded
                  ) -> ArchiveReport:
    notes = "; ".join(f.format() for f in decoded.findings) or None
    if decoded.text is None:
        return _problem(report_id, source, member, index, notes or f"{source}: cannot decode")
    return _from_text(report_id, source, member, index, decoded.text, notes)


def _from_text(report_id: str, source: str, member: str, index: int, text: str,
               warning: str | None = None) -> ArchiveReport:
    unusable = unusable_text(text, source)
    if unusable is not None:
        return _problem(report_id, source, member, index, unusable.format())
    return ArchiveReport(report_id, text, source, None, warning, member, index)


def _from_read(report_id: str, source: str, member: str, index: int, data: bytes | None,
               max_bytes: int) -> ArchiveReport:
    """The report of a capped read (`read_capped`): refused when it hit the cap."""
    if data is None:
        return _problem(report_id, source, member, index,
                        f"{source}: {too_big(f'more than {max_bytes}', max_bytes)} "
                        "(possible zip bomb)")
    return _from_decoded(report_id, source, member, index, decode_bytes(data, source))


def _member_id(name: str) -> tuple[str | None, str]:
    """(report id, problem) for an archive member name; id None when the name is unsafe.

    A name that is absolute or climbs out with `..` would escape the output folder when the
    archive is unpacked or the report is re-written (zip slip), so it is refused, not cleaned.
    """
    norm = name.replace("\\", "/")
    parts = norm.split("/")
    if norm.startswith("/") or (len(parts[0]) == 2 and parts[0][1] == ":") or ".." in parts:
        return None, (f"unsafe member path {name!r} escapes the archive's folder (absolute or "
                      "'..'); refused, repack the archive with relative paths")
    clean = posixpath.normpath(norm)
    return clean[: -len(".txt")], ""


def _is_report_name(name: str) -> bool:
    return name.lower().endswith(".txt") and not name.endswith("/")


Wanted = dict[int, ReportRef] | None  # None: every member


def _iter_folder(root: Path, max_bytes: int, wanted: Wanted, skip: Path | None = None
                 ) -> Iterator[ArchiveReport]:
    if wanted is not None:
        for index, ref in sorted(wanted.items()):
            entry = member_entry(root, ref.member, _FOLDER_SUFFIXES)
            if entry is not None:
                yield _folder_member(entry, index, max_bytes)
        return
    inside = _inside(root, skip)
    entries = (e for e in walk_tree(root, _FOLDER_SUFFIXES)
               if inside is None or not e.member.startswith(inside))
    for index, entry in enumerate(entries):
        yield _folder_member(entry, index, max_bytes)


def _inside(root: Path, skip: Path | None) -> str | None:
    """`skip` as a member prefix of `root` ("pre/"), or None when it is not inside it."""
    if skip is None:
        return None
    try:
        return skip.relative_to(root.resolve()).as_posix() + "/"
    except ValueError:
        return None


_FOLDER_SUFFIXES = (".txt",)


def _folder_member(entry: TreeEntry, index: int, max_bytes: int) -> ArchiveReport:
    """A folder member read by the tree rule (links inside the root only, regular files only,
    UTF-8 names, nested archives and linked folders named)."""
    member = entry.member
    report_id = entry.stem if entry.suffix in _FOLDER_SUFFIXES else member
    source = entry.where
    if entry.path is None:
        return _problem(report_id, source, member, index, entry.refusal)
    decoded = read_text_file(entry.path, max_bytes)
    if decoded.text is None:
        problems = "; ".join(_folder_problem(f) for f in decoded.findings)
        return _problem(report_id, source, member, index, problems or f"{source}: cannot read")
    return _from_decoded(report_id, source, member, index, decoded)


def _folder_problem(finding: Finding) -> str:
    if finding.code in ("too-large", "unreadable", SPECIAL_FILE):
        return f"{finding.path}: {finding.message}"
    return finding.format()


def _iter_zip(path: Path, max_bytes: int, wanted: Wanted) -> Iterator[ArchiveReport]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"{path}: not a readable zip archive: {exc}") from exc
    with zf:
        infos = zf.infolist()
        indexes = range(len(infos)) if wanted is None else sorted(i for i in wanted
                                                                  if i < len(infos))
        for index in indexes:
            info = infos[index]
            if info.is_dir():
                continue
            if matched_suffix(info.filename, NESTED_ARCHIVE_SUFFIXES):
                yield _nested(info.filename, f"{path}!{info.filename}", index, "zip")
            elif _is_report_name(info.filename):
                yield _zip_member(zf, info, index, path, max_bytes)


def _zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, index: int, path: Path,
                max_bytes: int) -> ArchiveReport:
    name = info.filename
    source = f"{path}!{name}"
    report_id, problem = _member_id(name)
    if report_id is None:
        return _problem(_without_txt(name), source, name, index, f"{source}: {problem}")
    mode = info.external_attr >> 16  # Unix mode bits, when the zip was made on Unix
    if stat.S_IFMT(mode) and not stat.S_ISREG(mode):  # type bits absent: a plain file
        return _problem(report_id, source, name, index,
                        f"{source}: not a regular file (a link or device in the zip); "
                        "refused, store the report itself in the archive")
    # The declared size is checked first so a bomb is never inflated; the read is still
    # capped because the header can lie.
    if info.file_size > max_bytes:
        return _problem(report_id, source, name, index,
                        f"{source}: {too_big(info.file_size, max_bytes)} (possible zip bomb)")
    try:
        with zf.open(info) as stream:
            data = read_capped(stream, max_bytes)
    except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as exc:
        return _problem(report_id, source, name, index, f"{source}: cannot read member: {exc}")
    return _from_read(report_id, source, name, index, data, max_bytes)


def _nested(name: str, source: str, index: int, container: str) -> ArchiveReport:
    return _problem(name, source, name, index, f"{source}: {nested_archive_problem(container)}")


def _without_txt(name: str) -> str:
    return name[: -len(".txt")] if name.lower().endswith(".txt") else name


def _check_gzip(path: Path) -> None:
    """Decompress a gzip file to its end, which checks its CRC-32 and length: a tar.gz is
    streamed member by member, and gzip checks the CRC only at the end, after every member
    (corrupt bytes included) would already have been handed out as reports."""
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(_READ_CHUNK):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"{path}: corrupt archive ({exc}); no report of it is read: copy "
                           "the archive again from its source") from exc


def _starts_with(path: Path, magic: bytes) -> bool:
    try:
        with path.open("rb") as stream:
            return stream.read(len(magic)) == magic
    except OSError:
        return False


def _iter_tar(path: Path, max_bytes: int, wanted: Wanted) -> Iterator[ArchiveReport]:
    if wanted is None and _starts_with(path, b"\x1f\x8b"):
        _check_gzip(path)
    # "r|*" streams member by member without seeking, so a .tar.gz is never decompressed whole;
    # it also means a wanted member is reached only by reading every member before it.
    try:
        tf = tarfile.open(path, mode="r|*")  # noqa: SIM115 (closed by the with below)
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(f"{path}: not a readable tar archive: {exc}") from exc
    last = None if wanted is None else max(wanted, default=-1)
    with tf:
        try:
            for index, member in enumerate(tf):
                if last is not None and index > last:
                    return
                if member.isdir() or not (wanted is None or index in wanted):
                    continue
                if matched_suffix(member.name, NESTED_ARCHIVE_SUFFIXES):
                    yield _nested(member.name, f"{path}!{member.name}", index, "tar")
                elif _is_report_name(member.name):
                    yield _tar_member(tf, member, index, path, max_bytes)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ArchiveError(f"{path}: archive is truncated or corrupt after the members "
                               f"already read: {exc}") from exc


def _tar_member(tf: tarfile.TarFile, member: tarfile.TarInfo, index: int, path: Path,
                max_bytes: int) -> ArchiveReport:
    name = member.name
    source = f"{path}!{name}"
    report_id, problem = _member_id(name)
    if report_id is None:
        return _problem(_without_txt(name), source, name, index, f"{source}: {problem}")
    if not member.isfile():
        return _problem(report_id, source, name, index,
                        f"{source}: not a regular file (link or device); refused, store the "
                        "report itself in the archive")
    if member.size > max_bytes:
        return _problem(report_id, source, name, index,
                        f"{source}: {too_big(member.size, max_bytes)} (possible zip bomb)")
    stream = tf.extractfile(member)
    data = None if stream is None else read_capped(stream, max_bytes)
    return _from_read(report_id, source, name, index, data, max_bytes)


def _table_row(report_id: object, text: object, path: Path, row: int, max_bytes: int
               ) -> ArchiveReport:
    source = f"{path}#row {row}"
    rid = "" if report_id is None else str(report_id).strip()
    if not rid:
        return _problem(f"<missing id: {source}>", source, "", row,
                        f"{source}: empty report_id; give every row an id")
    if text is None:
        return _problem(rid, source, "", row, f"{source}: text is null; nothing to extract")
    if isinstance(text, bytes | bytearray):
        if len(text) > max_bytes:
            return _problem(rid, source, "", row, f"{source}: {too_big(len(text), max_bytes)}")
        return _from_decoded(rid, source, "", row, decode_bytes(bytes(text), source))
    text = str(text)
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        return _problem(rid, source, "", row, f"{source}: {too_big(size, max_bytes)}")
    return _from_text(rid, source, "", row, text)


def _check_columns(path: Path, names: list[str]) -> None:
    missing = [c for c in ("report_id", "text") if c not in names]
    if missing:
        raise ArchiveError(f"{path}: table has no column(s) {missing} (has {names}); a table "
                           "archive needs 'report_id' and 'text' columns")


def _iter_parquet(path: Path, max_bytes: int, wanted: Wanted) -> Iterator[ArchiveReport]:
    """Row group by row group: a group that cannot be read (corrupt pages) turns its rows into
    problems naming the file, the row and the group, and the other groups are still read. A
    `text` column that is not text (a list, a number) turns every row into a problem."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"{path}: not a readable Parquet file: {exc}") from exc
    _check_columns(path, pf.schema_arrow.names)
    text_type = pf.schema_arrow.field("text").type
    wrong_type = None if _is_text_type(text_type) else str(text_type)
    columns = ["report_id"] if wrong_type else ["report_id", "text"]
    first = 0
    for group in range(pf.metadata.num_row_groups):
        rows = pf.metadata.row_group(group).num_rows
        here = range(first, first + rows) if wanted is None else [
            i for i in sorted(wanted) if first <= i < first + rows]
        if here:
            yield from _parquet_group(pf, path, group, first, here, columns, wrong_type,
                                      max_bytes)
        first += rows


def _parquet_group(pf, path: Path, group: int, first: int, rows: Sequence[int],
                   columns: list[str], wrong_type: str | None, max_bytes: int
                   ) -> Iterator[ArchiveReport]:
    import pyarrow as pa

    done = 0
    try:
        if len(rows) == pf.metadata.row_group(group).num_rows:  # the whole group, in batches
            batches = pf.iter_batches(batch_size=TABLE_BATCH_ROWS, row_groups=[group],
                                      columns=columns)
            for batch in batches:
                for values in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                    yield _parquet_row(values, path, first + done, wrong_type, max_bytes)
                    done += 1
        else:  # a few wanted rows (read_reports): read the group, take those
            table = pf.read_row_group(group, columns=columns)
            for i in rows:
                values = tuple(table.column(c)[i - first].as_py() for c in range(len(columns)))
                yield _parquet_row(values, path, i, wrong_type, max_bytes)
                done += 1
    except (OSError, ValueError, pa.ArrowException) as exc:
        ids = _group_ids(pf, group)
        for i in rows[done:]:
            source = f"{path}#row {i}"
            rid = ids[i - first] if ids and ids[i - first] else f"<unreadable: {source}>"
            yield _problem(str(rid), source, "", i,
                           f"{source}: row group {group} of the Parquet file cannot be read "
                           f"({_first_line(exc)}); the file is damaged: write it again from "
                           "its source")


def _parquet_row(values: tuple, path: Path, row: int, wrong_type: str | None, max_bytes: int
                 ) -> ArchiveReport:
    if wrong_type is None:
        return _table_row(values[0], values[1], path, row, max_bytes)
    source = f"{path}#row {row}"
    rid = "" if values[0] is None else str(values[0]).strip()
    return _problem(rid or f"<missing id: {source}>", source, "", row,
                    f"{source}: the text column is {wrong_type}, not text; give each report's "
                    "text as one string")


def _group_ids(pf, group: int) -> list | None:
    """The report ids of a row group whose text cannot be read, when its ids still can."""
    try:
        return pf.read_row_group(group, columns=["report_id"]).column(0).to_pylist()
    except Exception:  # noqa: BLE001 (any failure here only means the ids are unknown)
        return None


def _is_text_type(arrow_type) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return (pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
            or pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type)
            or getattr(pa.types, "is_string_view", lambda _: False)(arrow_type)
            or pa.types.is_null(arrow_type))


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def random_access(path: str | Path) -> bool:
    """True when `read_reports` reaches a member without reading much else: folders, zips, and
    Parquet files whose row groups are small (a row group is the least Parquet can read)."""
    kind = archive_kind(path)
    if kind != "parquet":
        return kind in RANDOM_ACCESS
    import pyarrow.parquet as pq

    try:
        metadata = pq.ParquetFile(path).metadata
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"{path}: not a readable Parquet file: {exc}") from exc
    return all(metadata.row_group(g).num_rows <= PARQUET_GROUP_ROWS
               for g in range(metadata.num_row_groups))


def _iter_csv(path: Path, max_bytes: int, wanted: Wanted) -> Iterator[ArchiveReport]:
    import pandas as pd

    last = None if wanted is None else max(wanted, default=-1)
    try:
        chunks = pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=TABLE_BATCH_ROWS,
                             encoding="utf-8-sig")
        row = 0
        for chunk in chunks:
            _check_columns(path, list(chunk.columns))
            for report_id, text in zip(chunk["report_id"], chunk["text"], strict=True):
                # Rows, not lines: a quoted newline is inside a row.
                if wanted is None or row in wanted:
                    yield _table_row(report_id, text, path, row, max_bytes)
                row += 1
            if last is not None and row > last:
                return
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ArchiveError(f"{path}: cannot read as a UTF-8 CSV table: {exc}; save it as UTF-8 "
                           "with a header row 'report_id,text'") from exc


_READERS = {"folder": _iter_folder, "zip": _iter_zip, "tar": _iter_tar,
            "parquet": _iter_parquet, "csv": _iter_csv}
