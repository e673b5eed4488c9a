"""`angiokg extract`, `preannotate` and `select`: the run protocol from the command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ingest.archive import ArchiveError
from pipeline.defaults import DEFAULT_BATCH_SIZE, DEFAULT_MAX_BYTES, DEFAULT_SHARD_REPORTS
from pipeline.lock import OutputLocked
from pipeline.manifest import ManifestError

log = logging.getLogger(__name__)


def positive(value: str) -> int:
    """A count of at least 1 (a batch size of 0 failed every report, one at a time)."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1")
    return number


def run_id_arg(value: str) -> str:
    """A run id that can name a folder, checked before the lock is taken or a model loaded."""
    from export.published import check_name

    try:
        check_name("run id", value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def device_arg(value: str) -> str:
    """A torch device this machine has (torch is imported only when --device is given)."""
    import torch

    try:
        device = torch.device(value)
    except RuntimeError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a torch device; give cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(
            f"{value!r}: this machine has no CUDA GPU that torch can use; leave --device out "
            "(or give cpu) to run on the CPU")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=positive, default=DEFAULT_BATCH_SIZE,
                   help="sentences per model batch")
    p.add_argument("--device", default=None, type=device_arg,
                   help="torch device (default: cuda if available)")
    p.add_argument("--wait", action="store_true",
                   help="when another run is writing the output folder, wait for it to finish "
                        "(default: refuse, naming it)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "extract",
        help="extract entities, relations and records from an archive of reports into Parquet",
        description="Read a folder of .txt reports, a .zip/.tar.gz of them, or a Parquet/CSV "
                    "table with report_id and text columns; write the reports, entities, "
                    "triples and records datasets under OUT and a run summary. Reports whose "
                    "current extraction is by this model (OUT/_manifest.sqlite) are skipped; "
                    "an interrupted run resumes when started again with the same --run-id, "
                    "and a plain rerun extracts what it had not published.",
    )
    p.add_argument("model_dir", metavar="MODEL_DIR", help="trained model directory")
    p.add_argument("archive", metavar="ARCHIVE", help="folder, .zip, .tar.gz, .parquet or .csv")
    p.add_argument("--out", required=True, help="output folder for the datasets")
    p.add_argument("--run-id", default=None, type=run_id_arg,
                   help="name of this run's partition (default: run-<UTC time>-<random>); give "
                        "the same id to resume an interrupted run")
    p.add_argument("--shard-size", type=positive, default=DEFAULT_SHARD_REPORTS,
                   help="reports per output shard (the unit written and resumed)")
    p.add_argument("--max-report-bytes", type=positive, default=DEFAULT_MAX_BYTES,
                   help="refuse reports larger than this (zip bomb guard)")
    _common(p)
    p.set_defaults(handler=run_extract)

    pre = subparsers.add_parser(
        "preannotate",
        help="write the model's predictions as brat .ann files beside copies of the reports",
        description="Copy every report of IN (a folder of .txt reports or any archive extract "
                    "reads) to OUT_DIR with a .ann of the model's predictions, valid against "
                    "annotation.conf, for annotators to correct. A report whose .ann is "
                    "already in OUT_DIR is kept as it is unless --force; an OUT_DIR inside IN "
                    "is not read as input.",
    )
    pre.add_argument("model_dir", metavar="MODEL_DIR", help="trained model directory")
    pre.add_argument("in_dir", metavar="IN", help="folder of .txt reports (recursive) or archive")
    pre.add_argument("out_dir", metavar="OUT_DIR", help="folder for the .txt + .ann pairs")
    pre.add_argument("--force", action="store_true",
                     help="overwrite .ann files already in OUT_DIR (annotators' corrections!)")
    _common(pre)
    note_below_arg(pre)
    pre.set_defaults(handler=run_preannotate)
    register_select(subparsers)


def register_select(subparsers: argparse._SubParsersAction) -> None:
    from extraction.uncertainty import DEFAULT_STRATEGY, STRATEGIES
    from ingest.near_duplicates import DEFAULT_THRESHOLD

    p = subparsers.add_parser(
        "select",
        help="the N reports the model would learn most from, as a brat queue for annotators",
        description="Score every report of ARCHIVE by the corrections the model expects an "
                    "annotator to make, skip near-duplicates of annotated or better-scoring "
                    "reports, and write the top N as brat pairs with queue.csv into --out.",
    )
    p.add_argument("model_dir", metavar="MODEL_DIR", help="trained model directory")
    p.add_argument("archive", metavar="ARCHIVE",
                   help="unannotated reports: folder, .zip, .tar.gz, .parquet or .csv")
    p.add_argument("--n", type=positive, required=True, help="how many reports to queue")
    p.add_argument("--out", required=True, help="new (or empty) folder for the queue")
    p.add_argument("--exclude", metavar="ANNOTATED_DIR",
                   help="annotated corpus: its reports, and reports nearly identical to them, "
                   "are never queued")
    p.add_argument("--strategy", default=DEFAULT_STRATEGY, choices=sorted(STRATEGIES),
                   help=f"how reports are scored (default {DEFAULT_STRATEGY})")
    p.add_argument("--near-duplicate", type=float, default=DEFAULT_THRESHOLD, metavar="J",
                   help="character 4-gram Jaccard similarity at which two reports count as "
                   f"near-duplicates (default {DEFAULT_THRESHOLD})")
    p.add_argument("--seed", type=int, default=0, help="seed of the random strategy")
    _common(p)
    note_below_arg(p)
    p.set_defaults(handler=run_select)


def run_select(args: argparse.Namespace) -> int:
    from pipeline.run import RunFailed
    from pipeline.select import select_to_folder
    from pipeline.select_queue import QUEUE_CSV

    try:
        selection = select_to_folder(
            model_loader(args.model_dir, args.device), args.archive, args.out,
            args.n, wait=args.wait, note_below=args.note_below, exclude=args.exclude,
            strategy=args.strategy, seed=args.seed, threshold=args.near_duplicate,
            batch_size=args.batch_size)
    except (ArchiveError, OutputLocked, RunFailed, OSError, ValueError) as exc:
        return _fail("select", exc)
    print(selection.summary.format())
    print(f"queue: {Path(args.out) / QUEUE_CSV} (open {args.out} in brat as a collection)")
    return 0


def note_below_arg(parser: argparse.ArgumentParser) -> None:
    from ingest.model_notes import DEFAULT_NOTE_BELOW

    parser.add_argument("--note-below", type=float, default=DEFAULT_NOTE_BELOW, metavar="P",
                        help="write an AnnotatorNotes 'model 0.41' on every annotation whose "
                        f"(calibrated) confidence is under P (default {DEFAULT_NOTE_BELOW}; "
                        "0 writes none)")


def model_loader(model_dir: str, device: str | None):
    """What `run` calls once the output folder's lock is held: a refused run imports no
    torch (most of its start on a busy machine) and loads no model. The directory's files are
    checked now, before the lock: a wrong path creates no output folder."""
    from extraction.model_layout import check_model_files

    check_model_files(model_dir)

    def load():
        from extraction.predict import Extractor

        return Extractor.load(model_dir, device=device)

    return load


def _fail(command: str, exc: Exception) -> int:
    print(f"angiokg {command}: {exc}", file=sys.stderr)  # one line, no traceback
    return 2


def run_extract(args: argparse.Namespace) -> int:
    from pipeline.run import RunFailed, RunSettings, run
    from pipeline.sinks import ParquetSink

    settings = RunSettings(run_id=args.run_id, batch_size=args.batch_size,
                           shard_reports=args.shard_size, max_report_bytes=args.max_report_bytes,
                           wait_for_lock=args.wait)
    try:
        # The loader, not the model: `run` loads it once the output folder's lock is held.
        summary = run(args.archive, ParquetSink(Path(args.out).absolute()),
                      model_loader(args.model_dir, args.device), settings)
    except (ArchiveError, OutputLocked, RunFailed, ManifestError, OSError, ValueError) as exc:
        return _fail("extract", exc)
    print(summary.format())
    print(json.dumps(summary.to_dict(), ensure_ascii=False))
    return 0


def run_preannotate(args: argparse.Namespace) -> int:
    from pipeline.preannotate import preannotate
    from pipeline.run import RunFailed

    try:
        summary = preannotate(model_loader(args.model_dir, args.device), args.in_dir,
                              args.out_dir, batch_size=args.batch_size, force=args.force,
                              wait_for_lock=args.wait, note_below=args.note_below)
    except (ArchiveError, OutputLocked, RunFailed, ManifestError, OSError, ValueError) as exc:
        return _fail("preannotate", exc)
    print(summary.format())
    return 0
