"""Read a corpus folder of brat pairs, validate every report, and set the bad ones aside.

A report is `NAME.txt` with an optional `NAME.ann` anywhere under the root; its id is the
`.txt` path relative to the root without the suffix, with `/` separators (`2024/r001`).
Every file that looks like part of a report yields exactly one `LoadedReport`, so the count of
reports read always equals valid + quarantined; nothing is skipped silently.

- `.txt` without `.ann`: an unannotated report (`Document.annotated=False`), valid.
- `.ann` without `.txt`: quarantined under the `.ann`'s own id.
- a text that is no report (empty, blank or invisible only, control characters, a bare number:
  `ingest.archive.unusable_text`): quarantined; empty `.ann`: a report with no annotations.
- which files count and how they are opened is `ingest.tree`'s rule, shared with the folder
  archive: extensions in any case (`A.TXT` + `A.ANN`); links followed only inside the root;
  FIFOs, devices, names that are not UTF-8, nested archives and linked folders quarantined with
  the reason (never opened), each under its own id.
- errors quarantine; warnings alone do not.
- the model's `AnnotatorNotes` (`model 0.41`, written by preannotate/select) are stripped from
  the document before validation: they are not annotations (ingest.model_notes).

`iter_corpus` streams one report at a time (an archive may be big); `load_corpus` collects them
and applies the policy; `quarantine` copies the bad reports' files aside with `findings.json`.
"""

from __future__ import annotations

import json
import posixpath
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ingest.archive import read_text_file, unusable_text
from ingest.atomic import atomic_path, write_json_atomic
from ingest.brat_reader import parse_ann
from ingest.document import Document
from ingest.findings import Finding, error, has_errors
from ingest.model_notes import strip_model_notes
from ingest.schema import Schema
from ingest.tree import TreeEntry, open_regular, walk_tree
from ingest.validate import AnnLines, validate_document


class LoadStatus(StrEnum):
    """What became of a corpus report: it loads, or it is set aside with its findings."""

    VALID = "valid"
    QUARANTINED = "quarantined"


VALID, QUARANTINED = LoadStatus.VALID, LoadStatus.QUARANTINED
POLICIES = ("lenient", "strict")
# Angiography reports are a few KB; a multi-MB "report" is a concatenation or a wrong file, and
# reading it whole would hold up the run.
DEFAULT_MAX_REPORT_BYTES = 1_000_000


@dataclass(frozen=True)
class LoadedReport:
    """One report of the corpus and what became of it. `document` is None when quarantined."""

    report_id: str
    txt_path: Path | None
    ann_path: Path | None
    document: Document | None
    findings: tuple[Finding, ...]
    status: LoadStatus

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.is_error)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.is_error)


@dataclass(frozen=True)
class CorpusLoad:
    root: Path
    reports: tuple[LoadedReport, ...]

    @property
    def valid(self) -> tuple[LoadedReport, ...]:
        return tuple(r for r in self.reports if r.status == VALID)

    @property
    def quarantined(self) -> tuple[LoadedReport, ...]:
        return tuple(r for r in self.reports if r.status == QUARANTINED)

    @property
    def documents(self) -> tuple[Document, ...]:
        return tuple(r.document for r in self.valid if r.document is not None)

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for r in self.reports for f in r.findings)

    @property
    def to_report(self) -> tuple[Finding, ...]:
        """What a night must tell its operators: each quarantined report's errors and each
        loaded report's warnings (a loaded one goes into training as it was read)."""
        return tuple(f for r in self.reports
                     for f in (r.errors if r.status == QUARANTINED else r.warnings))

    @property
    def warning_count(self) -> int:
        return sum(len(r.warnings) for r in self.reports)


class CorpusInvalid(ValueError):
    """Raised by `load_corpus(policy="strict")` when any report has an error."""

    def __init__(self, load: CorpusLoad, limit: int = 20) -> None:
        errors = [f for f in load.findings if f.is_error]
        lines = [f.format() for f in errors[:limit]]
        if len(errors) > limit:
            lines.append(f"... and {len(errors) - limit} more")
        super().__init__(
            f"{load.root}: {len(load.quarantined)} of {len(load.reports)} reports have errors "
            f"({len(errors)} findings); fix them or run with the lenient policy to quarantine "
            "them:\n" + "\n".join(lines)
        )
        self.load = load


@dataclass(frozen=True)
class ReportFiles:
    """The files of one report under the root. `txt` and `ann` are what to read (None when
    absent or refused); `refused` holds the tree rule's findings (`ingest.tree`: a link out of
    the root, a FIFO, a name that is not UTF-8, a nested archive, a linked folder, a second file
    of the same report differing only in the case of its extension)."""

    report_id: str
    txt: Path | None
    ann: Path | None
    refused: tuple[Finding, ...] = ()


def discover(root: Path) -> Iterator[ReportFiles]:
    """Every report under `root` as its files, folder by folder and sorted by id within one,
    holding one folder's names at a time so a big tree is not listed into memory at once.
    Extensions are matched case-insensitively (`A.TXT` + `A.ANN`, `b.Txt` + `b.ann`)."""
    folder: list[TreeEntry] = []
    for entry in walk_tree(root, (".txt", ".ann")):
        if folder and posixpath.dirname(entry.member) != posixpath.dirname(folder[0].member):
            yield from _folder_reports(folder)
            folder = []
        folder.append(entry)
    yield from _folder_reports(folder)


def _folder_reports(entries: list[TreeEntry]) -> Iterator[ReportFiles]:
    stems: dict[str, dict[str, list[TreeEntry]]] = {}
    for entry in entries:
        if entry.suffix in (".txt", ".ann"):
            stems.setdefault(entry.stem, {}).setdefault(entry.suffix, []).append(entry)
        else:  # a nested archive or a linked folder: named under its own path
            yield ReportFiles(entry.member, None, None, (_refusal(entry),))
    for stem in sorted(stems):
        files = stems[stem]
        txt, *extra_txt = files.get(".txt", [None])
        ann, *extra_ann = files.get(".ann", [None])
        refused = tuple(_refusal(e) for e in (txt, ann) if e is not None and e.path is None)
        yield ReportFiles(stem, txt.path if txt else None, ann.path if ann else None, refused)
        for kept, extra in [(txt, e) for e in extra_txt] + [(ann, e) for e in extra_ann]:
            yield ReportFiles(extra.member, None, None, (error(
                extra.where, None, "duplicate-report",
                f"a second {extra.suffix} file of report {stem} beside {kept.where}, differing "
                "only in the case of its extension; keep one of them"),))


def _refusal(entry: TreeEntry) -> Finding:
    return error(entry.where, None, entry.code or "refused", entry.problem or "not read")


def read_report(report_id: str, txt_path: Path | None, ann_path: Path | None, schema: Schema,
                max_bytes: int = DEFAULT_MAX_REPORT_BYTES, refused: Sequence[Finding] = ()
                ) -> LoadedReport:
    """Read, decode, parse and validate one report. Never raises for bad content. `refused`:
    the tree rule's findings for its files (then nothing is read: the report is quarantined)."""
    findings: list[Finding] = list(refused)

    def done(document: Document | None) -> LoadedReport:
        status = QUARANTINED if has_errors(findings) or document is None else VALID
        return LoadedReport(report_id, txt_path, ann_path,
                            document if status == VALID else None, tuple(findings), status)

    if refused:
        return done(None)
    if txt_path is None:
        findings.append(error(str(ann_path), None, "missing-txt",
                              f"{ann_path} has no {Path(str(ann_path)).with_suffix('.txt').name}"
                              " beside it; add the report text or remove the .ann"))
        return done(None)
    text = _read_text(txt_path, findings, max_bytes, keep_bom=True)
    if text is None:
        return done(None)
    unusable = unusable_text(text, str(txt_path))
    if unusable is not None:
        findings.append(unusable)
        return done(None)
    if ann_path is None:
        return done(Document(doc_id=report_id, text=text, annotated=False, source=str(txt_path)))
    ann_text = _read_text(ann_path, findings, max_bytes, keep_bom=False)
    if ann_text is None:
        return done(None)
    parsed = parse_ann(ann_text, str(ann_path))
    findings.extend(parsed.findings)
    # The model's doubt notes are not annotations: dropped before validation (ingest.model_notes)
    others, other_lines, _ = strip_model_notes(parsed.others, parsed.other_lines)
    document = Document(doc_id=report_id, text=text, entities=parsed.entities,
                        relations=parsed.relations, others=others, annotated=True,
                        source=str(txt_path))
    lines = AnnLines(parsed.entity_lines, parsed.relation_lines, other_lines)
    findings.extend(validate_document(document, schema, str(ann_path), lines))
    return done(document)


def _read_text(path: Path, findings: list[Finding], max_bytes: int, *,
               keep_bom: bool) -> str | None:
    decoded = read_text_file(path, max_bytes, keep_bom=keep_bom)
    findings.extend(decoded.findings)
    return decoded.text


def iter_corpus(root: str | Path, schema: Schema,
                max_bytes: int = DEFAULT_MAX_REPORT_BYTES) -> Iterator[LoadedReport]:
    """Stream the reports under `root`, one `LoadedReport` at a time, in id order per folder."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"corpus folder {root} does not exist or is not a folder")
    for files in discover(root):
        yield read_report(files.report_id, files.txt, files.ann, schema, max_bytes,
                          files.refused)


def load_corpus(root: str | Path, schema: Schema, policy: str = "lenient",
                max_bytes: int = DEFAULT_MAX_REPORT_BYTES) -> CorpusLoad:
    """Read every report under `root`. `lenient` keeps going and marks bad reports
    quarantined; `strict` raises `CorpusInvalid` (listing the errors) if any report has one.
    Warnings never fail a load."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    load = CorpusLoad(Path(root), tuple(iter_corpus(root, schema, max_bytes)))
    if policy == "strict" and load.quarantined:
        raise CorpusInvalid(load)
    return load


def report_record(report: LoadedReport) -> dict[str, object]:
    """JSON-ready account of one report: id, status, source files and findings."""
    return {
        "report_id": report.report_id,
        "status": report.status,
        "txt": str(report.txt_path) if report.txt_path else None,
        "ann": str(report.ann_path) if report.ann_path else None,
        "findings": [f.to_dict() for f in report.findings],
    }


def quarantine(reports: Iterable[LoadedReport], dest_dir: str | Path) -> list[Path]:
    """Copy the files of every quarantined report to `dest_dir/<report_id>.{txt,ann}` byte for
    byte, and keep `dest_dir/findings.json` listing each one's findings. The listing is merged
    with an existing one, so a run over part of a corpus keeps the others' entries; a report of
    `reports` that is valid now (fixed since) leaves the listing and its old copies are removed,
    and a report quarantined again replaces its entry and copies. Returns the copied paths."""
    dest = Path(dest_dir)
    index_path = dest / "findings.json"
    index: dict[str, object] = {}
    if index_path.exists():
        index = {r["report_id"]: r for r in json.loads(index_path.read_text("utf-8"))["reports"]}
    copied = []
    for report in reports:
        if report.report_id in index:
            _remove_copies(dest, report.report_id)
            del index[report.report_id]
        if report.status != QUARANTINED:
            continue
        for source in (report.txt_path, report.ann_path):
            if source is None:
                continue
            target = dest / f"{report.report_id}{source.suffix}"
            try:  # opened by the tree rule again: a file swapped for a FIFO since cannot block
                with (atomic_path(target) as tmp, open_regular(source) as src,
                      open(tmp, "wb") as out):
                    shutil.copyfileobj(src, out)
            except OSError:
                continue  # gone or no longer a file: the listing still names it, with why
            copied.append(target)
        index[report.report_id] = report_record(report)
    write_json_atomic(index_path, {"reports": [index[k] for k in sorted(index)]})
    return copied


def _remove_copies(dest: Path, report_id: str) -> None:
    """Delete the quarantined copies of one report, and the sub-folders that leaves empty."""
    for suffix in (".txt", ".ann"):
        (dest / f"{report_id}{suffix}").unlink(missing_ok=True)
    folder = (dest / report_id).parent
    while folder != dest and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
