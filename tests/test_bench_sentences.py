"""bench/bench_sentences.py --quick: one row per size and layout, rates that are positive."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_quick_sentence_benchmark_prints_a_row_per_size_and_layout():
    done = subprocess.run([sys.executable, "bench/bench_sentences.py", "--quick", "--rounds", "1"],
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    header, body = rows[0], rows[1:]
    assert header == ["characters", "layout", "pieces", "seconds", "characters/s"]
    assert [(r[0], r[1]) for r in body] == [(size, layout) for size in ("1,000", "10,000")
                                            for layout in ("one line", "sentence ends")]
    for characters, layout, pieces, _, rate in body:
        n = int(characters.replace(",", ""))
        # a one-line report is cut into pieces of at most 126 characters; with ends, one a 。
        expected = -(-n // 126) if layout == "one line" else -(-n // 30)
        assert int(pieces.replace(",", "")) >= expected
        assert float(rate.replace(",", "")) > 0
