"""train_flow: (vocabulary + MLM pre-training on the annotated text and the unannotated archive,
when no checkpoint) -> fine-tune -> evaluate ->
publish the evaluation and the training curve -> record the model as the current one.

`extraction.train.train` does the first three steps in one plain function (they share the
corpus split and the encoder in memory). The task is cached on the corpus hash, the profile,
the checkpoint and the schema, so an unchanged training is not redone: a cache hit returns the
model directory trained before. Deployed, this flow runs in the GPU work pool; called directly it
trains on whatever device torch finds.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE

from extraction.evaluate import EvaluationReport
from extraction.train import LOG_FILE, SMALL_TEST_SPLIT, TrainResult, train
from extraction.train_config import profile
from flows import artifacts, run_names
from flows.ingest_flow import read_and_validate
from flows.logs import readable_run_logs
from flows.parameters import Profile, TrainParams, documented_by
from flows.state import (
    CurrentModel,
    RunLayout,
    tree_sha256,
    write_current_model,
)
from ingest.corpus import CorpusLoad
from ingest.schema import load_schema
from ingest.split import read_split_file

CURVE_PNG = "training_curve.png"


def model_dir_for(layout: RunLayout, corpus_sha256: str, profile_name: str) -> Path:
    """One directory per (corpus, profile): the same inputs name the same model."""
    return layout.models / f"model-{profile_name}-{corpus_sha256[:12]}"


@task
def hash_annotations(annotated: Path) -> str:
    return tree_sha256(annotated)


@task(cache_policy=(INPUTS - "load") + TASK_SOURCE, persist_result=True)
def train_model(annotated: Path, model_dir: Path, profile_name: str, checkpoint: Path | None,
                schema_path: Path | None, split_seed: int, split_file: Path | None,
                corpus_sha256: str, schema_sha256: str, load: CorpusLoad,
                archive: Path | None = None) -> TrainResult:
    # corpus_sha256 and schema_sha256 are in the signature for the cache key only (the key
    # leaves out `load`: the corpus's hash already says what it holds).
    config = replace(profile(profile_name), split_seed=split_seed)
    split = read_split_file(split_file) if split_file is not None else None
    return train(annotated, model_dir, config, bert_dir=checkpoint, archive=archive,
                 schema=load_schema(schema_path), load=load, split=split)


@task(cache_policy=NO_CACHE)
def publish_evaluation(result: TrainResult) -> EvaluationReport | None:
    if result.evaluation is None:
        return None
    side = "test" if result.test is not None else "dev"
    caveat = artifacts.evaluation_caveat(side, result.metrics.get("split") or {},
                                         SMALL_TEST_SPLIT)
    if caveat:
        get_run_logger().warning(caveat.replace("**", ""))
    artifacts.publish_evaluation(result.evaluation, result.model_dir, side, caveat)
    return result.evaluation


@task(cache_policy=NO_CACHE)
def publish_training_curve(result: TrainResult) -> Path | None:
    log = result.model_dir / LOG_FILE
    if not log.exists():
        return None
    history = artifacts.training_history(log.read_text(encoding="utf-8").splitlines())
    best = result.metrics.get("best_epoch")
    png = artifacts.plot_training_curve(history, result.model_dir / CURVE_PNG,
                                        best if isinstance(best, int) and best > 0 else None)
    artifacts.publish_training_curve(png)
    return png


@task(cache_policy=NO_CACHE)
def record_current_model(layout: RunLayout, result: TrainResult, corpus_sha256: str,
                         profile_name: str) -> CurrentModel:
    pointer = CurrentModel.now(result.model_dir, corpus_sha256, profile_name)
    write_current_model(layout, pointer)
    return pointer


@flow(name="angiokg-train", flow_run_name=run_names.by_corpus("train"), log_prints=True,
      description="Vocabulary and MLM pre-training when no checkpoint is given, fine-tuning, "
      "evaluation on the test split; records the model as the run folder's current one.")
@documented_by(TrainParams)
def train_flow(annotated: Path, out: Path, profile: Profile = "default",
               checkpoint: Path | None = None, archive: Path | None = None,
               schema_path: Path | None = None,
               split_seed: int = 42, split_file: Path | None = None,
               corpus_sha256: str | None = None) -> CurrentModel:
    """Train (or reuse the model of the same corpus, profile, checkpoint and schema), publish
    the evaluation and the training curve, record the current model."""
    readable_run_logs()
    params = TrainParams.from_arguments(locals())
    layout = RunLayout(params.out)
    corpus_sha256 = params.corpus_sha256 or hash_annotations(params.annotated)
    model_dir = model_dir_for(layout, corpus_sha256, params.profile)
    # The corpus as ingest read it: the same cached task, so after tonight's ingest this is a
    # cache hit and the corpus is not read again (a standalone run reads it here).
    load = read_and_validate.with_options(result_storage=layout.results)(
        params.annotated, params.schema_path, corpus_sha256)
    # A cached result whose directory was deleted is stale: train again.
    trainer = train_model.with_options(result_storage=layout.results,
                                       refresh_cache=not model_dir.is_dir())
    result = trainer(params.annotated, model_dir, params.profile, params.checkpoint,
                     params.schema_path, params.split_seed, params.split_file, corpus_sha256,
                     load_schema(params.schema_path).sha256, load, params.archive)
    publish_evaluation(result)
    publish_training_curve(result)
    pointer = record_current_model(layout, result, corpus_sha256, params.profile)
    print(f"current model: {pointer.model_dir} (profile {params.profile})")
    return pointer

