"""Decode the bytes of a report (`.txt`) or an annotation file (`.ann`) into text.

Rules, in order:
1. A UTF-16/UTF-32 byte-order mark, or any NUL byte, means the file is not UTF-8 text (UTF-16
   without a BOM and binary files both contain NULs): error, nothing decoded.
2. UTF-8 (strict). A UTF-8 BOM (EF BB BF) at the start of a `.txt` is KEPT as the character
   U+FEFF at offset 0, because brat decodes `.txt` files with plain `utf-8` and so counts it:
   offsets written by brat for such a file already include it, and stripping it would shift every
   span by one. A warning says so (the character is invisible but sits in the text the model
   sees). In a `.ann` file the BOM is stripped: it carries no offsets, and kept it would glue
   itself to the first id.
3. GB18030 (strict) as a fallback for reports saved by Chinese Windows tools: decoded with a
   warning asking for a UTF-8 copy. Offsets are then character offsets of the decoded text, which
   is what brat would count had the file been UTF-8. GB18030 accepts many byte strings, so a
   result with control characters or private-use code points is treated as binary instead.
4. Anything else: error.

Line endings are never translated: a CRLF report keeps its `\\r`, which brat counts as a
character (see `ingest.document`).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from ingest.findings import Finding, error, warning

_UTF16_32_BOMS = (
    codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE,
)
# C0 controls other than tab, LF, VT, FF, CR, and private-use code points: signs that a GB18030
# "decode" of arbitrary bytes produced garbage rather than text.
_NOT_TEXT = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\ue000-\uf8ff]")


@dataclass(frozen=True)
class Decoded:
    """`text` is None when the bytes could not be decoded (then `findings` has an error)."""

    text: str | None
    encoding: str | None
    findings: tuple[Finding, ...] = ()


def decode_bytes(data: bytes, path: str, *, keep_bom: bool = True) -> Decoded:
    """Decode `data` read from `path` (used only in findings). `keep_bom=False` for `.ann`."""
    if data.startswith(_UTF16_32_BOMS):
        return Decoded(None, None, (error(
            path, None, "utf16",
            "file is UTF-16/UTF-32 (byte-order mark found); re-save it as UTF-8 and run again",
        ),))
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        return Decoded(None, None, (error(
            path, line, "binary",
            "file contains NUL bytes: it is binary or UTF-16 without a byte-order mark, not a "
            "UTF-8 text; replace it with the UTF-8 text of the report",
        ),))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _gb18030_fallback(data, path, exc)
    if text.startswith("\ufeff"):
        if not keep_bom:
            return Decoded(text[1:], "utf-8-sig")
        return Decoded(text, "utf-8-sig", (warning(
            path, 1, "bom",
            "file starts with a UTF-8 byte-order mark; it is kept as character 0 (U+FEFF) as "
            "brat counts it, so offsets include it; re-save without BOM only together with "
            "re-annotating, or offsets shift by one",
        ),))
    return Decoded(text, "utf-8")


def _gb18030_fallback(data: bytes, path: str, utf8_error: UnicodeDecodeError) -> Decoded:
    line = data[: utf8_error.start].count(b"\n") + 1
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        text = None
    if text is None or _NOT_TEXT.search(text):
        return Decoded(None, None, (error(
            path, line, "undecodable",
            f"bytes at offset {utf8_error.start} are neither UTF-8 nor GB18030 text; "
            "re-save the file as UTF-8",
        ),))
    return Decoded(text, "gb18030", (warning(
        path, line, "gb18030",
        f"not UTF-8 (first bad byte at offset {utf8_error.start}); read as GB18030; "
        "convert the file to UTF-8 (e.g. iconv -f GB18030 -t UTF-8)",
    ),))
