"""Stream the reports of an archive, one at a time, with every bad member accounted for.

An archive is a folder of `.txt` reports (recursively), a `.zip` or `.tar.gz` of them, or a
Parquet or CSV table with `report_id` and `text` columns. `iter_reports` never holds more than
one member (or one table batch) in memory, so an archive of any size can be extracted.

A bad member never raises: it comes out as an `ArchiveReport` with `problem` set and no text, so
the run quarantines it with the reason and goes on. Only an archive that cannot be opened at
all (missing file, unknown format, table without the columns) raises `ArchiveError`.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ingest.encoding import decode_bytes

# A real angiography report is a few kB; 10 MB leaves room for pathological but honest input
# while refusing zip bombs before they are inflated.
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
TABLE_BATCH_ROWS = 256
_READ_CHUNK = 1024 * 1024


class ArchiveError(ValueError):
    """The archive as a whole cannot be read (its members' problems are reported per report)."""


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

    @property
    def content_sha256(self) -> str:
        """What the incremental manifest keys on: the decoded text's hash, or for a refused
        member the hash of its problem (so a restarted run does not report it twice)."""
        if self.text is not None:
            return text_sha256(self.text)
        return text_sha256(f"problem\0{self.problem}")


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    readers = {"folder": _iter_folder, "zip": _iter_zip, "tar": _iter_tar,
               "parquet": _iter_parquet, "csv": _iter_csv}
    reader = readers[archive_kind(archive)]
    first_seen: dict[str, str] = {}
    for report in reader(Path(archive), max_bytes):
        earlier = first_seen.get(report.report_id)
        if earlier is not None:
            yield _refused(report.report_id, report.source,
                           f"{report.source}: duplicate report id {report.report_id!r}: already "
                           f"read from {earlier}; the first one is kept, rename or remove this "
                           "one")
            continue
        first_seen[report.report_id] = report.source
        yield report


def _refused(report_id: str, source: str, problem: str) -> ArchiveReport:
    return ArchiveReport(report_id=report_id, text=None, source=source, problem=problem)


def _from_bytes(report_id: str, source: str, data: bytes) -> ArchiveReport:
    """Decode one report's bytes with the corpus reader's rules and check it is not empty."""
    decoded = decode_bytes(data, source)
    notes = "; ".join(f.format() for f in decoded.findings) or None
    if decoded.text is None:
        return _refused(report_id, source, notes or f"{source}: cannot decode")
    return _from_text(report_id, source, decoded.text, notes)


def _from_text(report_id: str, source: str, text: str, warning: str | None = None
               ) -> ArchiveReport:
    if not text.strip():
        return _refused(report_id, source, f"{source}: empty report (no text); nothing to extract")
    return ArchiveReport(report_id=report_id, text=text, source=source, warning=warning)


def _too_big(source: str, size: int | str, max_bytes: int) -> str:
    return (f"{source}: {size} bytes exceeds the {max_bytes}-byte limit for one report "
            "(possible zip bomb); split it or raise --max-report-bytes")


def _read_capped(stream: IO[bytes], max_bytes: int) -> bytes | None:
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


def _report_from_read(report_id: str, source: str, data: bytes | None, max_bytes: int
                      ) -> ArchiveReport:
    """The report of a capped read (`_read_capped`): refused when it hit the cap."""
    if data is None:
        return _refused(report_id, source, _too_big(source, f"more than {max_bytes}", max_bytes))
    return _from_bytes(report_id, source, data)


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


def _iter_folder(root: Path, max_bytes: int) -> Iterator[ArchiveReport]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for filename in sorted(filenames):
            if not _is_report_name(filename):
                continue
            path = Path(dirpath) / filename
            report_id = path.relative_to(root).with_suffix("").as_posix()
            source = str(path)
            try:
                size = path.stat().st_size
                if size > max_bytes:
                    yield _refused(report_id, source, _too_big(source, size, max_bytes))
                    continue
                with path.open("rb") as stream:
                    data = _read_capped(stream, max_bytes)
            except OSError as exc:
                yield _refused(report_id, source, f"{source}: cannot read: {exc}")
                continue
            yield _report_from_read(report_id, source, data, max_bytes)


def _iter_zip(path: Path, max_bytes: int) -> Iterator[ArchiveReport]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"{path}: not a readable zip archive: {exc}") from exc
    with zf:
        for info in zf.infolist():
            if info.is_dir() or not _is_report_name(info.filename):
                continue
            source = f"{path}!{info.filename}"
            report_id, problem = _member_id(info.filename)
            if report_id is None:
                yield _refused(info.filename.removesuffix(".txt"), source, f"{source}: {problem}")
                continue
            # The declared size is checked first so a bomb is never inflated; the read is still
            # capped because the header can lie.
            if info.file_size > max_bytes:
                yield _refused(report_id, source, _too_big(source, info.file_size, max_bytes))
                continue
            try:
                with zf.open(info) as stream:
                    data = _read_capped(stream, max_bytes)
            except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as exc:
                yield _refused(report_id, source, f"{source}: cannot read member: {exc}")
                continue
            yield _report_from_read(report_id, source, data, max_bytes)


def _iter_tar(path: Path, max_bytes: int) -> Iterator[ArchiveReport]:
    # "r|*" streams member by member without seeking, so a .tar.gz is never decompressed whole.
    try:
        tf = tarfile.open(path, mode="r|*")  # noqa: SIM115 (closed by the with below)
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(f"{path}: not a readable tar archive: {exc}") from exc
    with tf:
        try:
            for member in tf:
                if not _is_report_name(member.name) or member.isdir():
                    continue
                yield from _tar_member(tf, member, path, max_bytes)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ArchiveError(f"{path}: archive is truncated or corrupt after the members "
                               f"already read: {exc}") from exc


def _tar_member(tf: tarfile.TarFile, member: tarfile.TarInfo, path: Path, max_bytes: int
                ) -> Iterator[ArchiveReport]:
    source = f"{path}!{member.name}"
    report_id, problem = _member_id(member.name)
    if report_id is None:
        yield _refused(member.name.removesuffix(".txt"), source, f"{source}: {problem}")
        return
    if not member.isfile():
        yield _refused(report_id, source, f"{source}: not a regular file (link or device); "
                       "refused, store the report itself in the archive")
        return
    if member.size > max_bytes:
        yield _refused(report_id, source, _too_big(source, member.size, max_bytes))
        return
    stream = tf.extractfile(member)
    data = None if stream is None else _read_capped(stream, max_bytes)
    yield _report_from_read(report_id, source, data, max_bytes)


def _table_row(report_id: object, text: object, source: str, max_bytes: int) -> ArchiveReport:
    rid = "" if report_id is None else str(report_id).strip()
    if not rid:
        return _refused(f"<missing id: {source}>", source,
                        f"{source}: empty report_id; give every row an id")
    if text is None:
        return _refused(rid, source, f"{source}: text is null; nothing to extract")
    if isinstance(text, bytes | bytearray):
        if len(text) > max_bytes:
            return _refused(rid, source, _too_big(source, len(text), max_bytes))
        return _from_bytes(rid, source, bytes(text))
    text = str(text)
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        return _refused(rid, source, _too_big(source, size, max_bytes))
    return _from_text(rid, source, text)


def _check_columns(path: Path, names: list[str]) -> None:
    missing = [c for c in ("report_id", "text") if c not in names]
    if missing:
        raise ArchiveError(f"{path}: table has no column(s) {missing} (has {names}); a table "
                           "archive needs 'report_id' and 'text' columns")


def _iter_parquet(path: Path, max_bytes: int) -> Iterator[ArchiveReport]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"{path}: not a readable Parquet file: {exc}") from exc
    _check_columns(path, pf.schema_arrow.names)
    row = 0
    for batch in pf.iter_batches(batch_size=TABLE_BATCH_ROWS, columns=["report_id", "text"]):
        for report_id, text in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(),
                                   strict=True):
            yield _table_row(report_id, text, f"{path}#row {row}", max_bytes)
            row += 1


def _iter_csv(path: Path, max_bytes: int) -> Iterator[ArchiveReport]:
    import pandas as pd

    try:
        chunks = pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=TABLE_BATCH_ROWS,
                             encoding="utf-8-sig")
        row = 0
        for chunk in chunks:
            _check_columns(path, list(chunk.columns))
            for report_id, text in zip(chunk["report_id"], chunk["text"], strict=True):
                # CSV data rows start on line 2; quoted newlines make this a row, not a line.
                yield _table_row(report_id, text, f"{path}#row {row}", max_bytes)
                row += 1
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ArchiveError(f"{path}: cannot read as a UTF-8 CSV table: {exc}; save it as UTF-8 "
                           "with a header row 'report_id,text'") from exc
