"""Peak memory of `angiokg extract` as the archive grows: it should stay flat.

    .venv/bin/python bench/bench_memory.py                       # 1,000 and 10,000 reports
    .venv/bin/python bench/bench_memory.py --model-dir MODEL     # a trained model
    .venv/bin/python bench/bench_memory.py --sizes 100 1000 10000
    .venv/bin/python bench/bench_memory.py --quick               # tiny sizes, seconds
    .venv/bin/python bench/bench_memory.py --device cuda

For each size an unannotated archive is generated (ingest.generator, a seed of its own), then
`angiokg extract MODEL_DIR ARCHIVE --out OUT` runs in a child process; the table gives the
child's peak RSS (os.wait4's ru_maxrss, that child alone), its wall time and reports/s. A
1-report run first gives the child's start-up time and baseline memory.
Without --model-dir a `tiny`-profile model is trained first on a few reports of
data/sample/annotated (seconds; it predicts poorly, which changes how many entities it finds,
not how memory grows).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import transformers
from common import REPO, machine_lines, markdown_table

from ingest.generator import generate_corpus

HEADER = ("reports", "archive MB", "wall s", "reports/s", "entities", "relations",
          "peak RSS MiB", "vs 1 report")


def train_tiny(out: Path, reports: int, device: str | None) -> str:
    """A `tiny`-profile model (one epoch on the first `reports` sample reports)."""
    from extraction.train import read_corpus, train_documents
    from extraction.train_config import profile
    from ingest.schema import load_schema

    schema = load_schema()
    documents = read_corpus(REPO / "data" / "sample" / "annotated", schema)[:reports]
    config = replace(profile("tiny"), epochs=1, device=device)
    return train_documents(documents, schema, out, config).model_version


def angiokg() -> list[str]:
    script = Path(sys.executable).with_name("angiokg")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "flows.cli"]


def extract_child(model_dir: Path, archive: Path, out: Path, device: str | None,
                  threads: int) -> tuple[float, float, dict]:
    """(wall s, peak RSS MiB, run summary) of one `angiokg extract` child process."""
    command = [*angiokg(), "extract", str(model_dir), str(archive), "--out", str(out),
               "--run-id", "bench"]
    if device:
        command += ["--device", device]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    log = out.with_name(out.name + ".log")
    with log.open("w") as handle:
        began = time.perf_counter()
        child = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO,
                                 env=env)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - began
    child.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text(encoding="utf-8", errors="replace")
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {child.returncode}:\n{text[-3000:]}")
    summary = json.loads(next(line for line in reversed(text.splitlines())
                              if line.startswith("{")))
    return seconds, usage.ru_maxrss / 1024, summary  # Linux: ru_maxrss in KiB


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def run(args: argparse.Namespace) -> int:
    transformers.utils.logging.disable_progress_bar()
    print("# Memory as the archive grows (`angiokg extract` in a child process)\n")
    for line in machine_lines(args.device or "cpu")[:2]:
        print(f"- {line}")
    print(f"- child device: {args.device or 'its default (cuda if present)'}; torch threads: "
          f"{args.threads or 'its default'}")
    with tempfile.TemporaryDirectory(prefix="bench-memory-", dir=args.work) as work_dir:
        work = Path(work_dir)
        model_dir = Path(args.model_dir) if args.model_dir else work / "model"
        if not args.model_dir:
            began = time.perf_counter()
            version = train_tiny(model_dir, args.train_reports, args.device)
            print(f"- model: {version}, tiny profile, one epoch on {args.train_reports} sample "
                  f"reports ({time.perf_counter() - began:.0f} s); it predicts poorly")
        else:
            print(f"- model: {model_dir}")
        rows, start = [], None
        for n in [1, *sorted(args.sizes)]:  # 1 report: the child's start-up and baseline RSS
            archive = work / f"archive-{n}"
            began = time.perf_counter()
            generate_corpus(n, args.seed, archive, annotated=False, prefix="mem")
            made = time.perf_counter() - began
            seconds, peak, summary = extract_child(model_dir, archive, work / f"out-{n}",
                                                   args.device, args.threads)
            if start is None:
                start = (seconds, peak)
            extracting = seconds - start[0]  # too short to tell from start-up noise: "-"
            rate = f"{(n - 1) / extracting:,.1f}" if n > 1 and extracting > 2.0 else "-"
            rows.append([f"{n:,}", f"{folder_mb(archive):.2f}", f"{seconds:.1f}", rate,
                         f"{summary['entities']:,}", f"{summary['relations']:,}",
                         f"{peak:,.0f}", f"{peak / start[1]:.2f}x"])
            print(f"- {n:,} reports generated in {made:.1f} s; extract: {summary['extracted']} "
                  f"extracted, {summary['shards']} shards", flush=True)
    print()
    print(markdown_table(HEADER, rows))
    print("\n- wall s: the whole child (start-up, loading the model, extraction, Parquet); "
          "reports/s leaves out the start-up: (reports - 1) / (wall s - wall s of the 1-report "
          "run), given when that difference is over 2 s")
    print("- peak RSS: the child's own (os.wait4 ru_maxrss); vs 1 report: over the 1-report "
          "run's peak (imports and model); reports are streamed in shards of 256")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 and 40 reports: seconds")
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="archive sizes in reports (default 1000 10000)")
    parser.add_argument("--model-dir", default=None, help="a trained model (default: train a "
                                                          "tiny-profile one first)")
    parser.add_argument("--device", default=None, help="passed to angiokg extract")
    parser.add_argument("--threads", type=int, default=0,
                        help="OMP_NUM_THREADS for the child (0: torch's default)")
    parser.add_argument("--train-reports", type=int, default=None,
                        help="sample reports the tiny model trains on (default 60)")
    parser.add_argument("--seed", type=int, default=2024, help="generator seed of the archives")
    parser.add_argument("--work", default=None, help="folder for temporary files")
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = [10, 40] if args.quick else [1000, 10000]
    if args.train_reports is None:
        args.train_reports = 4 if args.quick else 60
    return args


if __name__ == "__main__":
    raise SystemExit(run(parse_args()))
