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
