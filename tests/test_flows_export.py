"""export_flow against a graph store that is down, fails midway, or is killed midway.

Each time: the loads are retried with back-off, the flow ends Failed with a message naming the
run and what to do, the Parquet datasets are untouched, the ledger does not list the run that
is not in the graph, and the next export_flow loads what was missed, with the graph then equal
to a clean load (no node or edge twice, none missing). Credentials never reach the run's logs,
artifacts, error or files.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from extraction_fakes import FakeExtractor
from graph_faults import (
    MIDWAY,
    Fault,
    assert_graph_holds_every_row,
    attempts,
    clean_load,
    graph_contents,
    repair,
)
from processes import sigkill_when

from export.graph_stores import LADYBUG_DB, GraphStoreError, store_key
from export.published import publications, published_runs
from flows.export_flow import export_flow
from flows.parameters import ExportParams
from flows.state import RunLayout, read_graph_ledger
from ingest.generator import generate_corpus
from pipeline.run import RunSettings, run
from pipeline.sinks import ParquetSink

pytestmark = pytest.mark.usefixtures("prefect_harness")

ROOT = Path(__file__).resolve().parents[1]
FAULTY = "graph_faults:store"


def _two_runs(root: Path) -> RunLayout:
    """A run folder whose extract/ holds two published runs (run-a, then run-b)."""
    layout = RunLayout(root / "run")
    for run_id, seed, n in (("run-a", 3, 5), ("run-b", 4, 4)):
        archive = root / run_id
        generate_corpus(n, seed=seed, out_dir=archive, annotated=False, prefix=run_id)
        run(archive, ParquetSink(layout.extract), FakeExtractor(),
            RunSettings(run_id=run_id, shard_reports=3))
    return layout


def _files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _params(layout: RunLayout, **kw) -> ExportParams:
    return ExportParams(out=layout.root, graph=FAULTY, **kw)


def _failure(state) -> str:
    assert state.is_failed(), state
    error = state.result(raise_on_failure=False)
    assert isinstance(error, GraphStoreError), error
    return str(error)


def _then_the_next_run_loads_what_was_missed(layout: RunLayout, missed: tuple[str, ...],
                                             tmp_path: Path) -> None:
    repair(layout)
    result = export_flow(**_params(layout, retries=0).arguments())
    assert result.loaded == missed
    runs = published_runs(layout.extract)
    assert read_graph_ledger(layout, store_key(FAULTY)) == [
        p.publish_id for p in publications(layout.extract)]
    want = clean_load(layout.extract, runs, tmp_path / "clean.lbug")
    assert graph_contents(layout.graph / LADYBUG_DB) == want
    assert_graph_holds_every_row(want, layout.extract)


def test_unreachable_store_retries_with_back_off_then_fails_saying_what_to_do(tmp_path):
    layout = _two_runs(tmp_path)
    Fault("unreachable").save(layout)
    parquet = _files(layout.extract)

    state = export_flow(**_params(layout, retries=2, retry_delay_s=0.2).arguments(),
                        return_state=True)

    message = _failure(state)
    assert "failed to load run run-a after 3 tries" in message
    assert "SimulatedOutage: graph store refused the connection" in message
    assert "Nothing is lost" in message and str(layout.extract) in message
    assert "2 run(s) not yet in the graph" in message and "run-a, run-b" in message
    assert "To do: fix the store" in message and "export_flow" in message and "again" in message
    # One message: the state's, as the flow's one ERROR line said it; no traceback around it.
    assert state.message == message
    opened = [a.at for a in attempts(layout, "open")]
    assert len(opened) == 3  # the first try and two retries, then the flow gave up
    waits = [later - earlier for earlier, later in zip(opened, opened[1:], strict=False)]
    assert waits[0] >= 0.2 - 0.02 and waits[1] >= 0.4 - 0.02, waits  # d, then 2d
    assert _files(layout.extract) == parquet
    assert read_graph_ledger(layout, store_key(FAULTY)) == []

    logs = _flow_run_log_records(state.state_details.flow_run_id)
    retries = [(level, m) for level, m in logs if m.startswith("graph load of run run-a")]
    assert [level for level, _ in retries] == [logging.WARNING, logging.WARNING]
    assert "(try 1 of 3: SimulatedOutage" in retries[0][1] and "next try in 0.2 s" in retries[0][1]
    errors = [m for level, m in logs if level >= logging.ERROR and "To do: fix the store" in m]
    assert errors == [message]  # said once, in full
    assert not [m for _, m in logs if "Traceback" in m or "\\n" in m]

    _then_the_next_run_loads_what_was_missed(layout, ("run-a", "run-b"), tmp_path)


def _flow_run_log_records(flow_run_id) -> list[tuple[int, str]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [(log.level, log.message) for log in logs]


def test_store_failing_midway_through_a_run_fails_the_flow_and_the_next_run_reloads_it(
        tmp_path):
    layout = _two_runs(tmp_path)
    Fault("fail", run_id="run-b", at=MIDWAY).save(layout)
    parquet = _files(layout.extract)

    state = export_flow(**_params(layout, retries=1, retry_delay_s=0).arguments(),
                        return_state=True)

    message = _failure(state)
    assert "failed to load run run-b after 2 tries" in message
    assert f"connection to the graph store lost at {MIDWAY!r}" in message
    assert "1 run(s) not yet in the graph are listed as such (run-b)" in message
    assert len(attempts(layout, "load", "run-b")) == 2
    assert len(attempts(layout, "load", "run-a")) == 1
    assert _files(layout.extract) == parquet
    assert read_graph_ledger(layout, store_key(FAULTY)) == [
        publications(layout.extract)[0].publish_id]  # run-a's
    # It stopped midway, in the run's one transaction: nothing of run-b is in the graph (it
    # used to be half there, its Mentions without their MENTIONS edges), run-a is intact.
    half = graph_contents(layout.graph / LADYBUG_DB)
    assert not any(row[1].startswith("run-b") for row in half["Mention"])
    assert any(row[1].startswith("run-a") for row in half["Mention"])
    assert not any(src.startswith("run-b") for src, *_ in half["MENTIONS"])

    _then_the_next_run_loads_what_was_missed(layout, ("run-b",), tmp_path)


def test_a_retry_after_a_half_load_completes_the_run_without_duplicates(tmp_path):
    layout = _two_runs(tmp_path)
    Fault("fail", run_id="run-a", at=MIDWAY, times=1).save(layout)

    result = export_flow(**_params(layout, retries=2, retry_delay_s=0).arguments())

    assert result.loaded == ("run-a", "run-b")
    assert len(attempts(layout, "load", "run-a")) == 2
    runs = published_runs(layout.extract)
    want = clean_load(layout.extract, runs, tmp_path / "clean.lbug")
    assert graph_contents(layout.graph / LADYBUG_DB) == want
    assert_graph_holds_every_row(want, layout.extract)


_LOAD_EVERY_RUN = """
import sys
from pathlib import Path
from export.graph_stores import store_key
from export.published import publications
from flows.export_flow import load_run_into_graph
from flows.state import RunLayout
layout, store = RunLayout(Path(sys.argv[1])), sys.argv[2]
for publication in publications(layout.extract):
    load_run_into_graph.fn(store, layout, store_key(store), publication, [])
"""


def test_sigkill_in_the_middle_of_a_graph_load_loses_and_duplicates_nothing(tmp_path):
    layout = _two_runs(tmp_path)
    Fault("hang", run_id="run-b", at=MIDWAY).save(layout)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    proc = subprocess.Popen([sys.executable, "-c", _LOAD_EVERY_RUN, str(layout.root), FAULTY],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    sigkill_when(proc, (layout.root / "graph-hanging").exists, timeout_s=120,
                 what="the load reached its midway point")
    # run-a was in before the kill; run-b was cut off halfway and is not in the ledger.
    assert read_graph_ledger(layout, store_key(FAULTY)) == [
        publications(layout.extract)[0].publish_id]  # run-a's

    _then_the_next_run_loads_what_was_missed(layout, ("run-b",), tmp_path)


def _flow_run_logs_and_artifacts(flow_run_id) -> tuple[list[str], list[str]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)  # logs are sent in the background, in batches
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return ([log.message for log in logs],
            [a.model_dump_json() for a in artifacts])


@pytest.mark.parametrize("where", ["env", "env-and-uri", "prefect-secret"])
def test_a_failed_neo4j_run_leaves_the_password_nowhere(tmp_path, monkeypatch, caplog, where):
    from prefect.blocks.system import Secret

    secret = f"pw-{uuid.uuid4().hex}"
    layout = _two_runs(tmp_path)
    for name in ("NEO4J_PASSWORD", "NEO4J_PASSWORD_SECRET", "NEO4J_USER", "NEO4J_DATABASE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NEO4J_URI", "bolt://127.0.0.1:9")  # the discard port: nothing listens
    if where == "env":
        monkeypatch.setenv("NEO4J_PASSWORD", secret)
    elif where == "env-and-uri":  # an operator who also put the credentials in the URI
        monkeypatch.setenv("NEO4J_URI", f"bolt://loader:{secret}@127.0.0.1:9")
        monkeypatch.setenv("NEO4J_PASSWORD", secret)
    else:
        block = f"neo4j-password-{uuid.uuid4().hex[:8]}"
        Secret(value=secret).save(block)
        monkeypatch.setenv("NEO4J_PASSWORD_SECRET", block)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="neo4j")
    caplog.set_level(logging.DEBUG, logger="export")
    prefect_logger = logging.getLogger("prefect")
    prefect_logger.addHandler(caplog.handler)  # prefect's loggers may not reach the root
    try:
        state = export_flow(**ExportParams(out=layout.root, graph="neo4j", retries=1,
                                           retry_delay_s=0).arguments(), return_state=True)
    finally:
        prefect_logger.removeHandler(caplog.handler)

    message = _failure(state)
    # The password was found (env or block) and the driver got as far as the closed port;
    # in the URI, the driver refuses it, and the message says where credentials belong.
    cause = ("Neo4jConfigError: NEO4J_URI bolt://***@127.0.0.1:9 was refused"
             if where == "env-and-uri" else "ServiceUnavailable: Couldn't connect")
    assert f"after 2 tries ({cause}" in message, message
    assert "is Neo4j running and reachable at NEO4J_URI" in message
    logs, artifacts = _flow_run_logs_and_artifacts(state.state_details.flow_run_id)
    assert any("failed to load run run-a" in line for line in logs), logs
    assert "127.0.0.1:9" in caplog.text  # the capture saw the store's own log lines
    files = {p: p.read_bytes() for p in layout.root.rglob("*") if p.is_file()}
    assert files  # the Parquet datasets at least
    assert secret not in message and secret not in (state.message or "")
    assert not [line for line in logs if secret in line]
    assert not [a for a in artifacts if secret in a]
    assert secret not in caplog.text
    assert not [p for p, data in files.items() if secret.encode() in data]
