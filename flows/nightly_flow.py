"""nightly_flow: ingest -> (retrain when the annotations changed) -> extract new reports ->
the next annotation queue -> load the graph.

Training goes to the GPU work pool through `run_deployment` when `train_deployment` is set (the
deployed set-up); otherwise it runs here as a subflow. The two share the run folder, so the
model the GPU worker records as current is the one extraction reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.deployments import run_deployment

from flows.annotation_queue import QueueResult, annotation_queue
from flows.export_flow import ExportResult, export_flow
from flows.extract_flow import extract_flow
from flows.ingest_flow import IngestResult, ingest_flow
from flows.parameters import NightlyParams, RetrainPolicy
from flows.state import CurrentModel, RunLayout, read_current_model
from flows.train_flow import train_flow
from pipeline.lock import output_lock
from pipeline.summary import RunSummary


@dataclass(frozen=True)
class NightlyResult:
    ingest: IngestResult
    model: CurrentModel
    retrained: bool
    retrain_reason: str
    summary: RunSummary
    export: ExportResult
    queue: QueueResult | None = None


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


def train_on_gpu_pool(deployment: str, params: NightlyParams, ingested: IngestResult
                      ) -> CurrentModel:
    """Run the training deployment (GPU work pool) and wait; read the model it recorded."""
    train = params.train_params(ingested.split_file, ingested.corpus_sha256)
    run = run_deployment(deployment, parameters={"params": train.model_dump(mode="json")},
                         timeout=None)
    if run.state is None or not run.state.is_completed():
        state = run.state.name if run.state else "unknown"
        raise RuntimeError(f"training deployment {deployment} ended {state} (flow run "
                           f"{run.name}); see its logs in the Prefect UI")
    pointer = read_current_model(RunLayout(params.out))
    if pointer is None:
        raise RuntimeError(f"training deployment {deployment} finished but recorded no model in "
                           f"{RunLayout(params.out).state}; do both workers mount the same /data?")
    return pointer


@flow(name="angiokg-nightly", log_prints=True)
def nightly_flow(params: NightlyParams) -> NightlyResult:
    # One night at a time per run folder: two at once would each train and publish.
    with output_lock(params.out, wait=params.wait_for_lock, command="nightly_flow", say=print):
        return _night(params)


def _night(params: NightlyParams) -> NightlyResult:
    logger = get_run_logger()
    ingested = ingest_flow(params.ingest_params())
    current = read_current_model(RunLayout(params.out))
    retrain, why = retrain_decision(params.retrain, current, ingested.corpus_sha256,
                                    params.profile)
    logger.info("training: %s (%s)", "yes" if retrain else "no", why)
    if not retrain:
        model = current
    elif params.train_deployment:
        model = train_on_gpu_pool(params.train_deployment, params, ingested)
    else:
        model = train_flow(params.train_params(ingested.split_file, ingested.corpus_sha256))
    extract = params.extract_params(Path(model.model_dir))
    summary = extract_flow(extract)
    queue = None
    if params.queue_size:
        queue = annotation_queue(params.out, params.archive, params.annotated,
                                 Path(model.model_dir), summary.run_id, params.queue_size,
                                 params.schema_path)
    exported = export_flow(params.export_params())
    return NightlyResult(ingested, model, retrain, why, summary, exported, queue)
