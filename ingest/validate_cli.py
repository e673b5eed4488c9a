"""`angiokg validate CORPUS [--strict] [--json FILE] [--schema annotation.conf] [--quarantine DIR]`.

Prints every finding (`path:line: severity code: message`) and a summary. Exit status:
- lenient (default): 0, unless nothing could be read (no reports, or none valid): 1;
- strict: 1 when any report has an error. Warnings never fail a run, in either mode: they mark
  data the pipeline reads correctly (a BOM, a GB18030 file, an untrimmed span) but a person
  should tidy, and failing a nightly run on them would hold up good reports for cosmetic issues.
- 2 when the corpus folder or schema cannot be opened.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ingest.atomic import write_json_atomic
from ingest.corpus import CorpusLoad, iter_corpus, quarantine, report_record
from ingest.schema import SchemaError, load_schema


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate", help="check a brat corpus against annotation.conf and the guideline",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", metavar="CORPUS", type=Path, help="folder of NAME.txt/.ann")
    parser.add_argument("--strict", action="store_true",
                        help="exit non-zero when any report has an error")
    parser.add_argument("--json", metavar="FILE", type=Path,
                        help="write each report's status and findings as JSON")
    parser.add_argument("--schema", metavar="annotation.conf", type=Path, default=None,
                        help="brat annotation.conf (default: the bundled copy)")
    parser.add_argument("--quarantine", metavar="DIR", type=Path, default=None,
                        help="copy quarantined reports and findings.json into DIR")
    parser.set_defaults(handler=run_validate)


def summary(load: CorpusLoad) -> dict[str, int]:
    return {
        "reports": len(load.reports),
        "valid": len(load.valid),
        "quarantined": len(load.quarantined),
        "errors": sum(len(r.errors) for r in load.reports),
        "warnings": load.warning_count,
    }


def run_validate(args: argparse.Namespace) -> int:
    try:
        schema = load_schema(args.schema)
    except (OSError, SchemaError) as exc:
        print(f"error: cannot load schema: {exc}", file=sys.stderr)
        return 2
    if not args.corpus.is_dir():
        print(f"error: {args.corpus} is not a folder; give the corpus folder", file=sys.stderr)
        return 2
    reports = []
    for report in iter_corpus(args.corpus, schema):
        for finding in report.findings:
            print(finding.format())
        reports.append(report)
    load = CorpusLoad(args.corpus, tuple(reports))
    counts = summary(load)
    print(f"{counts['reports']} reports read, {counts['valid']} valid, "
          f"{counts['quarantined']} quarantined, {counts['errors']} errors, "
          f"{counts['warnings']} warnings")
    if args.json:
        write_json_atomic(args.json, {
            "corpus": str(args.corpus),
            "policy": "strict" if args.strict else "lenient",
            "schema_sha256": schema.sha256,
            "summary": counts,
            "reports": [report_record(r) for r in load.reports],
        })
    if args.quarantine:  # also when none is bad now: a report fixed since leaves the listing
        quarantine(load.reports, args.quarantine)
    if args.strict:
        return 1 if counts["quarantined"] else 0
    return 0 if counts["valid"] else 1
