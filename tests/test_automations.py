"""The nightly's alerting automations: built from infra/automations.yaml, then, on a real
`prefect server start`, created by `angiokg automations` (as deploy.sh runs it), idempotent, and
firing: a failed nightly and a nightly past its deadline each reach a webhook on loopback."""

from __future__ import annotations

import threading
import uuid
from datetime import time, timedelta

import pytest
import yaml
from prefect_server import BIN, ROOT, WebhookInbox, start_prefect_server, wait_for

from flows.automations import (
    AlertTarget,
    AutomationConfigError,
    build_automations,
    cron_start,
    deadline_window,
    nightly_cron,
    parse_block,
    parse_deadline,
    upsert_automations,
)

SPEC = yaml.safe_load((ROOT / "infra" / "automations.yaml").read_text(encoding="utf-8"))
FAILED, NOT_DONE = "angiokg-nightly-failed", "angiokg-nightly-not-done"


def test_the_deadline_is_counted_from_the_nightly_cron_hour():
    assert nightly_cron(ROOT / "infra" / "prefect.yaml") == "0 2 * * *"
    assert cron_start("0 2 * * *") == time(2, 0) and cron_start("30 23 * * *") == time(23, 30)
    assert deadline_window(time(2), parse_deadline("06:00")) == timedelta(hours=4)
    assert deadline_window(time(22), parse_deadline("06:30")) == timedelta(hours=8, minutes=30)
    with pytest.raises(AutomationConfigError, match="own start time"):
        deadline_window(time(2), parse_deadline("02:00"))
    with pytest.raises(AutomationConfigError, match="HH:MM"):
        parse_deadline("6am")
    with pytest.raises(AutomationConfigError, match="not a daily"):
        cron_start("*/15 * * * *")
    assert parse_block("") is None and parse_block("slack-webhook/oncall") == (
        "slack-webhook", "oncall")
    with pytest.raises(AutomationConfigError, match="<block-type>/<block-name>"):
        parse_block("oncall")


def test_the_file_gives_a_failure_alert_and_a_deadline_alert_for_the_nightly_flow():
    block = str(uuid.uuid4())
    failed, not_done = build_automations(SPEC, AlertTarget(block, "b"), timedelta(hours=4))
    assert (failed.name, not_done.name) == (FAILED, NOT_DONE)
    for automation in (failed, not_done):
        trigger = automation.trigger
        assert trigger.match_related.model_dump() == {"prefect.resource.role": "flow",
                                               "prefect.resource.name": "angiokg-nightly"}
        (action,) = automation.actions
        assert action.type == "send-notification" and str(action.block_document_id) == block
        assert "{{ flow_run.name }}" in action.subject
    assert failed.trigger.posture == "Reactive"
    assert {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"} <= failed.trigger.expect
    assert not_done.trigger.posture == "Proactive"
    assert not_done.trigger.within == timedelta(hours=4)
    assert not_done.trigger.after == {"prefect.flow-run.Pending", "prefect.flow-run.Late"}
    assert "prefect.flow-run.Completed" in not_done.trigger.expect
    assert not_done.trigger.for_each == {"prefect.resource.id"}

    quiet = build_automations(SPEC, AlertTarget(None, "none"), timedelta(hours=4))
    assert [a.actions[0].type for a in quiet] == ["do-nothing", "do-nothing"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_prefect_server(tmp_path_factory.mktemp("prefect-automations"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(server):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: server.api_url}):
        yield server


@pytest.fixture(scope="module")
def inbox(api):
    inbox = WebhookInbox()
    inbox.save_block("angiokg-test-alerts")
    yield inbox
    inbox.close()


def _sync(server, *extra: str):
    return server.run([str(BIN / "angiokg"), "automations", "--file", "infra/automations.yaml",
                       "--prefect-file", "infra/prefect.yaml", *extra])


def _automations():
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return {a.name: a for a in client.read_automations()}


def test_angiokg_automations_creates_them_once_and_updates_them_after(api, inbox):
    first = _sync(api, "--alert-block", "custom-webhook/angiokg-test-alerts")
    assert first.returncode == 0, first.stderr
    assert f"automation {FAILED}: created" in first.stdout
    assert "custom-webhook/angiokg-test-alerts; deadline 06:00 (4 h" in first.stdout
    again = _sync(api, "--alert-block", "custom-webhook/angiokg-test-alerts",
                  "--deadline", "07:00")
    assert f"automation {NOT_DONE}: updated" in again.stdout, again.stderr
    stored = _automations()
    assert set(stored) == {FAILED, NOT_DONE}  # updated in place, not doubled
    assert stored[NOT_DONE].trigger.within == timedelta(hours=5)
    missing = _sync(api, "--alert-block", "custom-webhook/no-such-block")
    assert missing.returncode != 0
    assert "no custom-webhook block named 'no-such-block'" in missing.stderr


def test_a_failed_nightly_reaches_the_alert_block(api, inbox):
    from prefect import flow

    _sync(api, "--alert-block", "custom-webhook/angiokg-test-alerts")

    @flow(name="angiokg-nightly", flow_run_name="nightly-failing-{tag}")
    def failing_nightly(tag: str) -> None:
        raise RuntimeError("graph store unreachable")

    tag = uuid.uuid4().hex[:6]
    assert failing_nightly(tag, return_state=True).is_failed()
    (alert,) = wait_for(lambda: inbox.about(f"nightly-failing-{tag}"), timeout_s=60,
                        what="the failure alert at the webhook",
                        explain=lambda: f"received: {inbox.messages}\n{api.logs()}")
    assert alert["subject"] == f"angio-kg: nightly run nightly-failing-{tag} ended Failed"
    assert "graph store unreachable" in alert["body"]


def test_a_nightly_not_finished_by_the_deadline_reaches_the_alert_block(api, inbox):
    """The deadline window shrunk to 10 s (the least Prefect allows): one run stays Pending, as
    a hung night does; another finishes in time and must not be reported."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Completed, Pending, Running

    with get_client(sync_client=True) as client:
        target = AlertTarget(str(client.read_block_document_by_name(
            "angiokg-test-alerts", "custom-webhook").id), "test")
        upsert_automations(client, build_automations(SPEC, target, timedelta(seconds=10)))

    @flow(name="angiokg-nightly")
    def nightly() -> None: ...

    tag = uuid.uuid4().hex[:6]
    with get_client(sync_client=True) as client:
        client.create_flow_run(nightly, name=f"nightly-hung-{tag}", state=Pending())
        done = client.create_flow_run(nightly, name=f"nightly-done-{tag}", state=Pending())
        client.set_flow_run_state(done.id, Running())
        client.set_flow_run_state(done.id, Completed())
    (alert,) = wait_for(lambda: inbox.about(f"nightly-hung-{tag}"), timeout_s=60,
                        what="the deadline alert at the webhook",
                        explain=lambda: f"received: {inbox.messages}\n{api.logs()}")
    assert "has not finished by the deadline" in alert["subject"]
    assert "is Pending" in alert["body"]
    threading.Event().wait(8)  # past its window too: a run that finished is never reported
    assert not inbox.about(f"nightly-done-{tag}")
