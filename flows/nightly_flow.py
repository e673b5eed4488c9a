"""nightly_flow: ingest -> (retrain when the annotations changed) -> extract new reports ->
the next annotation queue -> load the graph -> the night's summary on this run's
Artifacts tab.

Training goes to the GPU work pool through its deployment when `train_deployment` is set (the
deployed set-up; `flows.gpu_handoff` checks a worker is online and waits with timeouts);
otherwise it runs here as a subflow. The two share the run folder, so the model the GPU worker
records as current is the one extraction reads. When training cannot happen (no GPU worker, a
timeout, a failed run), `on_no_gpu` says whether to train here instead or to carry on with the
current model and end the night Failed; either way the night's extraction and graph load run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.states import Failed, State

from flows import artifacts, gpu_handoff, run_names
from flows.annotation_queue import QueueResult, annotation_queue
from flows.export_flow import ExportResult, export_flow
from flows.extract_flow import extract_flow
from flows.ingest_flow import IngestResult, ingest_flow
from flows.logs import Explained, readable_run_logs
from flows.outputs import model_version_of, test_scores_line
from flows.parameters import (
    NightlyParams,
    NoGpuPolicy,
    Profile,
    RetrainPolicy,
    documented_by,
)
from flows.state import CurrentModel, RunLayout, read_current_model
from flows.train_flow import train_flow
from pipeline.defaults import DEFAULT_BATCH_SIZE, DEFAULT_MAX_BYTES, DEFAULT_SHARD_REPORTS
from pipeline.lock import output_lock
from pipeline.peak_memory import PhasePeaks
from pipeline.summary import RunSummary


@dataclass(frozen=True)
class Training:
    """Tonight's training: where it ran (or why not), the model it recorded, and the problem
    that will end the night Failed, if any."""

    where: str
    model: CurrentModel | None = None
    problem: str | None = None
    run: artifacts.RunLink | None = None


@dataclass(frozen=True)
class NightlyResult:
    ingest: IngestResult
    model: CurrentModel | None
    retrained: bool
    retrain_reason: str
    summary: RunSummary | None  # the extraction's; None when none ran
    export: ExportResult | None  # None when the graph load failed
    training: Training
    problems: tuple[str, ...] = ()
    queue: QueueResult | None = None
    memory: PhasePeaks | None = None  # this process's peak RSS per step


class NightFailed(Explained, RuntimeError):
    """The night ended Failed; `result` holds what it did before and after the problem."""

    def __init__(self, message: str, result: NightlyResult) -> None:
        super().__init__(message)
        self.result = result


def retrain_decision(policy: RetrainPolicy, current: CurrentModel | None, corpus_sha256: str,
                     profile: str) -> tuple[bool, str]:
    """(retrain?, why) for the policy, the current model and tonight's annotated corpus."""
    if policy == "always":
        return True, "retrain policy is 'always'"
    if current is None or not Path(current.model_dir).is_dir():
        if policy == "never":
            raise ValueError(
                "retrain='never' but there is no current model in the run folder; run once "
                "with retrain='on-change' (or train_flow) to make one"
            )
        return True, "no current model yet"
    if policy == "never":
        return False, "retrain policy is 'never'"
    if current.corpus_sha256 != corpus_sha256:
        return True, "the annotated corpus changed"
    if current.profile != profile:
        return True, f"the training profile changed ({current.profile} -> {profile})"
    return False, "the annotated corpus is unchanged"


def _train_here(params: NightlyParams, ingested: IngestResult, where: str) -> Training:
    state = train_flow(**params.train_params(ingested.split_file,
                                             ingested.corpus_sha256).arguments(),
                       return_state=True)
    link = artifacts.RunLink.of(state)
    if not state.is_completed():
        return Training(where, problem=f"training in this run ended {state.name}: "
                        f"{state.message}", run=link)
    return Training(where, model=state.result(), run=link)


def train_tonight(params: NightlyParams, ingested: IngestResult) -> Training:
    """Train where the parameters say; never raises for a training that could not happen."""
    logger = get_run_logger()
    if not params.train_deployment:
        return _train_here(params, ingested, "in this run (no train_deployment)")
    try:
        run = gpu_handoff.train_on_gpu_pool(
            params.train_deployment,
            params.train_params(ingested.split_file, ingested.corpus_sha256).as_json(),
            start_timeout_s=params.gpu_start_timeout_s,
            finish_timeout_s=params.gpu_train_timeout_s, note=logger.info,
            run_name=run_names.corpus_run_name("train", ingested.corpus_sha256))
    except gpu_handoff.GpuUnavailable as exc:
        if params.on_no_gpu == "cpu":
            logger.warning("%s. Training here, on the CPU worker, instead (on_no_gpu='cpu'); "
                           "with the default profile that takes hours", exc.reason)
            return _train_here(params, ingested, f"in this run on the CPU worker: {exc.reason}")
        return Training(f"not trained: {exc.reason}",
                        problem=f"training did not run: {exc.reason}. To train on the CPU "
                        "worker instead, run the nightly with on_no_gpu=cpu")
    except gpu_handoff.GpuTrainingFailed as exc:
        return Training("on the GPU pool, failed", problem=f"training failed: {exc}")
    link = artifacts.RunLink(run.id, run.name)
    pointer = read_current_model(RunLayout(params.out))
    if pointer is None:
        return Training(f"on the GPU pool ({run.label()})", run=link, problem=(
            f"{run.label()} finished but recorded no model in {RunLayout(params.out).state}; "
            "do both workers mount the same /data?"))
    return Training(f"on the GPU pool: {run.label()}", model=pointer, run=link)


def _queue_facts(queue: QueueResult | None) -> dict[str, object] | None:
    if queue is None:
        return None
    if queue.folder is None:
        return {"queued": "none: no new report tonight"}
    return {"queued": f"{queue.reports} of tonight's {queue.candidates} new reports",
            "open in brat": f"`{queue.folder}`",
            "order": "the angiokg-annotation-queue artifact (and queue.csv in the folder)"}


def summary_of(result: NightlyResult, links: list[artifacts.RunLink]) -> artifacts.NightSummary:
    model = result.model
    return artifacts.NightSummary(
        night=str(flow_run.name or "nightly"),
        problems=result.problems,
        retrained=result.retrained,
        retrain_reason=result.retrain_reason,
        trained_where=result.training.where,
        model_dir=model.model_dir if model else None,
        model_version=model_version_of(Path(model.model_dir)) if model else None,
        model_profile=model.profile if model else None,
        model_trained_at=model.trained_at if model else None,
        scores=test_scores_line(Path(model.model_dir)) if model else "no model",
        corpus=(result.ingest.reports, result.ingest.valid, result.ingest.quarantined),
        splits=dict(result.ingest.splits),
        extraction=result.summary,
        graph=(f"{result.export.store}: " + (
            f"loaded {len(result.export.loaded)} new run(s)" if result.export.loaded
            else "nothing new to load")) if result.export else "not loaded (see problems)",
        links=tuple(links),
        queue=_queue_facts(result.queue),
        memory=result.memory.format() if result.memory else None,
    )


@flow(name="angiokg-nightly", flow_run_name=run_names.dated("nightly"), log_prints=True,
      description="The night's work: validate the annotated reports, retrain (on the GPU pool) "
      "when they changed, extract the reports new in the archive, load them into the graph; "
      "the night's summary is on this run's Artifacts tab.")
@documented_by(NightlyParams)
def nightly_flow(annotated: Path, archive: Path, out: Path, profile: Profile = "default",
                 checkpoint: Path | None = None, retrain: RetrainPolicy = "on-change",
                 schema_path: Path | None = None, split_seed: int = 42,
                 shard_size: int = DEFAULT_SHARD_REPORTS, batch_size: int = DEFAULT_BATCH_SIZE,
                 max_report_bytes: int = DEFAULT_MAX_BYTES, wait_for_lock: bool = False,
                 workers: int = 2, dask_address: str | None = None, graph: str = "auto",
                 graph_retries: int = 3, graph_retry_delay_s: float = 10.0,
                 train_deployment: str | None = None, gpu_start_timeout_s: float = 900.0,
                 gpu_train_timeout_s: float = 6 * 3600.0,
                 on_no_gpu: NoGpuPolicy = "fail", queue_size: int = 50
                 ) -> NightlyResult | State:
    """One night. Returns its NightlyResult; a night with a problem (training that could not
    run, a failed graph load) ends Failed with one message, its data a NightFailed holding the
    same result."""
    readable_run_logs()
    params = NightlyParams.from_arguments(locals())
    # One night at a time per run folder: two at once would each train and publish.
    with output_lock(params.out, wait=params.wait_for_lock, command="nightly_flow", say=print):
        return _night(params)


def _night(params: NightlyParams) -> NightlyResult | State:
    logger = get_run_logger()
    links: list[artifacts.RunLink] = []
    memory = PhasePeaks()
    with memory.phase("ingest"):
        ingest_state = ingest_flow(**params.ingest_params().arguments(), return_state=True)
    links.append(artifacts.RunLink.of(ingest_state, "ingest"))
    ingested: IngestResult = ingest_state.result()
    current = read_current_model(RunLayout(params.out))
    retrain, why = retrain_decision(params.retrain, current, ingested.corpus_sha256,
                                    params.profile)
    logger.info("training: %s (%s)", "yes" if retrain else "no", why)
    training = Training("not needed")
    if retrain:
        with memory.phase("training"):
            training = train_tonight(params, ingested)
    if training.run:
        links.append(training.run.titled("training (evaluation, training curve)"))
    model = training.model or current
    problems = [training.problem] if training.problem else []
    if training.problem and model is not None:
        logger.warning("%s; extracting with the current model %s", training.problem,
                       model.model_dir)
    summary: RunSummary | None = None
    queue: QueueResult | None = None
    if model is None:
        problems.append("there is no model yet, so nothing was extracted")
    else:
        with memory.phase("extraction"):
            extract_state = extract_flow(
                **params.extract_params(Path(model.model_dir)).arguments(), return_state=True)
        links.append(artifacts.RunLink.of(extract_state, "extraction (run summary)"))
        summary = extract_state.result()
        if params.queue_size:
            with memory.phase("queue"):
                queue = annotation_queue(params.out, params.archive, params.annotated,
                                         summary.run_id, params.queue_size, params.schema_path,
                                         params.max_report_bytes)
    with memory.phase("graph load"):
        export_state = export_flow(**params.export_params().arguments(), return_state=True)
    links.append(artifacts.RunLink.of(export_state, "graph load"))
    exported = export_state.result() if export_state.is_completed() else None
    if exported is None:
        problems.append(f"graph load failed: {export_state.message}")
    logger.info("memory: %s", memory.format())
    result = NightlyResult(ingested, model, retrain, why, summary, exported, training,
                           tuple(problems), queue, memory)
    artifacts.publish_night_summary(summary_of(result, links))
    if problems:
        message = " | ".join(problems)
        return Failed(message=message, data=NightFailed(message, result))
    return result
