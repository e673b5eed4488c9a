from hypothesis import given
from hypothesis import strategies as st

from ingest.bieos import (
    allowed_end,
    allowed_start,
    allowed_transitions,
    decode,
    encode,
    tag_set,
)

TYPES = ("Negation", "BodyPart", "Degree", "Quantifier", "Location")


@st.composite
def spans_in(draw):
    """A length and non-overlapping typed spans inside it."""
    length = draw(st.integers(0, 40))
    cuts = sorted(draw(st.sets(st.integers(0, length), max_size=12)))
    spans = []
    for start, end in zip(cuts, cuts[1:], strict=False):
        if draw(st.booleans()):
            spans.append((draw(st.sampled_from(TYPES)), start, end))
    return length, spans


def test_tag_set_puts_o_first_then_four_tags_per_type_in_schema_order():
    tags = tag_set(TYPES)
    assert tags[0] == "O"
    assert tags[1:5] == ("B-Negation", "I-Negation", "E-Negation", "S-Negation")
    assert len(tags) == 1 + 4 * len(TYPES)


def test_encode_marks_single_characters_with_s_and_longer_spans_with_b_i_e():
    assert encode(6, [("Degree", 0, 1), ("BodyPart", 2, 5)]) == (
        "S-Degree", "O", "B-BodyPart", "I-BodyPart", "E-BodyPart", "O",
    )


@given(spans_in())
def test_decode_returns_the_encoded_spans(case):
    length, spans = case
    tags = encode(length, spans)
    assert len(tags) == length
    assert decode(tags) == spans


@given(spans_in())
def test_encoded_sequences_obey_the_transition_grammar(case):
    length, spans = case
    tags = encode(length, spans)
    allowed = allowed_transitions(tag_set(TYPES))
    assert all(pair in allowed for pair in zip(tags, tags[1:], strict=False))
    if tags:
        assert tags[0] in allowed_start(tag_set(TYPES))
        assert tags[-1] in allowed_end(tag_set(TYPES))


def test_ill_formed_sequences_yield_only_complete_entities():
    # I/E without B starts nothing; a B interrupted by O, by another type or by the end is dropped
    assert decode(["I-Degree", "E-Degree", "O"]) == []
    assert decode(["B-Degree", "O", "E-Degree"]) == []
    assert decode(["B-Degree", "E-BodyPart"]) == []
    assert decode(["B-Degree", "I-Degree"]) == []
    assert decode(["B-Degree", "B-Degree", "E-Degree", "S-Negation"]) == [
        ("Degree", 1, 3), ("Negation", 3, 4),
    ]


def test_transitions_forbid_o_to_inside_and_b_to_another_b():
    allowed = allowed_transitions(tag_set(TYPES))
    assert ("O", "I-Degree") not in allowed
    assert ("B-Degree", "B-BodyPart") not in allowed
    assert ("B-Degree", "E-BodyPart") not in allowed
    assert ("B-Degree", "E-Degree") in allowed
    assert ("E-Degree", "S-Negation") in allowed
    assert "I-Degree" not in allowed_start(tag_set(TYPES))
    assert "B-Degree" not in allowed_end(tag_set(TYPES))
