"""Read a corpus folder of brat pairs, validate every report, and set the bad ones aside.

A report is `NAME.txt` with an optional `NAME.ann` anywhere under the root; its id is the
`.txt` path relative to the root without the suffix, with `/` separators (`2024/r001`).
Every file that looks like part of a report yields exactly one `LoadedReport`, so the count of
reports read always equals valid + quarantined; nothing is skipped silently.

- `.txt` without `.ann`: an unannotated report (`Document.annotated=False`), valid.
- `.ann` without `.txt`: quarantined under the `.ann`'s own id.
- empty or blank `.txt`: quarantined (an empty report); empty `.ann`: a report with no annotations.
- errors quarantine; warnings alone do not.

`iter_corpus` streams one report at a time (an archive may be big); `load_corpus` collects them
and applies the policy; `quarantine` copies the bad reports' files aside with `findings.json`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.archive import empty_report, read_text_file
from ingest.atomic import atomic_path, write_json_atomic
from ingest.brat_reader import parse_ann
from ingest.document import Document
from ingest.findings import Finding, error, has_errors
from ingest.schema import Schema
from ingest.validate import AnnLines, validate_document

VALID = "valid"
QUARANTINED = "quarantined"
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
    status: str

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


def discover(root: Path) -> Iterator[tuple[str, Path | None, Path | None]]:
    """`(report_id, txt_path, ann_path)` for every report under `root`, sorted by id, walking
    one folder at a time so a big tree is not listed into memory at once."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        stems: dict[str, dict[str, Path]] = {}
        for name in filenames:
            stem, suffix = os.path.splitext(name)
            if suffix in (".txt", ".ann"):
                stems.setdefault(stem, {})[suffix] = Path(dirpath) / name
        for stem in sorted(stems):
            pair = stems[stem]
            first = pair.get(".txt") or pair[".ann"]
            report_id = first.relative_to(root).with_suffix("").as_posix()
            yield report_id, pair.get(".txt"), pair.get(".ann")


def read_report(report_id: str, txt_path: Path | None, ann_path: Path | None, schema: Schema,
                max_bytes: int = DEFAULT_MAX_REPORT_BYTES) -> LoadedReport:
    """Read, decode, parse and validate one report. Never raises for bad content."""
    findings: list[Finding] = []

    def done(document: Document | None) -> LoadedReport:
        status = QUARANTINED if has_errors(findings) or document is None else VALID
        return LoadedReport(report_id, txt_path, ann_path,
                            document if status == VALID else None, tuple(findings), status)

    if txt_path is None:
        findings.append(error(str(ann_path), None, "missing-txt",
                              f"{ann_path} has no {Path(str(ann_path)).with_suffix('.txt').name}"
                              " beside it; add the report text or remove the .ann"))
        return done(None)
    text = _read_text(txt_path, findings, max_bytes, keep_bom=True)
    if text is None:
        return done(None)
    empty = empty_report(text, str(txt_path))
    if empty is not None:
        findings.append(empty)
        return done(None)
    if ann_path is None:
        return done(Document(doc_id=report_id, text=text, annotated=False, source=str(txt_path)))
    ann_text = _read_text(ann_path, findings, max_bytes, keep_bom=False)
    if ann_text is None:
        return done(None)
    parsed = parse_ann(ann_text, str(ann_path))
    findings.extend(parsed.findings)
    document = Document(doc_id=report_id, text=text, entities=parsed.entities,
                        relations=parsed.relations, others=parsed.others, annotated=True,
                        source=str(txt_path))
    lines = AnnLines(parsed.entity_lines, parsed.relation_lines, parsed.other_lines)
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
    for report_id, txt_path, ann_path in discover(root):
        yield read_report(report_id, txt_path, ann_path, schema, max_bytes)


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
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
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
