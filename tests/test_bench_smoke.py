"""bench/bench_pipeline.py --quick: every stage's table is there, complete and sane."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from extraction import jemalloc

REPO = Path(__file__).resolve().parents[1]


def _tables(markdown: str) -> dict[str, list[dict[str, str]]]:
    """Each `## N. title` section's Markdown table as rows of {column: cell}, by N."""
    tables = {}
    for section in markdown.split("\n## ")[1:]:
        number = section.split(".", 1)[0]
        lines = [line for line in section.splitlines() if line.startswith("|")]
        header = [c.strip() for c in lines[0].strip("|").split("|")]
        tables[number] = [dict(zip(header, (c.strip() for c in line.strip("|").split("|")),
                                   strict=True)) for line in lines[2:]]
    return tables


def _number(cell: str) -> float:
    return float(cell.rstrip("x").replace(",", ""))


@pytest.mark.slow
def test_quick_pipeline_benchmark_prints_every_table_with_positive_rates():
    done = subprocess.run(
        [sys.executable, "bench/bench_pipeline.py", "--quick", "--threads", "1",
         "--device", "cpu", "--rc-entities", "3", "5"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "- machine: " in out and "torch " in out and "- device: cpu" in out
    # it restarted itself under jemalloc as angiokg does, where the machine has it
    malloc = "jemalloc (preloaded" if jemalloc.library() is not None else "glibc's"
    assert f"- malloc as angiokg runs: {malloc}" in out
    tables = _tables(out)
    assert sorted(tables) == ["1", "2", "3", "4", "5", "6"]

    rc = tables["1"]
    assert {(r["mask"], r["entities"], r["strategy"]) for r in rc} == {
        (m, e, s) for m in ("eq13", "eq14") for e in ("3", "5")
        for s in ("literal", "batched", "exact")}
    for r in rc:
        n = int(r["entities"])
        assert int(r["pairs"]) == n * (n - 1) // 2  # one sentence per entity count
        for column in ("pairs/s", "RC / NER", "(NER+RC) / NER", "vs literal"):
            assert _number(r[column]) > 0, (r, column)
        assert _number(r["max diff"]) < 1e-3  # the shortcuts compute the literal [CLS]

    (train,) = tables["2"]
    assert train["mode"] == "joint" and _number(train["sentences/s"]) > 0

    floor, ner, full = tables["3"]
    assert floor["pass"].startswith("floor") and floor["vs floor"] == "1.00x"
    assert floor["sentences"] == ner["sentences"] == full["sentences"]
    assert ner["pass"] == "NER only" and full["pass"].startswith("full")
    assert ner["entities"] == full["entities"] and int(ner["entities"]) > 0  # oracle entities
    assert ner["relations"] == "0" and int(full["relations"]) > 0
    assert ner["vs NER-only"] == "1.00x" and _number(full["vs NER-only"]) > 0
    # the floor is a part of what extraction does: it cannot take longer than NER only
    assert _number(ner["vs floor"]) > 1.0 and _number(full["vs floor"]) > 0

    (parquet,) = tables["4"]
    assert _number(parquet["rows"]) > int(ner["entities"]) and _number(parquet["rows/s"]) > 0

    assert [r["load"] for r in tables["5"]] == ["bulk COPY", "UNWIND MERGE"]
    assert all(_number(r["edges"]) > 0 and _number(r["edges/s"]) > 0 for r in tables["5"])

    assert len(tables["6"]) == 5
    assert all(_number(r["peak RSS so far (MiB)"]) > 0 for r in tables["6"])


@pytest.mark.slow
def test_stage_four_beside_a_baseline_checkout_times_both_sinks_on_the_same_documents(
        tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    from pipeline_store import compare_sink_rows

    from ingest.generator import generate_report

    documents = [generate_report(i, seed=3) for i in range(6)]
    rows = compare_sink_rows(documents, REPO, tmp_path, repeats=1)
    assert [r[0] for r in rows] == ["this checkout", f"baseline {REPO}"]
    assert rows[0][1:3] == rows[1][1:3] and rows[0][1] == "6"  # same reports, same rows
    assert rows[0][6] == rows[1][6] and "report_summary 6" in rows[0][6]
    assert all(_number(r[5]) > 0 for r in rows)


@pytest.mark.slow
def test_stages_runs_only_the_stages_asked_for():
    done = subprocess.run(
        [sys.executable, "bench/bench_pipeline.py", "--quick", "--stages", "4", "--device", "cpu"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    tables = _tables(done.stdout)
    assert sorted(tables) == ["4", "6"]
    assert [r["stage"] for r in tables["6"]] == ["Parquet datasets through the sink"]


@pytest.mark.slow
def test_quick_memory_benchmark_runs_each_malloc_to_the_same_outputs(tmp_path):
    mallocs = ["jemalloc", "glibc"] if jemalloc.library() is not None else ["glibc"]
    done = subprocess.run(
        [sys.executable, "bench/bench_memory.py", "--quick", "--paths", "extract",
         "--mallocs", *mallocs, "--work", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in done.stdout.splitlines() if line.startswith("| extract")]
    sizes = [r for r in rows if len(r) == 9]  # the per-size table (the flatness one has 5)
    label = (lambda m: f"extract, {m}") if len(mallocs) > 1 else (lambda m: "extract")
    by_size: dict[str, set[tuple[str, str]]] = {}
    for path, reports, *_, entities, relations, peak, _vs in sizes:
        assert path in {label(m) for m in mallocs} and _number(peak) > 0
        by_size.setdefault(reports, set()).add((entities, relations))
    assert sorted(by_size, key=_number) == ["1", "10", "40"]
    assert len(sizes) == 3 * len(mallocs)
    # the malloc changes memory, never what is extracted
    assert all(len(outputs) == 1 for outputs in by_size.values()), by_size
    flat = [r for r in rows if len(r) == 5]
    assert {r[0] for r in flat} == {label(m) for m in mallocs}
