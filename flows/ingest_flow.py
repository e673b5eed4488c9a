"""ingest_flow: read -> validate -> quarantine -> split -> stats.

Reading and validating is the expensive step, so it is cached on the corpus's content hash
(with the schema and the task's source): an unchanged corpus is not read again, even by a
fresh Prefect database, because the cache record lives in the run folder.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE

from flows import run_names
from flows.logs import readable_run_logs
from flows.parameters import IngestParams, documented_by
from flows.state import RunLayout, tree_sha256
from ingest.atomic import write_json_atomic, write_text_atomic
from ingest.corpus import CorpusLoad, load_corpus, quarantine
from ingest.schema import load_schema
from ingest.split import split_counts, write_split_file
from ingest.stats import corpus_stats, format_stats

SPLIT_FILE = "splits.csv"
STATS_JSON = "stats.json"
STATS_MD = "stats.md"


@dataclass(frozen=True)
class IngestResult:
    corpus_sha256: str
    reports: int
    valid: int
    quarantined: int
    splits: dict[str, int]
    split_file: Path
    stats: Path
    quarantine_dir: Path


@task
def hash_corpus(annotated: Path) -> str:
    return tree_sha256(annotated)


@task(cache_policy=INPUTS + TASK_SOURCE, persist_result=True)
def read_and_validate(annotated: Path, schema_path: Path | None, corpus_sha256: str) -> CorpusLoad:
    # corpus_sha256 is unused in the body: it is here so the cache key changes with the content.
    return load_corpus(annotated, load_schema(schema_path), policy="lenient")


@task(cache_policy=NO_CACHE)
def quarantine_bad(load: CorpusLoad, dest: Path) -> int:
    quarantine(load.reports, dest)
    return len(load.quarantined)


@task(cache_policy=NO_CACHE)
def split_reports(load: CorpusLoad, split_file: Path, seed: int) -> dict[str, int]:
    return split_counts(write_split_file((r.report_id for r in load.valid), split_file, seed))


@task(cache_policy=NO_CACHE)
def describe_corpus(load: CorpusLoad, schema_path: Path | None, folder: Path) -> Path:
    stats = corpus_stats(load.documents, load_schema(schema_path))
    write_json_atomic(folder / STATS_JSON, asdict(stats))
    write_text_atomic(folder / STATS_MD, format_stats(stats) + "\n")
    return folder / STATS_JSON


@flow(name="angiokg-ingest", flow_run_name=run_names.by_corpus("ingest"), log_prints=True,
      description="Validate the annotated reports, quarantine the bad ones, write the 8:1:1 "
      "split and the corpus statistics.")
@documented_by(IngestParams)
def ingest_flow(annotated: Path, out: Path, schema_path: Path | None = None,
                split_seed: int = 42) -> IngestResult:
    """Read -> validate -> quarantine -> split -> stats."""
    readable_run_logs()
    params = IngestParams.from_arguments(locals())
    layout = RunLayout(params.out)
    corpus_sha256 = hash_corpus(params.annotated)
    load = read_and_validate.with_options(result_storage=layout.results)(
        params.annotated, params.schema_path, corpus_sha256)
    quarantined = quarantine_bad(load, layout.quarantine)
    splits = split_reports(load, layout.ingest / SPLIT_FILE, params.split_seed)
    stats = describe_corpus(load, params.schema_path, layout.ingest)
    result = IngestResult(corpus_sha256, len(load.reports), len(load.valid), quarantined, splits,
                          layout.ingest / SPLIT_FILE, stats, layout.quarantine)
    report_findings(load)
    print(f"ingest: {result.reports} reports, {result.valid} valid, {result.quarantined} "
          f"quarantined, {load.warning_count} warnings; split {json.dumps(splits)}")
    return result


# Enough to name every bad file of an ordinary night; a corpus broken wholesale (a wrong
# folder, a re-encoded export) points to its quarantine's findings.json instead of flooding.
MAX_LOGGED_FINDINGS = 50


def report_findings(load: CorpusLoad) -> None:
    """Each quarantined report's errors and each loaded report's warnings (a GB18030 text, ...)
    in the flow run's log, naming file and line, as `angiokg validate` prints them: a report
    read with a warning goes into training, so the night must say so where operators read."""
    logger = get_run_logger()
    lines = [f.format() for f in load.to_report]
    for line in lines[:MAX_LOGGED_FINDINGS]:
        logger.warning("ingest: %s", line)
    if len(lines) > MAX_LOGGED_FINDINGS:
        logger.warning("ingest: %d more finding(s); all of them: `angiokg validate %s`, and the "
                       "quarantined reports' in quarantine/findings.json",
                       len(lines) - MAX_LOGGED_FINDINGS, load.root)
