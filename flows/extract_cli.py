"""`angiokg extract MODEL_DIR ARCHIVE --out OUT`: an archive of reports into the Parquet datasets.

It lives in `flows` because it wires the model (`extraction`) to the Parquet sink (`export`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from extraction.batch import DEFAULT_SHARD_REPORTS
from flows.extract_job import ExtractSettings, run_extraction
from ingest.archive import DEFAULT_MAX_BYTES, ArchiveError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "extract",
        help="extract entities, relations and records from an archive of reports into Parquet",
        description="Read a folder of .txt reports, a .zip/.tar.gz of them, or a Parquet/CSV "
                    "table with report_id and text columns; write the reports, entities, "
                    "triples and records datasets under OUT and a run summary. Reports this "
                    "model already processed (OUT/_manifest.sqlite) are skipped; an "
                    "interrupted run resumes when started again with the same --run-id.",
    )
    p.add_argument("model_dir", metavar="MODEL_DIR", help="trained model directory")
    p.add_argument("archive", metavar="ARCHIVE", help="folder, .zip, .tar.gz, .parquet or .csv")
    p.add_argument("--out", required=True, help="output folder for the datasets")
    p.add_argument("--run-id", default=None,
                   help="name of this run's partition (default: run-<UTC time>); give the "
                        "same id to resume an interrupted run")
    p.add_argument("--batch-size", type=int, default=64, help="sentences per model batch")
    p.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_REPORTS,
                   help="reports per output shard (the unit written and resumed)")
    p.add_argument("--max-report-bytes", type=int, default=DEFAULT_MAX_BYTES,
                   help="refuse reports larger than this (zip bomb guard)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    p.set_defaults(handler=run_extract)


def run_extract(args: argparse.Namespace) -> int:
    from extraction.predict import Extractor  # torch is loaded only when a model is used

    extractor = Extractor.load(args.model_dir, device=args.device)
    settings = ExtractSettings(run_id=args.run_id, batch_size=args.batch_size,
                               shard_reports=args.shard_size,
                               max_report_bytes=args.max_report_bytes)
    try:
        summary = run_extraction(args.archive, args.out, extractor, settings=settings)
    except (ArchiveError, ValueError) as exc:
        print(f"angiokg extract: {exc}", file=sys.stderr)
        return 2
    print(summary.format())
    print(json.dumps(summary.to_dict(), ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m flows.extract_cli extract ...` works before the command is listed in
    `flows.cli.COMMAND_MODULES`."""
    parser = argparse.ArgumentParser(prog="angiokg")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
