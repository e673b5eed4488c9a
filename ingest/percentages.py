"""Numbers from a Quantifier's text: 70%, 70%-80%, 50%~60%, 90%以上, 30%左右, 100%.

Conventions (documented in docs/parquet-schemas.md):
- a single value gives low == high (70% -> 70, 70);
- a range gives its two ends, whichever way round it is written (70%-80%, 70-80%, 70％～80％);
- an open lower bound (90%以上, >90%, ≥90%, 大于90%) gives low = 90 and high = None: the text
  names no upper bound, and a reader should not have one invented for it (stenosis cannot pass
  100, so `high` None reads as "up to 100");
- an open upper bound (50%以下, <50%, 小于50%) gives low = None, high = 50;
- an approximation (30%左右, 约30%) gives low == high == 30: the qualifier stays in the text;
- anything else gives (None, None): the text is kept in `percentage_text`, never guessed at.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

# After NFKC, full-width ％ － ～ become % - ~; these are the other range dashes seen in reports.
_RANGE_SEPARATORS = "-~〜—–－～至到"
_NUMBER = r"(\d+(?:\.\d+)?)"
_RANGE = re.compile(rf"^{_NUMBER}%?\s*[{_RANGE_SEPARATORS}]\s*{_NUMBER}%$")
_SINGLE = re.compile(rf"^{_NUMBER}%$")
_AT_LEAST = ("以上", "及以上", "+")
_AT_LEAST_PREFIX = (">=", "≥", ">", "大于", "超过", "高于")
_AT_MOST = ("以下", "及以下")
_AT_MOST_PREFIX = ("<=", "≤", "<", "小于", "低于", "不足")
_ABOUT = ("左右", "上下")
_ABOUT_PREFIX = ("约", "~")


@dataclass(frozen=True)
class PercentageRange:
    low: float | None
    high: float | None


def _strip_any(text: str, suffixes: tuple[str, ...], *, prefix: bool) -> tuple[str, bool]:
    for s in sorted(suffixes, key=len, reverse=True):
        if prefix and text.startswith(s):
            return text[len(s) :].strip(), True
        if not prefix and text.endswith(s):
            return text[: -len(s)].strip(), True
    return text, False


@functools.lru_cache(maxsize=4096)  # a few hundred distinct texts recur across an archive
def parse_percentage(text: str | None) -> PercentageRange:
    """The numeric range a Quantifier's text states; (None, None) when it states none."""
    if not text:
        return PercentageRange(None, None)
    norm = unicodedata.normalize("NFKC", text).replace(" ", "").strip()
    norm, at_least = _strip_any(norm, _AT_LEAST, prefix=False)
    if not at_least:
        norm, at_least = _strip_any(norm, _AT_LEAST_PREFIX, prefix=True)
    norm, at_most = _strip_any(norm, _AT_MOST, prefix=False)
    if not at_most:
        norm, at_most = _strip_any(norm, _AT_MOST_PREFIX, prefix=True)
    norm, _ = _strip_any(norm, _ABOUT, prefix=False)
    norm, _ = _strip_any(norm, _ABOUT_PREFIX, prefix=True)
    if at_least and at_most:
        return PercentageRange(None, None)
    if m := _SINGLE.match(norm):
        value = float(m.group(1))
        if at_least:
            return PercentageRange(value, None)
        if at_most:
            return PercentageRange(None, value)
        return PercentageRange(value, value)
    if (m := _RANGE.match(norm)) and not (at_least or at_most):
        a, b = float(m.group(1)), float(m.group(2))
        return PercentageRange(min(a, b), max(a, b))
    return PercentageRange(None, None)
