import subprocess
import sys

from flows.cli import COMMAND_MODULES, build_parser


def test_every_command_module_is_importable_and_registers_a_command():
    parser = build_parser()
    subcommands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse has no API
    assert len(subcommands) >= len(COMMAND_MODULES)


def test_help_lists_the_pipeline_commands():
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("validate", "generate", "stats", "train", "evaluate", "extract", "cypher",
                    "run-sample"):
        assert command in result.stdout


def test_an_unknown_training_profile_is_refused_with_the_known_ones(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "train", str(tmp_path), "--out", str(tmp_path / "m"),
         "--profile", "bogus"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "unknown profile 'bogus'" in result.stderr and "sample-quick" in result.stderr


_LOG_LIKE_A_PREFECT_CLIENT = """
import logging, sys
from flows import cli
def handler(args):  # a command that logs as a Prefect client's httpx does
    logging.getLogger("httpx").info("HTTP Request: POST http://127.0.0.1:4200/api/x 200 OK")
    logging.getLogger("flows.test").info("a line of ours")
    return 0
parser = cli.build_parser
def build():
    p = parser()
    sub = p._subparsers._group_actions[0]
    sub.add_parser("probe").set_defaults(handler=handler)
    return p
cli.build_parser = build
sys.exit(cli.main(sys.argv[1:]))
"""


def test_commands_print_no_http_request_lines_unless_verbose():
    quiet = subprocess.run([sys.executable, "-c", _LOG_LIKE_A_PREFECT_CLIENT, "probe"],
                           capture_output=True, text=True, check=True)
    assert "a line of ours" in quiet.stderr and "HTTP Request" not in quiet.stderr
    verbose = subprocess.run([sys.executable, "-c", _LOG_LIKE_A_PREFECT_CLIENT, "-v", "probe"],
                             capture_output=True, text=True, check=True)
    assert "HTTP Request" in verbose.stderr
