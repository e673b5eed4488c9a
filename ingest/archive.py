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
reads `.txt` and `.ann` files with it, so there is one rule for how bytes become text.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tarfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from ingest.encoding import Decoded, decode_bytes
from ingest.findings import Finding, error

# A real angiography report is a few kB; 10 MB leaves room for pathological but honest input
# while refusing zip bombs before they are inflated.
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
TABLE_BATCH_ROWS = 256
_READ_CHUNK = 1024 * 1024
KINDS = ("folder", "zip", "tar", "parquet", "csv")
# Kinds whose members `read_reports` can reach without reading everything before them.
RANDOM_ACCESS = frozenset({"folder", "zip", "parquet"})


class ArchiveError(ValueError):
    """The archive as a whole cannot be read (its members' problems are reported per report)."""


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_sha256(text: str | None, problem: str | None) -> str:
    """What the incremental manifest keys on: the decoded text's hash, or for a refused member
    the hash of its problem (so a restarted run does not report it twice)."""
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


def iter_reports(archive: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES
                 ) -> Iterator[ArchiveReport]:
    """Every report of `archive`, in a deterministic order; duplicates of an id are quarantined.

    The first occurrence of a report id wins; later ones come out with a problem naming the
    source of the first, so each input is accounted for exactly once.
    """
    reader = _READERS[archive_kind(archive)]
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
    back refused saying so (the archive changed while the run was using it).
    """
    wanted = {ref.index: ref for ref in refs if ref.problem is None}
    found: dict[int, ArchiveReport] = {}
    if wanted:
        reader = _READERS[archive_kind(archive)]
        for report in reader(Path(archive), max_bytes, wanted):
            ref = wanted.get(report.index)
            if ref is not None and report.member == ref.member:
                found[report.index] = replace(report, report_id=ref.report_id)
    return [_as_planned(ref, found.get(ref.index)) for ref in refs]


def _as_planned(ref: ReportRef, report: ArchiveReport | None) -> ArchiveReport:
    if ref.problem is not None:
        return ArchiveReport(ref.report_id, None, ref.source, ref.problem, ref.warning,
                             ref.member, ref.index)
    if report is None:
        return ArchiveReport(ref.report_id, None, ref.source,
                             f"{ref.source}: no longer in the archive (removed while the run "
                             "was reading it); the next run reads the archive afresh",
                             None, ref.member, ref.index)
    if report.problem is None and report.content_sha256 != ref.sha256:
        return ArchiveReport(ref.report_id, None, ref.source,
                             f"{ref.source}: changed while the run was reading the archive; "
                             "the next run extracts the new text", None, ref.member, ref.index)
    return report


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
    oversized, unreadable or undecodable file is a `Decoded` without text and with the error."""
    where = str(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return Decoded(None, None, (error(where, None, "too-large", too_big(size, max_bytes)),))
        with path.open("rb") as stream:
            data = read_capped(stream, max_bytes)
    except OSError as exc:
        return Decoded(None, None, (error(where, None, "unreadable",
                                          f"cannot read the file ({exc.strerror or exc}); "
                                          "check permissions"),))
    if data is None:  # grew between the stat and the read
        return Decoded(None, None, (error(where, None, "too-large",
                                          too_big(f"more than {max_bytes}", max_bytes)),))
    return decode_bytes(data, where, keep_bom=keep_bom)


def empty_report(text: str, path: str) -> Finding | None:
    """The one rule for a report with nothing in it (blank counts as empty)."""
    if text.strip():
        return None
    return error(path, None, "empty-report",
                 "the report text is empty; add the text or remove the report")


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
    empty = empty_report(text, source)
    if empty is not None:
        return _problem(report_id, source, member, index,
                        f"{source}: empty report (no text); nothing to extract")
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


def _iter_folder(root: Path, max_bytes: int, wanted: Wanted) -> Iterator[ArchiveReport]:
    if wanted is not None:
        for index, ref in sorted(wanted.items()):
            if os.path.lexists(root / ref.member):
                yield _folder_member(root, ref.member, index, max_bytes)
        return
    index = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for filename in sorted(filenames):
            if not _is_report_name(filename):
                continue
            member = (Path(dirpath) / filename).relative_to(root).as_posix()
            yield _folder_member(root, member, index, max_bytes)
            index += 1


def _folder_member(root: Path, member: str, index: int, max_bytes: int) -> ArchiveReport:
    path = root / member
    report_id = Path(member).with_suffix("").as_posix()
    source = str(path)
    if _member_id(member)[0] is None:  # a reference must not lead out of the folder
        return _problem(report_id, source, member, index, f"{source}: {_member_id(member)[1]}")
    decoded = read_text_file(path, max_bytes)
    if decoded.text is None:
        problems = "; ".join(_folder_problem(f) for f in decoded.findings)
        return _problem(report_id, source, member, index, problems or f"{source}: cannot read")
    return _from_decoded(report_id, source, member, index, decoded)


def _folder_problem(finding: Finding) -> str:
    if finding.code in ("too-large", "unreadable"):
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
            if info.is_dir() or not _is_report_name(info.filename):
                continue
            yield _zip_member(zf, info, index, path, max_bytes)


def _zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, index: int, path: Path,
                max_bytes: int) -> ArchiveReport:
    name = info.filename
    source = f"{path}!{name}"
    report_id, problem = _member_id(name)
    if report_id is None:
        return _problem(name.removesuffix(".txt"), source, name, index, f"{source}: {problem}")
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


def _iter_tar(path: Path, max_bytes: int, wanted: Wanted) -> Iterator[ArchiveReport]:
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
                if not _is_report_name(member.name) or member.isdir():
                    continue
                if wanted is None or index in wanted:
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
        return _problem(name.removesuffix(".txt"), source, name, index, f"{source}: {problem}")
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
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"{path}: not a readable Parquet file: {exc}") from exc
    _check_columns(path, pf.schema_arrow.names)
    columns = ["report_id", "text"]
    if wanted is None:
        row = 0
        for batch in pf.iter_batches(batch_size=TABLE_BATCH_ROWS, columns=columns):
            for rid, text in _pairs(batch):
                yield _table_row(rid, text, path, row, max_bytes)
                row += 1
        return
    # Only the row groups holding wanted rows are read.
    first = 0
    for group in range(pf.metadata.num_row_groups):
        rows = pf.metadata.row_group(group).num_rows
        here = [i for i in sorted(wanted) if first <= i < first + rows]
        if here:
            table = pf.read_row_group(group, columns=columns)
            ids, texts = table.column(0), table.column(1)
            for i in here:
                yield _table_row(ids[i - first].as_py(), texts[i - first].as_py(), path, i,
                                 max_bytes)
        first += rows


def _pairs(batch) -> Iterable[tuple[object, object]]:
    return zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True)


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
