from collections import Counter

import pytest

from ingest.split import assign_split, read_split_file, write_split_file

IDS = [f"rpt-{i:06d}" for i in range(10_000)]


def test_proportions_are_near_8_1_1_for_ten_thousand_reports():
    counts = Counter(assign_split(rid, seed=13) for rid in IDS)
    assert abs(counts["train"] - 8000) < 250
    assert abs(counts["dev"] - 1000) < 150
    assert abs(counts["test"] - 1000) < 150


def test_adding_reports_never_moves_an_old_report():
    before = {rid: assign_split(rid, 5) for rid in IDS[:2000]}
    after = {rid: assign_split(rid, 5) for rid in IDS}
    assert all(after[rid] == side for rid, side in before.items())


def test_the_seed_changes_the_split():
    assert [assign_split(r, 1) for r in IDS[:200]] != [assign_split(r, 2) for r in IDS[:200]]


@pytest.mark.parametrize("name", ["splits.csv", "splits.json"])
def test_split_file_round_trips_and_puts_each_report_on_one_side(tmp_path, name):
    ids = IDS[:500] + IDS[:10]  # duplicates collapse to one entry
    entries = write_split_file(ids, tmp_path / name, seed=3)
    sides = read_split_file(tmp_path / name)
    assert len(entries) == 500
    assert sides == {e.report_id: e.split for e in entries}
    assert sides == {rid: assign_split(rid, 3) for rid in IDS[:500]}


def test_a_split_file_with_a_report_on_two_sides_is_refused(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("report_id,split\nrpt-1,train\nrpt-1,test\n", encoding="utf-8")
    with pytest.raises(ValueError, match="two sides"):
        read_split_file(path)
