"""ingest_flow under a temporary Prefect API: outputs on disk, quarantine, cache on content."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import pytest

from flows.ingest_flow import ingest_flow
from flows.parameters import IngestParams
from ingest.generator import generate_corpus

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _corpus(root: Path, n: int = 6) -> Path:
    generate_corpus(n, seed=3, out_dir=root)
    (root / "bad.txt").write_text("前降支狭窄", encoding="utf-8")
    (root / "bad.ann").write_text("T1\tNoSuchType 0 3\t前降支\n", encoding="utf-8")
    return root


def test_ingest_flow_writes_split_stats_and_quarantine(tmp_path):
    corpus = _corpus(tmp_path / "annotated")
    state = ingest_flow(annotated=corpus, out=tmp_path / "run", return_state=True)
    assert state.is_completed()
    result = state.result()
    assert (result.reports, result.valid, result.quarantined) == (7, 6, 1)
    with result.split_file.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and "bad" not in {r["report_id"] for r in rows}
    assert sum(result.splits.values()) == 6
    assert json.loads(result.stats.read_text("utf-8"))["reports"] == 6
    assert (result.quarantine_dir / "bad.ann").exists()
    findings = json.loads((result.quarantine_dir / "findings.json").read_text("utf-8"))
    assert [r["report_id"] for r in findings["reports"]] == ["bad"]


def test_unchanged_corpus_is_not_read_again_but_a_changed_one_is(tmp_path):
    corpus = _corpus(tmp_path / "annotated", n=3)
    params = IngestParams(annotated=corpus, out=tmp_path / "run")
    first = ingest_flow(**params.arguments())
    results = tmp_path / "run" / "state" / "prefect-results"
    records = set(results.iterdir())
    assert records, "the read/validate result should be persisted in the run folder"

    again = ingest_flow(**params.arguments())
    assert again.corpus_sha256 == first.corpus_sha256
    assert set(results.iterdir()) == records  # a cache hit writes no new record

    shutil.copy(corpus / "rpt-000000.txt", corpus / "rpt-000999.txt")
    changed = ingest_flow(**params.arguments())
    assert changed.corpus_sha256 != first.corpus_sha256
    assert changed.reports == first.reports + 1
    assert len(set(results.iterdir())) == len(records) + 1


def test_bad_parameters_are_refused_with_a_message_naming_the_folder(tmp_path):
    with pytest.raises(ValueError, match="annotated corpus .*missing.* does not exist"):
        IngestParams(annotated=tmp_path / "missing", out=tmp_path / "run")


def test_the_flow_run_log_names_every_quarantined_file_and_every_warning(tmp_path, caplog):
    corpus = _corpus(tmp_path / "annotated", n=3)
    text = (corpus / "rpt-000001.txt").read_text(encoding="utf-8")
    (corpus / "rpt-000001.txt").write_bytes(text.encode("gb18030"))  # loads, with a warning
    prefect_logger = logging.getLogger("prefect")
    prefect_logger.addHandler(caplog.handler)  # prefect's loggers may not reach the root
    try:
        with caplog.at_level(logging.INFO):
            result = ingest_flow(annotated=corpus, out=tmp_path / "run")
    finally:
        prefect_logger.removeHandler(caplog.handler)
    assert (result.valid, result.quarantined) == (3, 1)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ingest: ")]
    assert any("rpt-000001.txt" in line and "gb18030" in line for line in said), said
    assert any("bad.ann:1" in line for line in said), said
    assert any("1 warnings" in line for line in said), said
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len({line for line in warned if line.startswith("ingest: ")}) == 2, warned
