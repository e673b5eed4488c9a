"""Peak memory as the archive grows, on each way a run extracts it: it should stay flat.

    .venv/bin/python bench/bench_memory.py                       # 1,000 and 10,000 reports
    .venv/bin/python bench/bench_memory.py --model-dir MODEL     # a trained model
    .venv/bin/python bench/bench_memory.py --sizes 100 1000 10000
    .venv/bin/python bench/bench_memory.py --paths nightly       # one path only
    .venv/bin/python bench/bench_memory.py --paths retrained     # the night after a retrain
    .venv/bin/python bench/bench_memory.py --allocators 2000     # allocator settings side by side
    .venv/bin/python bench/bench_memory.py --mallocs jemalloc glibc  # both mallocs, one run
    .venv/bin/python bench/bench_memory.py --quick               # tiny sizes, seconds
    .venv/bin/python bench/bench_memory.py --device cuda

For each size an unannotated archive is generated (ingest.generator, a seed of its own) and run
through each path in a child process of its own:

- `extract`: `angiokg extract MODEL_DIR ARCHIVE --out OUT` (one process, shards one after the
  other);
- `nightly`: `angiokg nightly` over that archive into a fresh run folder: ingest of the sample's
  annotated reports, the extract flow (shards as tasks on Prefect's thread runner, two at a
  time) and the graph load, on Prefect's ephemeral API. The run folder's current-model pointer
  names MODEL_DIR as trained on tonight's annotated corpus, so the night does not retrain: it
  is a first night over an archive whose every report is new, which is what grows with the
  archive;
- `retrained`: the night after a retrain, the heaviest one: a second `angiokg nightly` into
  the same run folder with a copy of MODEL_DIR under another model version, so every report
  is extracted again and the graph load replaces every one of them (their deletes in the same
  transaction). It follows the `nightly` path's run, or a first night of its own when that
  path is not measured.

The children run under jemalloc where `angiokg` finds it (extraction/jemalloc.py), else on
glibc's tuned malloc; --mallocs jemalloc glibc runs each path under both, taking turns
(`jemalloc-timers`: jemalloc left to give freed pages back on its own timers, as before
2026-12-02).

With --allocators N, `angiokg extract` instead runs over one archive of N reports once per
allocator setting (extraction/allocator.py, extraction/jemalloc.py), the children all at the
same time with one torch thread each, so whatever else loads the machine falls on them alike:
glibc's own adaptive threshold, the fixed 128 KiB threshold (the first fix), the 4 MiB threshold
with a trim after each window of batches (glibc's setting now) and jemalloc (where installed),
on its own timers and giving freed pages back after each window (its setting now).

The table gives each child's peak RSS (os.wait4's ru_maxrss: that process, or the largest of
the children it waited for, such as Prefect's server; for the nightly, which resets that peak
before each of its steps, the largest of its steps' peaks when that is higher), its wall time
and reports/s. A 1-report run of each path first gives its start-up time and baseline memory.
Without --model-dir a `tiny`-profile model is trained first on a few reports of
data/sample/annotated (seconds; it predicts poorly, which changes how many entities it finds,
not how memory grows).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import transformers
from common import REPO, machine_lines, markdown_table

from ingest.generator import generate_corpus

ANNOTATED = REPO / "data" / "sample" / "annotated"
# the environment that gives a child each malloc: angiokg preloads jemalloc unless told not to
# "jemalloc-timers": jemalloc giving freed pages back on its own timers, as before 2026-12-02
MALLOCS = {"jemalloc": {}, "jemalloc-timers": {"ANGIOKG_MALLOC_TRIM": "0"},
           "glibc": {"ANGIOKG_JEMALLOC": "0"}}
PATHS = ("extract", "nightly", "retrained")
HEADER = ("path", "reports", "archive MB", "wall s", "reports/s", "entities", "relations",
          "peak RSS MiB", "vs 1 report")
FLAT_HEADER = ("path", "reports", "peak RSS MiB", "largest vs smallest", "goal")
FLAT_GOAL = 1.10  # the largest archive's peak within 10% of the smallest's


@dataclass(frozen=True)
class ChildRun:
    seconds: float
    peak_mib: float
    summary: dict
    steps: dict[str, float] = field(default_factory=dict)  # the nightly's peak per step


STEP_LINE = re.compile(r"^\s*memory\s+(.*?) MiB \(each step's peak", re.MULTILINE)


def night_steps(output: str) -> dict[str, float]:
    """The nightly's "memory" line (pipeline.peak_memory): its own peak RSS per step."""
    found = STEP_LINE.search(output)
    if found is None:
        return {}
    steps = {}
    for part in found.group(1).split(", "):
        name, _, value = part.rpartition(" ")
        steps[name] = float(value.replace(",", ""))
    return steps


def train_tiny(out: Path, reports: int, device: str | None) -> str:
    """A `tiny`-profile model (one epoch on the first `reports` sample reports)."""
    from extraction.train import read_corpus, train_documents
    from extraction.train_config import profile
    from ingest.schema import load_schema

    schema = load_schema()
    documents = read_corpus(ANNOTATED, schema)[:reports]
    config = replace(profile("tiny"), epochs=1, device=device)
    return train_documents(documents, schema, out, config).model_version


def angiokg() -> list[str]:
    script = Path(sys.executable).with_name("angiokg")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "flows.cli"]


def run_child(command: list[str], log: Path, threads: int,
              malloc: str) -> tuple[float, float, str]:
    """(wall s, peak RSS MiB, output) of one child process under `malloc`; raises if it
    fails."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", **MALLOCS[malloc])
    # The nightly's ephemeral Prefect API must come up within this many wall-clock seconds: a
    # benchmark paused for minutes (SIGSTOP, so that a timing run elsewhere has the machine) or
    # a loaded machine during its start-up failed the child after flows_cli's 180 s.
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "900")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    with log.open("w") as handle:
        began = time.perf_counter()
        child = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO,
                                 env=env)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - began
    text = log.read_text(encoding="utf-8", errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} exited {code}:\n{text[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, text  # Linux: ru_maxrss in KiB


def extract_child(model_dir: Path, archive: Path, out: Path, device: str | None,
                  threads: int, malloc: str) -> ChildRun:
    """`angiokg extract` over the archive; its summary is the JSON line it prints last."""
    command = [*angiokg(), "extract", str(model_dir), str(archive), "--out", str(out),
               "--run-id", "bench"]
    if device:
        command += ["--device", device]
    seconds, peak, text = run_child(command, out.with_name(out.name + ".log"), threads, malloc)
    summary = json.loads(next(line for line in reversed(text.splitlines())
                              if line.startswith("{")))
    return ChildRun(seconds, peak, summary)


def seed_current_model(run_folder: Path, model_dir: Path, profile: str) -> None:
    """Point the run folder at MODEL_DIR as the model of tonight's annotated corpus, as a
    night that has trained leaves it: the nightly then reuses it instead of training."""
    from flows.state import CurrentModel, RunLayout, tree_sha256, write_current_model

    pointer = CurrentModel.now(model_dir.absolute(), tree_sha256(ANNOTATED), profile)
    write_current_model(RunLayout(run_folder), pointer)


def nightly_child(model_dir: Path, archive: Path, run_folder: Path, profile: str,
                  device: str | None, threads: int, malloc: str) -> ChildRun:
    """`angiokg nightly` over the archive into a fresh run folder; the summary is the one its
    extraction wrote under extract/_runs/."""
    from flows.state import RunLayout
    from pipeline.sinks import RUNS_DIR

    if device:
        raise ValueError("the nightly path has no --device: it uses CUDA when present")
    seed_current_model(run_folder, model_dir, profile)
    command = [*angiokg(), "nightly", "--annotated", str(ANNOTATED), "--archive", str(archive),
               "--out", str(run_folder), "--profile", profile, "--retrain", "on-change",
               "--graph", "ladybug"]
    seconds, peak, text = run_child(command, run_folder.with_name(run_folder.name + ".log"),
                                    threads, malloc)
    if "reused: " not in text:
        raise RuntimeError(f"the nightly trained a model instead of reusing {model_dir}:\n"
                           f"{text[-3000:]}")
    # run ids are time-ordered: the last summary is tonight's
    summary_file = max((RunLayout(run_folder).extract / RUNS_DIR).glob("*.json"))
    steps = night_steps(text)
    return ChildRun(seconds, night_peak(peak, steps),
                    json.loads(summary_file.read_text(encoding="utf-8")), steps)


def retrained_model(model_dir: Path, work: Path) -> Path:
    """MODEL_DIR's files under another model version, as a retrain leaves them for the
    archive: every report is new to it. Its weights are the same, so it finds the same
    entities and the graph's size stays comparable."""
    copy = work / f"{model_dir.name}-retrained"
    if not copy.is_dir():
        shutil.copytree(model_dir, copy)
        version = (model_dir / "model_version").read_text(encoding="utf-8").strip()
        (copy / "model_version").write_text(f"{copy.name}-{version.rsplit('-', 1)[-1]}\n",
                                            encoding="utf-8")
    return copy


def night_peak(waited_peak: float, steps: dict[str, float]) -> float:
    """The nightly's peak RSS: the larger of what os.wait4 gave and its steps' own peaks.

    The nightly resets VmHWM before each step (pipeline.peak_memory), and Linux's ru_maxrss is
    the same high-water mark: what wait4 gives is the peak since the last reset, the graph
    load's, not the night's (a 1,000-report night read 879 MiB there while its extraction step
    had peaked at 972)."""
    return max([waited_peak, *steps.values()])


# (name, the child's environment)
GLIBC = MALLOCS["glibc"]
ALLOCATORS = (
    ("glibc's adaptive threshold",
     {**GLIBC, "ANGIOKG_MMAP_THRESHOLD": "0", "ANGIOKG_MALLOC_TRIM": "0"}),
    ("glibc, fixed 128 KiB threshold (the first fix)",
     {**GLIBC, "ANGIOKG_MMAP_THRESHOLD": "131072", "ANGIOKG_MALLOC_TRIM": "0"}),
    ("glibc, 4 MiB threshold + trim after each window (glibc's default)", GLIBC),
    ("jemalloc, its own timers (before 2026-12-02)", MALLOCS["jemalloc-timers"]),
    ("jemalloc, freed pages given back after each window (the default where installed)",
     MALLOCS["jemalloc"]),
)
ALLOCATOR_HEADER = ("allocator", "reports", "wall s", "reports/s", "vs 128 KiB", "peak RSS MiB")


def allocator_rows(model_dir: Path, archive: Path, work: Path, reports: int,
                   device: str | None) -> list[list]:
    """`angiokg extract` over the same archive once per allocator setting, all at once, one
    torch thread each; wall time to each child's own exit and its peak RSS."""
    from extraction import jemalloc

    settings = [(n, e) for n, e in ALLOCATORS
                if "ANGIOKG_JEMALLOC" in e or jemalloc.library() is not None]
    children, logs, began = {}, [], time.perf_counter()
    for i, (name, setting) in enumerate(settings):
        command = [*angiokg(), "extract", str(model_dir), str(archive), "--out",
                   str(work / f"alloc-{i}"), "--run-id", "bench"]
        if device:
            command += ["--device", device]
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                   OMP_NUM_THREADS="1", **setting)
        log = (work / f"alloc-{i}.log").open("w")
        logs.append(log)
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                 env=env)
        children[child.pid] = name
    done: dict[str, tuple[float, float]] = {}
    while len(done) < len(children):
        pid, status, usage = os.wait4(-1, 0)
        if pid not in children:
            continue
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"angiokg extract ({children[pid]}) failed; see {work}")
        done[children[pid]] = (time.perf_counter() - began, usage.ru_maxrss / 1024)
    for log in logs:
        log.close()
    before = done[ALLOCATORS[1][0]][0]
    return [[name, f"{reports:,}", f"{seconds:.1f}", f"{reports / seconds:,.1f}",
             f"{before / seconds:.2f}x", f"{peak:,.0f}"]
            for name, (seconds, peak) in ((n, done[n]) for n, _ in settings)]


def malloc_line(mallocs: Sequence[str]) -> str:
    """Which malloc the children run under, and where jemalloc comes from."""
    from extraction import jemalloc

    found = jemalloc.library()
    where = f"jemalloc from {found}" if found else "no jemalloc found"
    return f"{', '.join(mallocs)} ({where}; angiokg preloads it unless ANGIOKG_JEMALLOC=0)"


def model_profile(model_dir: Path) -> str:
    """The training profile recorded in the model directory (the nightly's --profile)."""
    from extraction.model_dir import CONFIG

    config = json.loads((model_dir / CONFIG).read_text(encoding="utf-8"))
    return str(config.get("profile", "default"))


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def flatness_rows(runs: dict[tuple[str, int], ChildRun], sizes: Sequence[int]) -> list[list]:
    """Per path: peak RSS of the largest archive over the smallest (1 report left out)."""
    low, high = min(sizes), max(sizes)
    rows = []
    for path in dict.fromkeys(p for p, _ in runs):
        if (path, low) not in runs or (path, high) not in runs or low == high:
            continue
        ratio = runs[path, high].peak_mib / runs[path, low].peak_mib
        rows.append([path, f"{low:,} -> {high:,}",
                     f"{runs[path, low].peak_mib:,.0f} -> {runs[path, high].peak_mib:,.0f}",
                     f"{ratio:.2f}x", "met" if ratio <= FLAT_GOAL else "NOT met"])
    return rows


STEP_HEADER = ("path", "reports", "ingest", "extraction", "queue", "graph load",
               "before the graph load vs smallest", "graph load vs smallest")


def before_graph_load(child: ChildRun) -> float:
    """The highest peak of the nightly's steps before its graph load (the run protocol's)."""
    return max(peak for step, peak in child.steps.items() if step != "graph load")


def step_rows(runs: dict[tuple[str, int], ChildRun], sizes: Sequence[int]) -> list[list]:
    """Per nightly run: each step's peak, and how the steps before the graph load (the run
    protocol's) and the graph load (the embedded store's) grow over the smallest archive."""
    rows = []
    low = min(sizes)
    for (path, n), child in runs.items():
        if not child.steps or n == 1:
            continue
        base = runs.get((path, low))
        ratio = (f"{before_graph_load(child) / before_graph_load(base):.2f}x"
                 if base and base.steps else "-")
        load = (f"{child.steps['graph load'] / base.steps['graph load']:.2f}x"
                if base and "graph load" in child.steps and "graph load" in base.steps else "-")
        rows.append([path, f"{n:,}", *(f"{child.steps[k]:,.0f}" if k in child.steps else "-"
                                       for k in ("ingest", "extraction", "queue", "graph load")),
                     ratio, load])
    return rows


def run(args: argparse.Namespace) -> int:
    transformers.utils.logging.disable_progress_bar()
    print("# Memory as the archive grows (`angiokg extract` and `angiokg nightly`, each in a "
          "child process)\n")
    for line in machine_lines(args.device or "cpu")[:2]:
        print(f"- {line}")
    print(f"- child device: {args.device or 'its default (cuda if present)'}; torch threads: "
          f"{args.threads or 'its default'}; paths: {', '.join(args.paths)}")
    print(f"- malloc: {malloc_line(args.mallocs)}")
    began_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-memory-", dir=args.work) as work_dir:
        work = Path(work_dir)
        model_dir = Path(args.model_dir).absolute() if args.model_dir else work / "model"
        if not args.model_dir:
            began = time.perf_counter()
            version = train_tiny(model_dir, args.train_reports, args.device)
            print(f"- model: {version}, tiny profile, one epoch on {args.train_reports} sample "
                  f"reports ({time.perf_counter() - began:.0f} s); it predicts poorly")
        else:
            print(f"- model: {model_dir}")
        if args.allocators:
            archive = work / "archive-allocators"
            generate_corpus(args.allocators, args.seed, archive, annotated=False, prefix="mem")
            rows = allocator_rows(model_dir, archive, work, args.allocators, args.device)
            print(f"\n{markdown_table(ALLOCATOR_HEADER, rows)}\n")
            print("- the children ran at the same time over the same archive, one torch "
                  "thread each; wall s includes each one's start-up; vs 128 KiB: its speed over "
                  "the fixed 128 KiB threshold's")
            print(f"- whole benchmark: {time.perf_counter() - began_all:,.0f} s")
            return 0
        profile = model_profile(model_dir)
        runs: dict[tuple[str, int], ChildRun] = {}
        rows = []
        for n in [1, *sorted(args.sizes)]:  # 1 report: each child's start-up and baseline RSS
            archive = work / f"archive-{n}"
            began = time.perf_counter()
            generate_corpus(n, args.seed, archive, annotated=False, prefix="mem")
            print(f"- {n:,} reports generated in {time.perf_counter() - began:.1f} s",
                  flush=True)
            # the paths and mallocs take turns: load falls on all alike
            for path, malloc in ((p, m) for p in args.paths for m in args.mallocs):
                label = path if len(args.mallocs) == 1 else f"{path}, {malloc}"
                out = work / f"{path}-{malloc}-{n}"
                if path == "extract":
                    child = extract_child(model_dir, archive, out, args.device, args.threads,
                                          malloc)
                elif path == "nightly":
                    child = nightly_child(model_dir, archive, out, profile, args.device,
                                          args.threads, malloc)
                else:  # after the nightly path's first night, in its run folder
                    first = work / f"nightly-{malloc}-{n}"
                    if not first.is_dir():
                        nightly_child(model_dir, archive, first, profile, args.device,
                                      args.threads, malloc)
                    child = nightly_child(retrained_model(model_dir, work), archive, first,
                                          profile, args.device, args.threads, malloc)
                runs[label, n] = child
                rows.append(table_row(label, n, archive, child, runs[label, 1]))
                print(f"  - {label}: {child.summary['extracted']} extracted, "
                      f"{child.summary['shards']} shards, {child.seconds:.1f} s, peak "
                      f"{child.peak_mib:,.0f} MiB", flush=True)
    rows.sort(key=lambda r: PATHS.index(r[0].split(",")[0]))
    print()
    print(markdown_table(HEADER, rows))
    print("\n- wall s: the whole child (start-up, loading the model, extraction, Parquet; the "
          "nightly also ingest, its Prefect API and the graph load); reports/s leaves out the "
          "start-up: (reports - 1) / (wall s - wall s of the path's 1-report run), given when "
          "that difference is over 2 s")
    print("- peak RSS: the child's own (os.wait4 ru_maxrss; the nightly's: the larger of that "
          "and its steps' peaks, since it resets the peak before each step); vs 1 report: over "
          "the path's 1-report run (imports and model)")
    steps = step_rows(runs, args.sizes)
    if steps:
        print("\nThe nightly's own peak RSS per step (its `memory` line; each step's peak "
              "after a reset of VmHWM):\n")
        print(markdown_table(STEP_HEADER, steps))
    flat = flatness_rows(runs, args.sizes)
    if flat:
        print(f"\nFlat memory (goal: the largest archive's peak within "
              f"{100 * (FLAT_GOAL - 1):.0f}% of the smallest's):\n")
        print(markdown_table(FLAT_HEADER, flat))
    print(f"\n- whole benchmark: {time.perf_counter() - began_all:,.0f} s")
    return 0


def table_row(path: str, n: int, archive: Path, child: ChildRun, start: ChildRun) -> list:
    extracting = child.seconds - start.seconds  # too short to tell from start-up noise: "-"
    rate = f"{(n - 1) / extracting:,.1f}" if n > 1 and extracting > 2.0 else "-"
    return [path, f"{n:,}", f"{folder_mb(archive):.2f}", f"{child.seconds:.1f}", rate,
            f"{child.summary['entities']:,}", f"{child.summary['relations']:,}",
            f"{child.peak_mib:,.0f}", f"{child.peak_mib / start.peak_mib:.2f}x"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 and 40 reports: seconds")
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="archive sizes in reports (default 1000 10000)")
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS),
                        help="which runs to measure (default all three)")
    parser.add_argument("--allocators", type=int, default=0, metavar="N",
                        help="instead: the allocator settings side by side over N reports")
    parser.add_argument("--mallocs", nargs="+", choices=tuple(MALLOCS), default=None,
                        help="the malloc(s) the children run under, taking turns (default: "
                             "jemalloc where installed, else glibc)")
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
    from extraction import jemalloc

    if args.mallocs is None:
        args.mallocs = ["jemalloc" if jemalloc.library() is not None else "glibc"]
    elif any(m.startswith("jemalloc") for m in args.mallocs) and jemalloc.library() is None:
        parser.error("--mallocs jemalloc: no jemalloc library here (Debian: apt-get install "
                     "libjemalloc2, or ANGIOKG_JEMALLOC=PATH)")
    if args.train_reports is None:
        args.train_reports = 4 if args.quick else 60
    return args


if __name__ == "__main__":
    raise SystemExit(run(parse_args()))
