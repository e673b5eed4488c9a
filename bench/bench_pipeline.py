"""The whole pipeline timed in one run, stage by stage, as Markdown tables (docs/benchmarks.md).

    .venv/bin/python bench/bench_pipeline.py                      # everything (`make bench`)
    .venv/bin/python bench/bench_pipeline.py --quick              # tiny sizes, seconds
    .venv/bin/python bench/bench_pipeline.py --reports 500        # part of the archive
    .venv/bin/python bench/bench_pipeline.py --model-dir MODEL    # a trained model's entities
    .venv/bin/python bench/bench_pipeline.py --device cuda        # bf16 autocast on the GPU
    .venv/bin/python bench/bench_pipeline.py --stages 4 --baseline OLD   # stage 4, old vs new

Stages, each in its own table:
1. relation classification of all entity pairs: literal / batched / exact (bench_rc.measure);
2. training sentences per second (`fit`, the loop of `angiokg train`);
3. extraction of data/sample/archive through `pipeline.run.run` (as `angiokg extract`), full and
   NER-only, against the floor: a plain BertModel forward over the same batches;
4. the Parquet datasets through the sink (with `--baseline CHECKOUT`, beside that checkout's
   sink, each in its own process, taking turns);
5. the embedded graph: bulk COPY vs UNWIND MERGE;
6. per-stage wall time and the process's peak RSS.
Repetitions of the variants compared take turns (interleaved) and the tables give medians,
except stage 3, whose two passes alternate over chunks of the archive and are summed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

# first: puts the repository on sys.path and imports `extraction`, which sets torch's OpenMP
# wait policy as angiokg runs, before torch loads
from common import REPO, machine_lines, markdown_table, medians, peak_rss_mib

# isort: split
import torch
import transformers
from bench_rc import RcSettings, measure, model_config
from pipeline_model import (
    EXTRACT_HEADER,
    TRAIN_HEADER,
    extraction_rows,
    gold_document,
    training_rows,
)
from pipeline_store import (
    COMPARE_HEADER,
    GRAPH_HEADER,
    PARQUET_HEADER,
    compare_sink_rows,
    graph_rows,
    parquet_rows,
)
from transformers import BertModel

from extraction.bert_factory import pick_device
from extraction.train import read_corpus
from extraction.train_config import profile
from ingest.document import Document
from ingest.schema import load_schema
from pipeline.defaults import DEFAULT_SHARD_REPORTS

SAMPLE = REPO / "data" / "sample"
FLOOR_GOAL = 1.6  # full extraction over the plain BertModel forward of the same batches
RC_HEADER = ("mask", "entities", "pairs", "strategy", "RC ms", "pairs/s", "RC / NER",
             "(NER+RC) / NER", "vs literal", "max diff")


@dataclass
class Bench:
    """What the stages share: options, device, the reports used, a work folder."""

    args: argparse.Namespace
    device: torch.device
    work: Path
    reports: list[Path]
    gold: list[Document]  # the reports with their gold entities and relations
    model_dir: Path | None = None  # stage 2 saves its model here for stage 3

    @property
    def precision(self) -> str:
        return "bf16 autocast" if self.device.type == "cuda" else "float32"


def rc_section(b: Bench) -> tuple[str, list[str]]:
    args = b.args
    config, k = model_config(args.profile, 8000)
    torch.manual_seed(0)
    bert = BertModel(config, add_pooling_layer=False).eval().to(b.device)
    settings = RcSettings(tuple(args.rc_entities), args.rc_sentences, args.repeats,
                          args.literal_pairs)
    rows, literal = measure(bert, k, settings, b.device, bf16=b.device.type == "cuda",
                            stat=medians)
    table = [[r.mask, r.entities, r.pairs, r.strategy, f"{1000 * r.rc_s:.2f}",
              f"{r.pairs_per_s:,.0f}", f"{r.rc_over_ner:.2f}", f"{r.all_over_ner:.2f}",
              f"{r.speedup:.1f}x", f"{r.max_diff:.1e}"] for r in rows]
    notes = [
        f"{args.profile}-profile encoder ({config.hidden_size} hidden, "
        f"{config.num_hidden_layers} layers, K={k}), random weights, {b.precision}; "
        f"{args.rc_sentences} sentences of 60-100 chars per entity count, all n(n-1)/2 pairs; "
        f"median of {args.repeats} interleaved runs (literal: {max(1, args.repeats // 2)})",
        "RC / NER: all-pairs RC time over the NER-only pass (lower + task layers) of the same "
        "sentences; (NER+RC) / NER for exact Eq.(13) uses ner_and_rc, which shares the first "
        "task layer with the NER pass",
    ]
    if literal:
        notes.append("literal timed on the first pairs and scaled: " + "; ".join(literal))
    return markdown_table(RC_HEADER, table), notes


def train_section(b: Bench) -> tuple[str, list[str]]:
    config = replace(profile(b.args.profile), mode="joint", device=str(b.device))
    schema = load_schema()
    documents = read_corpus(SAMPLE / "annotated", schema)
    b.model_dir = b.work / "model"
    rows, version = training_rows(documents, schema, config, b.args.train_steps, b.device,
                                  b.model_dir)
    notes = [f"train split of data/sample/annotated, {config.profile} profile (batch "
             f"{config.batch_size}, RC on schema-allowed pairs, NoRelation pairs kept at "
             f"{config.no_relation_keep_rate}), {b.precision}; one timed epoch over the "
             f"sampled sentences after a 2-step warm-up; model {version}"]
    return markdown_table(TRAIN_HEADER, rows), notes


def extract_section(b: Bench) -> tuple[str, list[str]]:
    given = b.args.model_dir
    model_dir = Path(given) if given else b.model_dir
    if model_dir is None:
        raise ValueError("stage 3 needs --model-dir or the model of stage 2")
    rows, notes = extraction_rows(b.reports, model_dir, None if given else b.gold,
                                  b.args.chunks, b.args.batch_size, b.device,
                                  b.work / "extract")
    source = (f"entities predicted by {model_dir}" if given else
              "oracle entities: the model of stage 2 (barely trained: weights do not change "
              "the timing) runs its whole NER pass, then each sentence's gold tag path "
              "replaces its own, so relation classification sees the real entity and pair "
              "counts; the relations are the untrained RC head's")
    full = rows[-1]
    notes = [source, *notes, f"{b.precision} on {b.device}",
             f"full / NER-only = {full[-2]} (goal: at most 1.5x with the default "
             f"configuration); full / floor = {full[-1]} (goal: at most {FLOOR_GOAL}x)"]
    return markdown_table(EXTRACT_HEADER, rows), notes


def parquet_section(b: Bench) -> tuple[str, list[str]]:
    rows = parquet_rows(b.gold, load_schema(), b.work, b.args.repeats)
    notes = [f"the {len(b.gold)} reports with their gold entities and relations, in shards "
             f"of {DEFAULT_SHARD_REPORTS} reports; median of {b.args.repeats}"]
    table = markdown_table(PARQUET_HEADER, rows)
    if b.args.baseline:
        compared = compare_sink_rows(b.gold, Path(b.args.baseline), b.work, b.args.repeats)
        table += "\n\n" + markdown_table(COMPARE_HEADER, compared)
        new, old = (float(r[5].replace(",", "")) for r in compared)
        notes.append(f"side by side, each sink in a fresh process, taking turns, median of "
                     f"{b.args.repeats}: this checkout / baseline reports/s = {new / old:.2f}")
    return table, notes


def graph_section(b: Bench) -> tuple[str, list[str]]:
    merge = b.args.merge_reports
    rows = graph_rows(b.gold, load_schema(), b.work, b.args.repeats, merge)
    notes = ["LadybugStore.load_graph into a fresh database (made untimed) from the graph "
             "tables of stage 4's run; bulk COPY still upserts Report nodes and the coronary "
             f"tree row-wise; median of {b.args.repeats}, the two taking turns"]
    if merge < len(b.gold):
        notes.append(f"UNWIND MERGE loads the first {merge} reports only (edges/s either way)")
    return markdown_table(GRAPH_HEADER, rows), notes


SECTIONS: tuple[tuple[str, Callable[[Bench], tuple[str, list[str]]]], ...] = (
    ("1. Relation classification of all entity pairs", rc_section),
    ("2. Training", train_section),
    ("3. Extraction of the archive: full vs NER only vs the plain BertModel floor",
     extract_section),
    ("4. Parquet datasets through the sink", parquet_section),
    ("5. Embedded graph (LadybugDB): bulk COPY vs UNWIND MERGE", graph_section),
)


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    transformers.utils.logging.disable_progress_bar()  # loading and saving bars in the tables
    device = pick_device(args.device)
    reports = sorted((SAMPLE / "archive").glob("*.txt"))[: args.reports]
    print("# Pipeline benchmark\n")
    for line in machine_lines(device):
        print(f"- {line}")
    print(f"- options: {' '.join(args.argv) or '(defaults)'}")
    print(f"- malloc as angiokg runs: {malloc_in_use()}")
    stages = []
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-", dir=args.work) as work:
        bench = Bench(args, device, Path(work), reports, [gold_document(p) for p in reports])
        for title, section in SECTIONS:
            if title.split(".", 1)[0] not in args.stages:
                continue
            began = time.perf_counter()
            table, notes = section(bench)
            stages.append([title.split(" ", 1)[1], f"{time.perf_counter() - began:.1f}",
                           f"{peak_rss_mib():,.0f}"])
            print(f"\n## {title}\n\n{table}\n")
            for note in notes:
                print(f"- {note}")
    print("\n## 6. Stages: wall time and peak memory\n")
    print(markdown_table(("stage", "wall s", "peak RSS so far (MiB)"), stages))
    print(f"\n- peak RSS of the process: {peak_rss_mib():,.0f} MiB (getrusage ru_maxrss)")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, seconds: the tiny profile, 8 reports, few repeats")
    parser.add_argument("--device", default=None, help="cpu, cuda (default: cuda if present)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default; 1 is steadier on a busy "
                             "machine)")
    parser.add_argument("--model-dir", default=None,
                        help="a trained model for stage 3 (its own entities); default: the "
                             "model of stage 2 with oracle entities")
    parser.add_argument("--reports", type=int, default=None,
                        help="use the first N reports of data/sample/archive (default: all)")
    parser.add_argument("--chunks", type=int, default=None,
                        help="stage 3: chunks the passes alternate over (default 8)")
    parser.add_argument("--batch-size", type=int, default=64, help="stage 3: sentences/batch")
    parser.add_argument("--train-steps", type=int, default=None, help="stage 2 (default 40)")
    parser.add_argument("--repeats", type=int, default=None, help="stages 1, 4, 5 (default 3)")
    parser.add_argument("--merge-reports", type=int, default=None,
                        help="stage 5: reports loaded by UNWIND MERGE (default 500)")
    parser.add_argument("--rc-entities", type=int, nargs="+", default=None,
                        help="stage 1 (default 5 10 20)")
    parser.add_argument("--rc-sentences", type=int, default=None, help="stage 1 (default 8)")
    parser.add_argument("--literal-pairs", type=int, default=None,
                        help="stage 1: pairs literal is timed on, then scaled (default 120)")
    parser.add_argument("--stages", default="1,2,3,4,5",
                        help="the stages to run, comma-separated (default all; stage 3 "
                             "without --model-dir needs stage 2's model)")
    parser.add_argument("--baseline", default=None, metavar="CHECKOUT",
                        help="stage 4: also time this checkout's sink (e.g. `git archive` of "
                             "main into a folder), side by side")
    parser.add_argument("--work", default=None, help="folder for temporary files (default: "
                                                     "the system's temp folder)")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {"reports": 8 if quick else None, "chunks": 2 if quick else 8,
                "train_steps": 2 if quick else 40, "repeats": 2 if quick else 3,
                "merge_reports": 4 if quick else 500,
                "rc_entities": [3, 5] if quick else [5, 10, 20],
                "rc_sentences": 1 if quick else 8, "literal_pairs": 4 if quick else 120}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.profile = "tiny" if quick else "default"
    args.stages = {s.strip() for s in args.stages.split(",")}
    args.argv = sys.argv[1:] if argv is None else argv
    return args


def malloc_in_use() -> str:
    from extraction import jemalloc

    if jemalloc.loaded():
        return "jemalloc (preloaded; ANGIOKG_JEMALLOC=0 for glibc's)"
    return ("glibc's: its defaults for stages 1-2 (as in training); from stage 3 on a 4 MiB "
            "mmap threshold and a heap trim after each window of batches (Extractor.load sets "
            "both: extraction/allocator.py)")


if __name__ == "__main__":
    from flows.cli import restart_under_jemalloc

    restart_under_jemalloc()  # as angiokg runs: under jemalloc where it is installed
    raise SystemExit(run(parse_args()))
