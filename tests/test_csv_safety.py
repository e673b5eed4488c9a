import csv
import io

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from export.csv_safety import format_row, neutralise_cell, restore_cell, write_csv

NASTY = ['a,b', 'say "hi"', "tab\there", "line\nbreak", "cr\r\nlf", "=1+2", "+A1", "-3",
         "@SUM(A1)", "'quoted", "\tx", "plain", "", "back\\slash"]


def test_formula_starters_are_prefixed_and_others_kept():
    assert neutralise_cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert [neutralise_cell(v)[0] for v in ["=a", "+a", "-a", "@a", "\ta", "\ra"]] == ["'"] * 6
    assert neutralise_cell("70%") == "70%" and neutralise_cell("") == ""
    assert neutralise_cell("'a") == "''a"


@given(st.text())
def test_neutralise_then_restore_is_identity(value):
    assert restore_cell(neutralise_cell(value)) == value
    safe = neutralise_cell(value)
    assert not safe or safe[0] not in "=+-@\t\r"


def test_rows_read_back_with_csv_module_and_pandas(tmp_path):
    path = tmp_path / "x.csv"
    rows = [[v, i, 0.5, True, None] for i, v in enumerate(NASTY)]
    assert write_csv(path, ["text", "n:long", "p:double", "b:boolean", "z"], rows) == len(NASTY)
    with open(path, encoding="utf-8", newline="") as f:
        back = list(csv.reader(f))
    assert back[0] == ["text", "n:long", "p:double", "b:boolean", "z"]
    assert [restore_cell(r[0]) for r in back[1:]] == NASTY
    assert [r[1:] for r in back[1:3]] == [["0", "0.5", "true", ""], ["1", "0.5", "true", ""]]
    df = pd.read_csv(path, keep_default_na=False, dtype=str)
    assert [restore_cell(v) for v in df["text"]] == NASTY
    assert not any(v[:1] in ("=", "+", "-", "@") for v in df["text"])


def test_quotes_are_doubled_and_guard_can_be_off():
    line = format_row(['x"y', "=1"], guard=False)
    assert line == '"x""y","=1"\n'
    assert next(csv.reader(io.StringIO(line))) == ['x"y', "=1"]
