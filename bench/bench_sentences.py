"""Sentence cutting on long reports: characters per second, one line vs sentence ends.

    .venv/bin/python bench/bench_sentences.py          # 10^4, 10^5, 10^6 chars (`make bench`)
    .venv/bin/python bench/bench_sentences.py --quick  # 10^3, 10^4

A report written on one line with no 。 or ； is one guideline sentence, which the example
builder cuts into pieces of at most 126 characters (`ingest.examples.sentences_of`, the cut
both training and extraction use). The cut was quadratic in the sentence's length (400,000
characters took 29 s); the table shows whether characters/s stays flat as reports grow. The
same text with sentence ends (a 。 every 30 characters) is timed beside it, the two taking turns
round by round so that load from other processes falls on both alike.
"""

from __future__ import annotations

import argparse

from common import interleaved, machine_lines, markdown_table, medians

from ingest.document import Document
from ingest.examples import DEFAULT_MAX_CHARS, sentences_of

UNIT = "前降支近段狭窄80%，回旋支中段未见明显狭窄，右冠远段斑块 "  # 30 characters, no sentence end


def report(chars: int, sentence_ends: bool) -> Document:
    unit = UNIT.replace(" ", "。") if sentence_ends else UNIT
    text = (unit * (chars // len(unit) + 1))[:chars]
    return Document(f"{chars}-{'ends' if sentence_ends else 'one-line'}", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^3 and 10^4 characters only")
    parser.add_argument("--rounds", type=int, default=3, help="timed repetitions per case")
    args = parser.parse_args()
    sizes = (10**3, 10**4) if args.quick else (10**4, 10**5, 10**6)

    print("# Sentence cutting on long reports\n")
    print("\n".join(f"- {line}" for line in machine_lines("cpu")))
    print(f"- max_chars {DEFAULT_MAX_CHARS}; median of {args.rounds} interleaved rounds\n")
    rows = []
    for chars in sizes:
        documents = {layout: report(chars, layout == "sentence ends")
                     for layout in ("one line", "sentence ends")}
        jobs = {layout: (lambda d=d: sentences_of(d)) for layout, d in documents.items()}
        seconds = medians(interleaved(jobs, dict.fromkeys(jobs, args.rounds)))
        for layout, document in documents.items():
            pieces = len(sentences_of(document))
            rows.append([f"{chars:,}", layout, f"{pieces:,}", f"{seconds[layout]:.4f}",
                         f"{chars / seconds[layout]:,.0f}"])
    print("## 1. Cutting one report into sentences\n")
    print(markdown_table(["characters", "layout", "pieces", "seconds", "characters/s"], rows))


if __name__ == "__main__":
    main()
