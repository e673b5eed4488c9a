"""CSV cells that any reader parses back exactly and no spreadsheet runs as a formula.

Quoting: every string cell is quoted with `"`, and a `"` inside it is doubled (RFC 4180, the
default of Python's csv module, pandas and neo4j-admin import); commas, tabs, `\\r` and `\\n`
are then plain characters of the cell. Numbers and booleans are written bare; null is an
empty, unquoted cell (neo4j-admin import reads it as "no property").

Formula guard: a string cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return
is a formula to Excel, LibreOffice and Google Sheets (OWASP "CSV injection"). Such a cell is
written with a leading `'` (`=1+2` -> `'=1+2`), which spreadsheets show as text. So that the
change can be undone exactly, a cell that already starts with `'` gets one more (`'x` -> `''x`);
`restore_cell` strips exactly one leading `'` from any cell that has one. The bulk-import
bundle ships a Cypher script doing the same after the import.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ingest.atomic import atomic_path

FORMULA_STARTERS = frozenset("=+-@\t\r")
ESCAPE = "'"


def neutralise_cell(value: str) -> str:
    """`value` safe to show in a spreadsheet; `restore_cell` gives it back."""
    if value and (value[0] in FORMULA_STARTERS or value[0] == ESCAPE):
        return ESCAPE + value
    return value


def restore_cell(value: str) -> str:
    """Inverse of `neutralise_cell`."""
    return value[1:] if value.startswith(ESCAPE) else value


def format_cell(value: Any, *, guard: bool = True) -> str:
    """One CSV field (quoted when a string) for the value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    text = neutralise_cell(str(value)) if guard else str(value)
    return '"' + text.replace('"', '""') + '"'


def format_row(values: Sequence[Any], *, guard: bool = True) -> str:
    return ",".join(format_cell(v, guard=guard) for v in values) + "\n"


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]],
              *, guard: bool = True) -> int:
    """Write a CSV file atomically (temp file, then rename); returns the number of rows.

    The header is written bare: its names come from our code, and neo4j-admin parses the
    `name:type` syntax without quotes.
    """
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(header) + "\n")
        for row in rows:
            f.write(format_row(row, guard=guard))
            n += 1
    return n
