"""`angiokg automations`: the operator's commands for a Prefect server (deploy.sh runs them)."""

from __future__ import annotations

import argparse
from pathlib import Path


def run_automations(args: argparse.Namespace) -> int:
    from flows.automations import AutomationConfigError, sync_automations

    try:
        done = sync_automations(args.file, args.prefect_file, args.deadline, args.alert_block)
    except (AutomationConfigError, OSError) as exc:
        raise SystemExit(f"angiokg automations: {exc}") from None
    for line in done:
        print(line)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from flows.automations import DEFAULT_DEADLINE

    p = subparsers.add_parser(
        "automations", help="create or update the nightly's alerting automations",
        description="Creates the automations of infra/automations.yaml on the Prefect server at "
                    "PREFECT_API_URL (or updates those of the same name): an alert when a "
                    "nightly run fails or crashes, and one when it has not finished by the "
                    "deadline.")
    p.add_argument("--file", type=Path, default=Path("infra/automations.yaml"),
                   help="the automations (default infra/automations.yaml)")
    p.add_argument("--prefect-file", type=Path, default=Path("infra/prefect.yaml"),
                   help="where the nightly's cron is (default infra/prefect.yaml)")
    p.add_argument("--deadline", default=DEFAULT_DEADLINE,
                   help=f"HH:MM by which a night must have finished (default {DEFAULT_DEADLINE})")
    p.add_argument("--alert-block", default="",
                   help="notification block as <block-type>/<block-name>; none: the "
                        "automations fire but reach no one")
    p.set_defaults(handler=run_automations)
