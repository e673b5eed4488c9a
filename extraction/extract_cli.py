"""`angiokg preannotate MODEL_DIR IN_DIR OUT_DIR`: model predictions as brat files.

(`angiokg extract` writes Parquet through `export`, which this room must not import; its
command lives in `flows.extract_cli`.)
"""

from __future__ import annotations

import argparse
import logging
import sys

from extraction.preannotate import preannotate

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "preannotate",
        help="write the model's predictions as brat .ann files beside copies of the reports",
        description="Copy every .txt under IN_DIR to OUT_DIR with a .ann of the model's "
                    "predictions, valid against annotation.conf, for annotators to correct.",
    )
    p.add_argument("model_dir", metavar="MODEL_DIR", help="trained model directory")
    p.add_argument("in_dir", metavar="IN_DIR", help="folder of .txt reports (recursive)")
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder for the .txt + .ann pairs")
    p.add_argument("--batch-size", type=int, default=64, help="sentences per model batch")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    p.set_defaults(handler=run_preannotate)


def run_preannotate(args: argparse.Namespace) -> int:
    from extraction.predict import Extractor  # torch is loaded only when a model is used

    extractor = Extractor.load(args.model_dir, device=args.device)
    try:
        summary = preannotate(extractor, args.in_dir, args.out_dir, batch_size=args.batch_size)
    except ValueError as exc:
        print(f"angiokg preannotate: {exc}", file=sys.stderr)
        return 2
    print(summary.format())
    return 0
