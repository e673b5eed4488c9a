"""`angiokg run-sample | nightly | serve`: the Prefect flows from the command line.

`run-sample` is the README's main job: the nightly flow over the bundled sample with the quick
training profile, on Prefect's ephemeral local API (no server to start, telemetry off, its
database inside the run folder), ending with where the outputs are and one analyst query's
answer. `nightly` is the same flow with every parameter on the command line; `serve` runs the
deployments on this machine, the nightly one on its cron schedule (`build_deployments` makes them;
the schedule needs a Prefect server: Prefect's ephemeral API runs no scheduler).

Prefect reads its settings when it is first imported, so the environment is set before any
import of `prefect` (this module imports the flows inside the handlers).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from flows.run_names import DEFAULT_TIMEZONE
from pipeline.defaults import DEFAULT_SHARD_REPORTS

SAMPLE_ANNOTATED = Path("data/sample/annotated")
SAMPLE_ARCHIVE = Path("data/sample/archive")
SAMPLE_OUT = Path("runs/sample")
SAMPLE_PROFILE = "sample-quick"
DEFAULT_CRON = "0 2 * * *"
SERVED_DEPLOYMENT = "local"
ANSWERED_QUERY = "findings-per-vessel-segment"
ANSWER_ROWS = 10


def offline_prefect_environment(out: Path, environ: dict[str, str] | None = None,
                                at_terminal: bool | None = None) -> dict[str, str]:
    """Environment for a local run: no telemetry, no hub, Prefect's home in the run folder, and
    no Hugging Face progress bars unless a person watches stderr (`make run > log` printed every
    redraw of "Loading weights"; ours check for a terminal themselves).

    A variable the user already set wins (e.g. PREFECT_API_URL pointing at a real server).
    """
    from flows.state import RunLayout

    env = os.environ if environ is None else environ
    defaults = {
        "PREFECT_HOME": str(RunLayout(out).prefect_home.resolve()),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        # A busy 2-core machine can take a while to bring the ephemeral server up.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    }
    if not (sys.stderr.isatty() if at_terminal is None else at_terminal):
        defaults["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    applied = {k: v for k, v in defaults.items() if k not in env}
    env.update(applied)
    if "PREFECT_HOME" in applied:
        # Prefect makes its home without parents; in a fresh run folder its SQLite database
        # then cannot be opened and the ephemeral API never starts.
        Path(applied["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    return applied


def _nightly_args(parser: argparse.ArgumentParser, *, sample: bool) -> None:
    def path_arg(flag: str, default: Path, what: str) -> None:
        if sample:
            parser.add_argument(flag, type=Path, default=default,
                                help=f"{what} (default {default})")
        else:
            parser.add_argument(flag, type=Path, required=True, help=what)

    path_arg("--annotated", SAMPLE_ANNOTATED, "folder of annotated brat reports")
    path_arg("--archive", SAMPLE_ARCHIVE, "report archive to extract")
    path_arg("--out", SAMPLE_OUT, "run folder: outputs and the state of the next run")
    parser.add_argument("--profile", default=SAMPLE_PROFILE if sample else "default",
                        choices=("tiny", "sample-quick", "default"), help="training profile")
    parser.add_argument("--checkpoint", type=Path, help="pre-trained BERT directory "
                        "(e.g. bert-base-chinese); default: vocabulary + MLM pre-training")
    parser.add_argument("--retrain", default="on-change", choices=("always", "never", "on-change"))
    parser.add_argument("--graph", default="auto",
                        help="auto (Neo4j when NEO4J_URI is set, else embedded), ladybug, neo4j")
    parser.add_argument("--workers", type=int, default=2, help="parallel extraction shards")
    parser.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_REPORTS,
                        help="reports per shard task")
    parser.add_argument("--wait", action="store_true",
                        help="when another run is writing the run folder, wait for it "
                             "(default: refuse, naming it)")
    parser.add_argument("--dask-address", help="Dask scheduler for the extraction shards")
    parser.add_argument("--queue-size", type=int, default=50,
                        help="reports in the next annotation queue, queue/<run_id>/ (0: none)")


def register(subparsers: argparse._SubParsersAction) -> None:
    sample = subparsers.add_parser(
        "run-sample", help="the main job: the nightly flow on the bundled sample",
        description="Ingest and validate the sample's annotated reports, train the model with "
                    "the quick sample profile, extract the sample archive into Parquet, load "
                    "the embedded graph, and print where everything is.")
    _nightly_args(sample, sample=True)
    sample.set_defaults(handler=run_nightly)

    nightly = subparsers.add_parser("nightly", help="run the nightly flow once")
    _nightly_args(nightly, sample=False)
    nightly.set_defaults(handler=run_nightly)

    serve = subparsers.add_parser(
        "serve", help="serve the deployments on this machine (nightly on a cron schedule)",
        description="Registers the nightly, train, ingest, extract and export deployments with "
                    "the Prefect server at PREFECT_API_URL (its scheduler starts the nightly "
                    "run) and runs them in this process until stopped. For work pools and "
                    "workers use infra/prefect.yaml (infra/README.md).")
    _nightly_args(serve, sample=False)
    serve.add_argument("--cron", default=DEFAULT_CRON, help=f"default {DEFAULT_CRON!r}")
    serve.add_argument("--timezone", default=DEFAULT_TIMEZONE, help=f"default {DEFAULT_TIMEZONE}")
    serve.set_defaults(handler=run_serve)


def nightly_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The NightlyParams fields the command line sets (validated by pydantic, not here)."""
    return {
        "annotated": args.annotated, "archive": args.archive, "out": args.out,
        "profile": args.profile, "checkpoint": args.checkpoint, "retrain": args.retrain,
        "graph": args.graph, "workers": args.workers, "shard_size": args.shard_size,
        "dask_address": args.dask_address, "wait_for_lock": args.wait,
        "queue_size": args.queue_size,
    }


def _params(args: argparse.Namespace):
    from pydantic import ValidationError

    from flows.parameters import NightlyParams, explain

    given = nightly_parameters(args)

    def flag(name: str) -> str:  # the command-line flag when the field is one
        return f"--{name.replace('_', '-')}" if name in given else name

    try:
        return NightlyParams(**given)
    except ValidationError as exc:
        raise SystemExit(f"angiokg {args.command}: {explain(exc, flag)}") from None


def run_nightly(args: argparse.Namespace) -> int:
    from pipeline.lock import OutputLocked, refuse_if_held

    params = _params(args)  # refuse bad parameters before touching the environment
    try:
        if not params.wait_for_lock:
            # Before Prefect starts (half a minute on a busy machine): the flow takes the lock.
            refuse_if_held(params.out)
    except OutputLocked as exc:
        print(f"angiokg {args.command}: {exc}", file=sys.stderr)
        return 2
    offline_prefect_environment(params.out)
    from flows.nightly_flow import NightFailed, nightly_flow
    from flows.outputs import describe_outputs

    try:
        result = nightly_flow(**params.arguments())
    except OutputLocked as exc:  # taken between the check and the flow's own lock
        print(f"angiokg {args.command}: {exc}", file=sys.stderr)
        return 2
    except NightFailed as failed:
        print(describe_outputs(params.out, failed.result, ANSWERED_QUERY, ANSWER_ROWS))
        print(f"\nangiokg {args.command}: the night ended Failed: {failed}", file=sys.stderr)
        return 1
    print(describe_outputs(params.out, result, ANSWERED_QUERY, ANSWER_ROWS))
    return 0


def _as_parameters(model: Any) -> dict[str, Any]:
    """A flow's parameters as JSON (paths as strings): what the API stores and validates.
    Top-level, so a run overriding one keeps the deployment's others."""
    return model.as_json()


def nightly_schedule(cron: str = DEFAULT_CRON, timezone: str = DEFAULT_TIMEZONE):
    """The nightly cron schedule, checked now (a bad cron or time zone names the option)."""
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    try:
        return CronSchedule(cron=cron, timezone=timezone)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = "timezone" if "timezone" in error["loc"] else "cron"
        value, example = ((timezone, DEFAULT_TIMEZONE) if field == "timezone"
                          else (cron, DEFAULT_CRON))
        reason = error["msg"].removeprefix("Value error, ")
        raise ValueError(f"--{field} {value!r} is not valid ({reason}); "
                         f"pass e.g. --{field} {example!r}") from None


def build_deployments(params: Any, cron: str = DEFAULT_CRON,
                      timezone: str = DEFAULT_TIMEZONE) -> list[Any]:
    """The deployments `angiokg serve` runs: the nightly flow on the cron schedule in
    `timezone`; train, ingest, extract and export on demand, each with `params`' matching
    sub-parameters. Each is named `local` (`angiokg-nightly/local`, ...): a deployment is its
    flow plus its name, so these never replace infra/prefect.yaml's worker deployments on the
    same server.

    Returns `prefect.deployments.runner.RunnerDeployment`s; nothing is registered or served.
    """
    from flows.export_flow import export_flow
    from flows.extract_flow import extract_flow
    from flows.ingest_flow import ingest_flow
    from flows.nightly_flow import nightly_flow
    from flows.train_flow import train_flow

    schedule = nightly_schedule(cron, timezone)

    def deployment(flow: Any, model: Any, **options: Any) -> Any:
        options.setdefault("description", flow.description)
        return flow.to_deployment(name=SERVED_DEPLOYMENT, parameters=_as_parameters(model),
                                  tags=["angiokg"], **options)

    return [
        deployment(nightly_flow, params, schedules=[schedule], concurrency_limit=1,
                   description=f"{nightly_flow.description} Scheduled: cron {cron!r}, time "
                   f"zone {timezone}."),
        deployment(train_flow, params.train_params(), concurrency_limit=1),
        deployment(ingest_flow, params.ingest_params()),
        deployment(extract_flow, params.extract_params(), concurrency_limit=1),
        deployment(export_flow, params.export_params(), concurrency_limit=1),
    ]


def run_serve(args: argparse.Namespace) -> int:
    params = _params(args)
    offline_prefect_environment(params.out)
    from prefect import serve
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        # Prefect's ephemeral API runs no scheduler: the nightly run would never start.
        raise SystemExit(
            f"angiokg {args.command}: PREFECT_API_URL is not set; the cron schedule needs a "
            "Prefect server: start one (`prefect server start`) and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api")
    # Run names carry the night's date in the schedule's time zone (flows.run_names).
    os.environ.setdefault("ANGIOKG_TIMEZONE", args.timezone)
    try:
        deployments = build_deployments(params, args.cron, args.timezone)
    except ValueError as exc:
        raise SystemExit(f"angiokg {args.command}: {exc}") from None
    serve(*deployments)
    return 0
