"""A run of the protocol in a child process, with the regex FakeExtractor: for the tests that
need real processes (kills at a moment, concurrent runs). Prints the summary as JSON.

    python tests/run_child.py ARCHIVE OUT [--run-id ID] [--kill-at MOMENT] [--delay S] [--wait]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from extraction_fakes import FakeExtractor  # noqa: E402
from processes import install_kill_at  # noqa: E402

from pipeline.lock import OutputLocked  # noqa: E402
from pipeline.run import RunFailed, RunSettings, run  # noqa: E402
from pipeline.sinks import ParquetSink  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("archive", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--run-id")
    parser.add_argument("--kill-at")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--shard-size", type=int, default=3)
    parser.add_argument("--wait", action="store_true")
    args = parser.parse_args()
    if args.kill_at:
        install_kill_at(args.kill_at)
    settings = RunSettings(run_id=args.run_id, shard_reports=args.shard_size,
                           wait_for_lock=args.wait)
    try:
        summary = run(args.archive, ParquetSink(args.out), FakeExtractor(delay=args.delay),
                      settings)
    except (OutputLocked, RunFailed) as exc:
        print(f"run_child: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary.to_dict(), ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
