"""`angiokg generate`, `angiokg stats` and `angiokg split`: make, describe and divide a corpus."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ingest.brat_writer import write_document
from ingest.corpus import discover, iter_corpus
from ingest.generator import generate_corpus
from ingest.inline_markup import MarkupError, parse_markup_file
from ingest.schema import SchemaError, load_schema
from ingest.split import SIDES, split_counts, write_split_file
from ingest.stats import corpus_stats, format_stats


def register(subparsers: argparse._SubParsersAction) -> None:
    gen = subparsers.add_parser(
        "generate", help="write synthetic angiography reports as brat files",
        description="Synthetic coronary angiography reports annotated as the guideline says. "
        "Report i of a seed is always the same report.")
    gen.add_argument("--n", type=int, required=True, help="number of reports")
    gen.add_argument("--seed", type=int, required=True)
    gen.add_argument("--out", type=Path, required=True, help="folder to write NAME.txt/.ann into")
    gen.add_argument("--unannotated", action="store_true", help="write only .txt (an archive)")
    gen.add_argument("--prefix", default="rpt", help="report id prefix (default rpt: rpt-000123)")
    gen.add_argument("--start", type=int, default=0, help="index of the first report")
    gen.set_defaults(handler=run_generate)

    stats = subparsers.add_parser(
        "stats", help="entity and relation counts by type of a brat corpus",
        description="Counts by type (the numbers of Table I of the paper) of the valid reports "
        "under DIR; reports the validator quarantines are left out and counted.")
    stats.add_argument("corpus", metavar="DIR", type=Path)
    stats.add_argument("--schema", metavar="annotation.conf", type=Path, default=None)
    stats.set_defaults(handler=run_stats)

    split = subparsers.add_parser(
        "split", help="assign each report to train/dev/test (8:1:1) and write a split file",
        description="A report's side is a hash of (seed, report id): stable as the corpus grows.")
    split.add_argument("corpus", metavar="CORPUS", type=Path)
    split.add_argument("--seed", type=int, required=True)
    split.add_argument("--out", type=Path, required=True, help="split file path (.csv or .json)")
    split.add_argument("--ratios", type=int, nargs=3, default=(8, 1, 1),
                       metavar=("TRAIN", "DEV", "TEST"))
    split.set_defaults(handler=run_split)

    markup = subparsers.add_parser(
        "markup", help="brat files from reports annotated with inline markup",
        description="Reports written with {TEXT|B1>L1} marks (ingest/inline_markup.py) become "
        "NAME.txt + NAME.ann with the offsets computed, never counted by hand.")
    markup.add_argument("sources", metavar="FILE", type=Path, nargs="+")
    markup.add_argument("--out", type=Path, required=True, help="folder to write brat pairs into")
    markup.add_argument("--schema", metavar="annotation.conf", type=Path, default=None)
    markup.set_defaults(handler=run_markup)


def _need_folder(path: Path) -> bool:
    if path.is_dir():
        return True
    print(f"error: {path} is not a folder; give the corpus folder", file=sys.stderr)
    return False


def run_generate(args: argparse.Namespace) -> int:
    if args.n < 0 or args.start < 0:
        print("error: --n and --start must not be negative", file=sys.stderr)
        return 2
    began = time.perf_counter()
    generate_corpus(args.n, args.seed, args.out, annotated=not args.unannotated,
                    prefix=args.prefix, start=args.start)
    kind = "unannotated" if args.unannotated else "annotated"
    print(f"{args.n} {kind} reports written to {args.out} "
          f"in {time.perf_counter() - began:.1f} s")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    try:
        schema = load_schema(args.schema)
    except (OSError, SchemaError) as exc:
        print(f"error: cannot load schema: {exc}", file=sys.stderr)
        return 2
    if not _need_folder(args.corpus):
        return 2
    quarantined = 0

    def documents():
        nonlocal quarantined
        for report in iter_corpus(args.corpus, schema):
            if report.document is None:
                quarantined += 1
            else:
                yield report.document

    stats = corpus_stats(documents(), schema)
    print(format_stats(stats))
    if quarantined:
        print(f"\n{quarantined} quarantined reports left out (see `angiokg validate`)")
    return 0 if stats.reports else 1


def run_split(args: argparse.Namespace) -> int:
    if not _need_folder(args.corpus):
        return 2
    report_ids = []
    for files in discover(args.corpus):
        for finding in files.refused:  # not a report that can be read: named, left out
            print(finding.format(), file=sys.stderr)
        if not files.refused:
            report_ids.append(files.report_id)
    if not report_ids:
        print(f"error: no reports (NAME.txt) under {args.corpus}", file=sys.stderr)
        return 1
    counts = split_counts(write_split_file(report_ids, args.out, args.seed, args.ratios))
    print(" ".join(f"{side}={counts[side]}" for side in SIDES)
          + f" (seed {args.seed}, split file {args.out})")
    return 0


def run_markup(args: argparse.Namespace) -> int:
    try:
        schema = load_schema(args.schema)
        documents = [d for source in args.sources for d in parse_markup_file(source, schema)]
    except (OSError, SchemaError, MarkupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for document in documents:
        write_document(document, args.out)
    print(f"{len(documents)} reports written to {args.out}")
    return 0
