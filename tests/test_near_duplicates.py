"""MinHash over character n-grams: estimates follow the exact Jaccard similarity, and the
banded index finds near copies and forgets removed ones."""

from __future__ import annotations

import random

import pytest

from ingest.near_duplicates import (
    MinHasher,
    NearDuplicateIndex,
    estimated_jaccard,
    jaccard,
    shingles,
)

BASE = ("冠状动脉造影：左主干未见狭窄。前降支近段狭窄约70%，中段管壁不规则。"
        "回旋支及钝缘支未见明显狭窄。右冠状动脉中段狭窄约50%，远段通畅。结论：冠状动脉粥样硬化性心脏病。")


def edited(text: str, edits: int, seed: int) -> str:
    rng = random.Random(seed)
    chars = list(text)
    for _ in range(edits):
        chars[rng.randrange(len(chars))] = rng.choice("甲乙丙丁戊己庚辛")
    return "".join(chars)


def test_shingles_ignore_whitespace_and_keep_short_texts_whole():
    assert shingles("前降 支\n狭窄", 4) == {"前降支狭", "降支狭窄"}
    assert shingles("狭窄", 4) == {"狭窄"}


def test_the_estimate_follows_the_exact_similarity():
    hasher = MinHasher()
    for edits in (0, 2, 6, 15, 40):
        other = edited(BASE, edits, seed=edits)
        exact = jaccard(shingles(BASE), shingles(other))
        estimate = estimated_jaccard(hasher.signature(BASE), hasher.signature(other))
        assert abs(estimate - exact) < 0.12, (edits, exact, estimate)
    assert estimated_jaccard(hasher.signature(BASE), hasher.signature(BASE)) == 1.0


def test_the_index_finds_near_copies_only_and_forgets_removed_ones():
    index = NearDuplicateIndex(0.8)
    index.add_text("base", BASE)
    index.add_text("far", edited(BASE, 40, seed=1))
    near_copy = index.hasher.signature(edited(BASE, 1, seed=2))
    assert [key for key, _ in index.near(near_copy)] == ["base"]
    index.remove("base")
    assert index.near(near_copy) == [] and "base" not in index and len(index) == 1
    with pytest.raises(ValueError, match="threshold"):
        NearDuplicateIndex(0.0)
