"""Sentence boundaries of a report, as the guideline defines them.

A sentence ends at 。, ；, ; or a line break. The ending punctuation belongs to the sentence it
ends; line breaks (`\\n`, `\\r`) belong to no sentence. Empty and whitespace-only sentences are
dropped. The validator ("relations never cross sentences") and the example builder both use this
one function, so they can never disagree about where a sentence ends.
"""

from __future__ import annotations

SENTENCE_END = frozenset("。；;")
LINE_BREAKS = frozenset("\r\n")


def sentence_boundaries(text: str) -> list[tuple[int, int]]:
    """`(start, end)` character offsets of each sentence of `text`, in order."""
    bounds: list[tuple[int, int]] = []
    start = 0

    def close(end: int) -> None:
        if text[start:end].strip():
            bounds.append((start, end))

    for i, ch in enumerate(text):
        if ch in LINE_BREAKS:
            close(i)
            start = i + 1
        elif ch in SENTENCE_END:
            close(i + 1)
            start = i + 1
    close(len(text))
    return bounds
