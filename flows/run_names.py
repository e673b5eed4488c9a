"""Flow run names an operator can read: `nightly-2026-12-01`, `train-<corpus hash>`.

Prefect calls these when a run starts (the flows' `flow_run_name`), for deployment runs and
subflows alike. The night's date is taken in the schedule's time zone: 02:00 in Shanghai is the
evening before in UTC, and the run belongs to the Shanghai date.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

TIMEZONE_ENV = "ANGIOKG_TIMEZONE"
DEFAULT_TIMEZONE = "Asia/Shanghai"
HASH_CHARS = 12


def schedule_timezone() -> ZoneInfo:
    return ZoneInfo(os.environ.get(TIMEZONE_ENV) or DEFAULT_TIMEZONE)


def night_of(moment: datetime | None, zone: ZoneInfo) -> date:
    """The calendar date of `moment` (aware; now when None) in the schedule's time zone."""
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).date()


def dated(prefix: str) -> Callable[[], str]:
    """`<prefix>-YYYY-MM-DD`, the date of the run's scheduled start."""
    def name() -> str:
        from prefect.runtime import flow_run

        return f"{prefix}-{night_of(flow_run.scheduled_start_time, schedule_timezone())}"

    return name


def corpus_run_name(prefix: str, corpus_sha256: str) -> str:
    return f"{prefix}-{corpus_sha256[:HASH_CHARS]}"


def by_corpus(prefix: str) -> Callable[[], str]:
    """`<prefix>-<first 12 hex of the annotated corpus's hash>`: the same corpus, the same name
    (and the same model directory). The hash is the run's `corpus_sha256` parameter when given,
    else computed from `annotated`."""
    def name() -> str:
        from prefect.runtime import flow_run

        from flows.state import tree_sha256

        parameters = flow_run.parameters
        if parameters.get("corpus_sha256"):  # ingest hashed it already tonight
            return corpus_run_name(prefix, str(parameters["corpus_sha256"]))
        annotated = Path(str(parameters.get("annotated", "")))
        if not annotated.is_dir():  # the flow itself says what is wrong with it
            return f"{prefix}-no-corpus"
        return corpus_run_name(prefix, tree_sha256(annotated))

    return name
