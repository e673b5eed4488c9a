"""Near-duplicate reports: MinHash signatures over character n-grams and a banded LSH index.

Hospitals' reports are written from templates, and a report nearly identical to one already
annotated (or already queued) teaches the model nothing new. Two reports are near-duplicates
when the Jaccard similarity of their sets of character n-grams (whitespace removed) is at least
the threshold; MinHash estimates it from two signatures, and banding the signatures finds the
candidates without comparing every pair.

Our own, small: `datasketch` does the same, but needs SciPy (35 MB) only to choose the band
sizes, and we need one fixed threshold, an index that also removes (a candidate replaced by a
better one), and nothing persisted.

Defaults (measured on data/sample, docs/annotation-loop.md): 4-grams; 128 hash functions in 16
bands of 8 rows, so a pair at Jaccard 0.8 is a candidate with probability 0.95 and one at 0.5
with 0.06; a candidate counts as a near-duplicate when its estimated Jaccard is >= 0.8.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

DEFAULT_NGRAM = 4
DEFAULT_THRESHOLD = 0.8
NUM_PERM, BANDS = 128, 16
_PRIME = (1 << 61) - 1
_MASK32 = np.uint64(0xFFFFFFFF)


def shingles(text: str, n: int = DEFAULT_NGRAM) -> set[str]:
    """The character n-grams of `text` without whitespace (a shorter text is its one shingle)."""
    chars = "".join(text.split())
    if len(chars) <= n:
        return {chars}
    return {chars[i:i + n] for i in range(len(chars) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


@dataclass(frozen=True)
class MinHasher:
    """`signature(text)`: NUM_PERM minima of universal hashes (a*x + b) mod (2^61 - 1) over the
    32-bit hashes of the text's shingles; seeded, so signatures of two runs compare."""

    ngram: int = DEFAULT_NGRAM
    seed: int = 1

    def _params(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        # below 2^31 so that a * x (x < 2^32) + b stays below 2^64
        a = rng.integers(1, 1 << 31, NUM_PERM, dtype=np.uint64)
        b = rng.integers(0, 1 << 31, NUM_PERM, dtype=np.uint64)
        return a, b

    def signature(self, text: str) -> np.ndarray:
        a, b = self._params()
        hashes = np.fromiter(
            (int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=4).digest(), "little")
             for s in shingles(text, self.ngram)), dtype=np.uint64)
        values = (hashes[:, None] * a[None, :] + b[None, :]) % np.uint64(_PRIME)
        return (values & _MASK32).min(axis=0).astype(np.uint32)


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a == b))


class NearDuplicateIndex:
    """Signatures by key, banded for lookup. `near(signature)` lists the keys whose estimated
    Jaccard with it is at least `threshold`, most similar first."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, hasher: MinHasher | None = None
                 ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.hasher = hasher or MinHasher()
        self._rows = NUM_PERM // BANDS
        self._signatures: dict[str, np.ndarray] = {}
        self._bands: list[dict[bytes, set[str]]] = [{} for _ in range(BANDS)]

    def __len__(self) -> int:
        return len(self._signatures)

    def __contains__(self, key: str) -> bool:
        return key in self._signatures

    def _band_keys(self, signature: np.ndarray) -> Iterable[tuple[int, bytes]]:
        for band in range(BANDS):
            yield band, signature[band * self._rows:(band + 1) * self._rows].tobytes()

    def add(self, key: str, signature: np.ndarray) -> None:
        self.remove(key)
        self._signatures[key] = signature
        for band, value in self._band_keys(signature):
            self._bands[band].setdefault(value, set()).add(key)

    def add_text(self, key: str, text: str) -> None:
        self.add(key, self.hasher.signature(text))

    def remove(self, key: str) -> None:
        signature = self._signatures.pop(key, None)
        if signature is None:
            return
        for band, value in self._band_keys(signature):
            bucket = self._bands[band].get(value)
            if bucket is not None:
                bucket.discard(key)
                if not bucket:
                    del self._bands[band][value]

    def near(self, signature: np.ndarray) -> list[tuple[str, float]]:
        candidates: set[str] = set()
        for band, value in self._band_keys(signature):
            candidates |= self._bands[band].get(value, set())
        found = [(key, estimated_jaccard(signature, self._signatures[key])) for key in candidates]
        return sorted(((k, j) for k, j in found if j >= self.threshold),
                      key=lambda kj: (-kj[1], kj[0]))
