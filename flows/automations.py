"""The nightly's alerting automations: infra/automations.yaml made concrete and put on the server.

The YAML holds what an operator reads and edits (which events, the messages). Two things are
known only when deploying, and this module fills them in: the notification block the alerts go
to (its id on this server), and the deadline window (from the nightly's cron hour to the hour
by which it must have finished). Each automation is created, or updated in place when one of
that name exists, so running deploy.sh again changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time, timedelta
from pathlib import Path
from typing import Any

import yaml
from prefect.events.schemas.automations import AutomationCore

NIGHTLY_DEPLOYMENT = "nightly"
DEADLINE_WITHIN = "deadline"  # the placeholder in the YAML
DEFAULT_DEADLINE = "06:00"
_HH_MM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_DAILY_CRON = re.compile(r"^(\d{1,2})\s+(\d{1,2})\s+\*\s+\*\s+\*$")
_BLOCK = re.compile(r"^([a-z0-9-]+)/([A-Za-z0-9_-]+)$")


class AutomationConfigError(ValueError):
    """A setting or file the automations are built from is wrong; the message says which."""


def parse_deadline(text: str) -> time:
    match = _HH_MM.match(text.strip())
    if not match:
        raise AutomationConfigError(
            f"deadline {text!r} is not an hour as HH:MM; pass e.g. {DEFAULT_DEADLINE}")
    return time(int(match[1]), int(match[2]))


def cron_start(cron: str) -> time:
    """The time of day a daily cron (`M H * * *`, plain numbers) starts the nightly run."""
    match = _DAILY_CRON.match(cron.strip())
    if not match or int(match[1]) > 59 or int(match[2]) > 23:
        raise AutomationConfigError(
            f"the nightly cron {cron!r} is not a daily 'M H * * *' with plain numbers, so the "
            "deadline's distance from it is not one number; use such a cron in "
            "infra/prefect.yaml")
    return time(int(match[2]), int(match[1]))


def deadline_window(start: time, deadline: time) -> timedelta:
    """How long after `start` the deadline falls, wrapping past midnight (22:00 -> 06:00 is 8 h).

    Wall-clock hours in the schedule's time zone: on a daylight-saving night the window is an
    hour off, which an alert for a night hours late can bear.
    """
    minutes = (deadline.hour * 60 + deadline.minute) - (start.hour * 60 + start.minute)
    if minutes % (24 * 60) == 0:
        raise AutomationConfigError(
            f"deadline {deadline:%H:%M} is the nightly's own start time; give a later hour")
    return timedelta(minutes=minutes % (24 * 60))


def nightly_cron(prefect_file: Path) -> str:
    """The cron of the nightly deployment's first schedule in prefect.yaml."""
    config = yaml.safe_load(prefect_file.read_text(encoding="utf-8"))
    for deployment in config.get("deployments") or []:
        if deployment.get("name") == NIGHTLY_DEPLOYMENT:
            schedules = deployment.get("schedules") or []
            if schedules and schedules[0].get("cron"):
                return str(schedules[0]["cron"])
    raise AutomationConfigError(
        f"{prefect_file}: no deployment {NIGHTLY_DEPLOYMENT!r} with a cron schedule")


@dataclass(frozen=True)
class AlertTarget:
    """Where alerts go: a notification block's id, or None (the automation reaches no one)."""

    block_document_id: str | None
    label: str


def alert_action(target: AlertTarget, alert: Mapping[str, str]) -> dict[str, Any]:
    if target.block_document_id is None:
        return {"type": "do-nothing"}
    return {"type": "send-notification", "block_document_id": target.block_document_id,
            "subject": alert["subject"], "body": alert["body"]}


def build_automations(spec: Mapping[str, Any], target: AlertTarget,
                      within: timedelta) -> list[AutomationCore]:
    """The automations of an automations.yaml mapping, with its `alert` and `deadline` filled
    in; validated by Prefect's own models (a bad trigger fails here, not on the server)."""
    built = []
    for entry in spec.get("automations") or []:
        entry = dict(entry)
        name = entry.get("name", "<unnamed>")
        alert = entry.pop("alert", None)
        if not alert or not {"subject", "body"} <= set(alert):
            raise AutomationConfigError(f"automation {name}: needs an alert with subject and body")
        trigger = dict(entry["trigger"])
        if trigger.get("within") == DEADLINE_WITHIN:
            trigger["within"] = within.total_seconds()
        try:
            built.append(AutomationCore.model_validate(
                {**entry, "trigger": trigger, "actions": [alert_action(target, alert)]}))
        except ValueError as exc:
            raise AutomationConfigError(f"automation {name}: {exc}") from None
    if not built:
        raise AutomationConfigError("no automations in the file (expected a list `automations`)")
    return built


def parse_block(text: str) -> tuple[str, str] | None:
    """`<block-type>/<block-name>` split, or None when empty."""
    if not text.strip():
        return None
    match = _BLOCK.match(text.strip())
    if not match:
        raise AutomationConfigError(
            f"alert block {text!r} is not <block-type>/<block-name>, e.g. slack-webhook/oncall")
    return match[1], match[2]


def resolve_alert_target(client: Any, block: str) -> AlertTarget:
    """The notification block's id on this server; a clear error when it is not there."""
    from prefect.exceptions import ObjectNotFound

    parsed = parse_block(block)
    if parsed is None:
        return AlertTarget(None, "no notification block (alerts only in the UI's event feed)")
    block_type, name = parsed
    try:
        document = client.read_block_document_by_name(name, block_type)
    except ObjectNotFound:
        raise AutomationConfigError(
            f"no {block_type} block named {name!r} on this Prefect server; create it first "
            "(UI: Blocks, +), then run deploy.sh again") from None
    return AlertTarget(str(document.id), f"notification block {block_type}/{name}")


def upsert_automations(client: Any, automations: list[AutomationCore]) -> list[str]:
    """Create each automation, or update the one(s) of the same name; what was done, per name."""
    done = []
    for automation in automations:
        existing = client.read_automations_by_name(automation.name)
        for old in existing:
            client.update_automation(old.id, automation)
        if not existing:
            client.create_automation(automation)
        done.append(f"automation {automation.name}: {'updated' if existing else 'created'}")
    return done


def sync_automations(automations_file: Path, prefect_file: Path, deadline: str,
                     alert_block: str) -> list[str]:
    """Everything deploy.sh asks for: read both files, fill in, put on the server."""
    from prefect.client.orchestration import get_client

    spec = yaml.safe_load(automations_file.read_text(encoding="utf-8")) or {}
    within = deadline_window(cron_start(nightly_cron(prefect_file)), parse_deadline(deadline))
    with get_client(sync_client=True) as client:
        target = resolve_alert_target(client, alert_block)
        done = upsert_automations(client, build_automations(spec, target, within))
    hours = within.total_seconds() / 3600
    return [*done, f"alerts go to: {target.label}; deadline {deadline} "
                   f"({hours:g} h after the nightly's start)"]
