"""`angiokg`: one command line for every room of the pipeline.

Each package owns the argparse glue for its own commands in a `*_cli.py` module exposing
`register(subparsers)`; this module only assembles them, so adding a command touches one room.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from extraction import jemalloc
from flows.secrets import prefect_secret

COMMAND_MODULES = (
    "ingest.validate_cli",
    "ingest.corpus_cli",
    "extraction.model_cli",
    "pipeline.cli",
    "export.export_cli",
    "flows.flows_cli",
    "flows.ops_cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="angiokg",
        description="Coronary angiography reports (brat) -> knowledge graph.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    # How a command below flows resolves a named secret (NEO4J_PASSWORD_SECRET): only flows
    # imports Prefect, so it hands the resolver down.
    parser.set_defaults(secret_loader=prefect_secret)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(subparsers)
    return parser


# Libraries that log every HTTP request at INFO: one line per Prefect API call otherwise.
QUIET_LOGGERS = ("httpx", "httpcore")


def quiet_http_clients() -> None:
    """Per-request lines only with --verbose: raise the HTTP clients' loggers to WARNING."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    quiet_http_clients()
    try:
        return int(args.handler(args) or 0)
    except BrokenPipeError:
        # `angiokg cypher ... | head` closed the pipe: the reader has what it wanted. Point
        # stdout at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def restart_under_jemalloc() -> None:
    """Replace this process with the same command under jemalloc, where it is installed and
    not yet this process's malloc (extraction/jemalloc.py says why); returns where not."""
    environ = jemalloc.preload_environ(os.environ, jemalloc.loaded())
    if environ is not None:
        # sys.orig_argv: the interpreter's own options and `-m flows.cli` as they were given
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)


def entry() -> int:
    """The `angiokg` command: under jemalloc where it can be had, then `main`."""
    try:
        restart_under_jemalloc()
    except ValueError as error:  # ANGIOKG_JEMALLOC names no file
        print(f"angiokg: {error}", file=sys.stderr)
        return 2
    return main()


if __name__ == "__main__":
    sys.exit(entry())
