from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.bieos import decode
from ingest.document import Document, Entity, Relation, Span
from ingest.examples import (
    SentenceSpan,
    candidate_pairs,
    document_examples,
    downsample_no_relation,
    sentences_of,
    split_long,
)
from ingest.schema import NO_RELATION, load_schema
from ingest.sentences import sentence_boundaries

SCHEMA = load_schema()


def _doc(text, marked, relations=()):
    """marked: (id, type, surface, occurrence) -> Entity found by searching the text."""
    entities = []
    for eid, etype, surface, nth in marked:
        start = -1
        for _ in range(nth + 1):
            start = text.index(surface, start + 1)
        entities.append(Entity(eid, etype, (Span(start, start + len(surface)),), surface))
    rels = tuple(Relation(f"R{i}", t, a, b) for i, (t, a, b) in enumerate(relations, 1))
    return Document("d1", text, tuple(entities), rels)


DOC = _doc(
    "左主干未见明显狭窄。\n前降支近段狭窄70%；穿刺右桡动脉成功。",
    [
        ("T1", "BodyPart", "左主干", 0), ("T2", "Negation", "未见", 0),
        ("T3", "Degree", "狭窄", 0), ("T4", "BodyPart", "前降支", 0),
        ("T5", "Location", "近段", 0), ("T6", "Degree", "狭窄", 1),
        ("T7", "Quantifier", "70%", 0),
    ],
    [
        ("Modifier", "T3", "T1"), ("Negative", "T3", "T2"), ("Modifier", "T6", "T4"),
        ("Position", "T4", "T5"), ("Percentage", "T6", "T7"),
    ],
)


def test_sentence_boundaries_keep_end_punctuation_and_drop_line_breaks_and_blanks():
    text = "甲。乙；丙;\n丁\r\n \n戊"
    pieces = [text[s:e] for s, e in sentence_boundaries(text)]
    assert pieces == ["甲。", "乙；", "丙;", "丁", "戊"]


def test_examples_have_sentence_relative_mentions_tags_and_labelled_pairs():
    examples = document_examples(DOC, SCHEMA)
    assert [e.sentence.text for e in examples] == [
        "左主干未见明显狭窄。", "前降支近段狭窄70%；", "穿刺右桡动脉成功。",
    ]
    first, second, third = examples
    assert [m.text for m in first.mentions] == ["左主干", "未见", "狭窄"]
    assert decode(first.tags) == [(m.type, m.start, m.end) for m in first.mentions]
    labels = {(c.first, c.second): (c.label, c.first_is_arg1) for c in first.candidates}
    # 左主干 (BodyPart) comes first but the Degree is Arg1 of Modifier
    assert labels == {
        (0, 1): (NO_RELATION, True), (0, 2): ("Modifier", False), (1, 2): ("Negative", False),
    }
    second_labels = [c.label for c in second.candidates]
    assert sorted(second_labels) == sorted(
        ["Position", "Modifier", NO_RELATION, NO_RELATION, NO_RELATION, "Percentage"]
    )
    assert third.mentions == () and third.candidates == ()
    assert set(third.tags) == {"O"}


def test_no_relation_pair_takes_direction_the_schema_would_give():
    doc = _doc("前降支近段狭窄", [("T1", "BodyPart", "前降支", 0), ("T2", "Degree", "狭窄", 0)])
    (example,) = document_examples(doc, SCHEMA)
    (candidate,) = example.candidates
    assert candidate.label == NO_RELATION and candidate.first_is_arg1 is False


def test_candidate_pairs_with_schema_keep_only_pairs_a_relation_can_join():
    mentions = document_examples(DOC, SCHEMA)[1].mentions  # BodyPart Location Degree Quantifier
    assert len(candidate_pairs(mentions)) == 6
    # BodyPart-Quantifier and Location-Degree/Quantifier have no relation in the schema
    assert candidate_pairs(mentions, SCHEMA) == [(0, 1), (0, 2), (2, 3)]


def test_discontinuous_and_cross_sentence_entities_are_skipped_with_a_warning(caplog):
    text = "前降支狭窄。回旋支"
    doc = Document("d2", text, (
        Entity("T1", "BodyPart", (Span(0, 1), Span(2, 3)), "前支"),
        Entity("T2", "Degree", (Span(3, 7),), "狭窄。回"),
        Entity("T3", "BodyPart", (Span(6, 9),), "回旋支"),
    ))
    examples = document_examples(doc, SCHEMA)
    assert [m.entity_id for e in examples for m in e.mentions] == ["T3"]
    assert "discontinuous" in caplog.text and "not inside one sentence" in caplog.text


def test_downsampling_keeps_relations_and_is_deterministic_for_a_seed():
    examples = [
        e for i in range(40)
        for e in document_examples(Document(f"d{i}", DOC.text, DOC.entities, DOC.relations),
                                   SCHEMA)
    ]
    kept = downsample_no_relation(examples, 0.15, seed=1)
    assert kept == downsample_no_relation(list(reversed(examples)), 0.15, seed=1)[::-1]
    before = [c for e in examples for c in e.candidates]
    after = [c for e in kept for c in e.candidates]
    assert [c for c in after if c.label != NO_RELATION] == [
        c for c in before if c.label != NO_RELATION
    ]
    n_before = sum(c.label == NO_RELATION for c in before)
    n_after = sum(c.label == NO_RELATION for c in after)
    assert 0 < n_after < n_before * 0.4
    assert downsample_no_relation(examples, 1.0, seed=1) == examples


def test_long_sentence_is_cut_at_a_comma_within_the_limit():
    text = "前降支近段狭窄，回旋支中段狭窄，右冠远段狭窄"
    sentence = SentenceSpan("d", 0, 10, 10 + len(text), text)
    pieces = split_long(sentence, 10, [])
    assert [p.text for p in pieces] == ["前降支近段狭窄，", "回旋支中段狭窄，", "右冠远段狭窄"]
    assert all(p.start - 10 == text.index(p.text) for p in pieces)


def _split_by_brute_force(sentence, max_chars, entity_spans):
    """The cutting rule written plainly (every window searched afresh, quadratic): the oracle."""
    text = sentence.text
    if len(text) <= max_chars:
        return [sentence]
    inside = set()
    for start, end in entity_spans:
        inside.update(range(start - sentence.start + 1, end - sentence.start))
    allowed = [p for p in range(1, len(text)) if p not in inside]
    pieces, begin = [], 0
    while len(text) - begin > max_chars:
        window = [p for p in allowed if begin < p <= begin + max_chars]
        preferred = [p for p in window if text[p - 1] in "，,、：: \t"]
        later = [p for p in allowed if p > begin]
        if not window and not later:
            break
        cut = (preferred or window)[-1] if window else later[0]
        pieces.append((begin, cut))
        begin = cut
    pieces.append((begin, len(text)))
    return [replace(sentence, start=sentence.start + b, end=sentence.start + e, text=text[b:e])
            for b, e in pieces if text[b:e].strip()]


@st.composite
def sentences_with_spans(draw):
    text = draw(st.text(alphabet="前降支狭窄，,、： a", min_size=1, max_size=80))
    offset = draw(st.integers(0, 5))
    bounds = st.integers(0, offset + len(text) + 5)
    spans = [tuple(sorted(pair)) for pair in draw(st.lists(st.tuples(bounds, bounds),
                                                           max_size=8))]
    sentence = SentenceSpan("s", 0, offset, offset + len(text), text)
    return sentence, spans, draw(st.integers(1, 15))


@settings(max_examples=400, deadline=None)
@given(sentences_with_spans())
def test_linear_cutting_gives_the_pieces_of_the_plain_rule(case):
    sentence, spans, max_chars = case
    assert split_long(sentence, max_chars, spans) == _split_by_brute_force(sentence, max_chars,
                                                                           spans)


def test_a_one_line_report_is_cut_into_pieces_covering_it_whole():
    text = "前降支近段狭窄80%，回旋支未见明显狭窄 " * 2000  # 42,000 characters, no sentence end
    pieces = sentences_of(Document("one-line", text))
    assert all(len(p.text) <= 126 for p in pieces) and len(pieces) >= len(text) // 126
    assert [p.start for p in pieces[1:]] == [p.end for p in pieces[:-1]]
    assert (pieces[0].start, pieces[-1].end) == (0, len(text))
    assert all(p.text[-1] in "， " for p in pieces[:-1])  # each cut after a comma or a space


@st.composite
def long_documents(draw):
    n = draw(st.integers(1, 60))
    text = draw(st.text(alphabet="前降支狭窄，， 。\n;a", min_size=n, max_size=n))
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=20)))
    entities = []
    for k, (start, end) in enumerate(zip(cuts, cuts[1:], strict=False)):
        # entities crossing a sentence boundary are invalid input (the validator refuses them)
        if draw(st.booleans()) and end - start <= 8 and not set(text[start:end]) & set("。;\n"):
            entities.append(Entity(f"T{k}", "Degree", (Span(start, end),), text[start:end]))
    return Document("h", text, tuple(entities)), draw(st.integers(1, 12))


@settings(max_examples=150, deadline=None)
@given(long_documents())
def test_sentences_never_cut_an_entity_and_match_the_text(case):
    doc, max_chars = case
    sentences = sentences_of(doc, max_chars)
    assert [s.index for s in sentences] == list(range(len(sentences)))
    for s in sentences:
        assert s.text == doc.text[s.start:s.end]
        assert len(s.text) <= max_chars or any(
            e.start >= s.start and e.end <= s.end and e.end - e.start > max_chars
            for e in doc.entities
        )
        for e in doc.entities:
            assert e.end <= s.start or e.start >= s.end or s.start <= e.start and e.end <= s.end


@settings(max_examples=100, deadline=None)
@given(long_documents())
def test_candidates_per_sentence_are_all_pairs_and_tags_decode_to_the_mentions(case):
    doc, max_chars = case
    for ex in document_examples(doc, SCHEMA, max_chars):
        n = len(ex.mentions)
        assert len(ex.candidates) == n * (n - 1) // 2
        assert len(ex.tags) == len(ex.sentence.text)
        assert decode(ex.tags) == [(m.type, m.start, m.end) for m in ex.mentions]


@settings(max_examples=150, deadline=None)
@given(long_documents())
def test_sentence_offsets_map_every_mention_back_to_its_entity_in_the_original_text(case):
    doc, max_chars = case
    # Blank-only spans are no annotation (the validator flags them, span-boundary): left out.
    doc = replace(doc, entities=tuple(e for e in doc.entities if e.text.strip()))
    back = sorted((m.entity_id, ex.sentence.start + m.start, ex.sentence.start + m.end, m.text)
                  for ex in document_examples(doc, SCHEMA, max_chars) for m in ex.mentions)
    assert back == sorted((e.id, e.start, e.end, e.text) for e in doc.entities)
    assert all(doc.text[start:end] == text for _, start, end, text in back)
