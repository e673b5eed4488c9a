import pytest

from ingest.percentages import PercentageRange, parse_percentage


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("70%", 70, 70),
        ("100%", 100, 100),
        ("70%-80%", 70, 80),
        ("70-80%", 70, 80),
        ("50%~60%", 50, 60),
        ("70％－80％", 70, 80),
        ("50％～60％", 50, 60),
        ("80%-70%", 70, 80),
        ("90%以上", 90, None),
        ("＞90%", 90, None),
        ("50%以下", None, 50),
        ("<50%", None, 50),
        ("30%左右", 30, 30),
        ("约30%", 30, 30),
        ("99.5%", 99.5, 99.5),
        ("重度", None, None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_parse_percentage_gives_the_stated_range(text, low, high):
    assert parse_percentage(text) == PercentageRange(low, high)
