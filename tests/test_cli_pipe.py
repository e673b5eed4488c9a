"""A command whose reader closes the pipe early (`angiokg cypher ... | head`) ends quietly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_closed_pipe_ends_without_a_traceback():
    # The command's handler is swapped for one printing far more than a pipe's buffer holds,
    # and the reader stops after one line, so the writer meets a closed pipe.
    script = (
        "import sys; from flows.cli import main\n"
        "sys.stdout.reconfigure(line_buffering=True)\n"
                "from flows import cli\n"
        "def handler(args):\n"
        "    for i in range(200000):\n"
        "        print('row', i)\n"
        "orig = cli.build_parser\n"
        "def build():\n"
        "    p = orig(); parse = p.parse_args\n"
        "    def parse_args(argv):\n"
        "        args = parse(argv); args.handler = handler; return args\n"
        "    p.parse_args = parse_args; return p\n"
        "cli.build_parser = build\n"
        "sys.exit(main(['records', 'x', '--out', 'y']))\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = writer.stdout.readline()
    writer.stdout.close()
    stderr = writer.stderr.read().decode()
    code = writer.wait(timeout=60)
    assert first.startswith(b"row 0")
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert code == 0
