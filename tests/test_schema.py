from pathlib import Path

import pytest

from ingest.schema import NO_RELATION, SchemaError, bundled_schema_path, load_schema, parse_schema

SHARED_SCHEMA = Path(__file__).resolve().parents[1].parent / "shared" / "schema" / "annotation.conf"


def test_bundled_schema_has_the_guidelines_five_entity_types_and_four_relations():
    schema = load_schema()
    assert schema.entity_types == ("Negation", "BodyPart", "Degree", "Quantifier", "Location")
    assert schema.relation_names == ("Negative", "Modifier", "Position", "Percentage")
    assert schema.relation_labels[0] == NO_RELATION


def test_relation_direction_comes_from_argument_types():
    schema = load_schema()
    assert schema.relations_between("Degree", "BodyPart") == (("Modifier", True),)
    assert schema.relations_between("BodyPart", "Degree") == (("Modifier", False),)
    assert not schema.pair_allowed("BodyPart", "Quantifier")


def test_the_types_of_its_arguments_name_a_relation_only_when_one_fits():
    schema = load_schema()
    assert schema.relation_from("Degree", "Negation") == "Negative"
    assert schema.relation_from("BodyPart", "Location") == "Position"
    assert schema.relation_from("Location", "BodyPart") is None
    two = parse_schema("[entities]\nA\nB\n[relations]\nX Arg1:A, Arg2:B\nY Arg1:A, Arg2:B\n")
    assert two.relation_from("A", "B") is None


@pytest.mark.skipif(not SHARED_SCHEMA.exists(), reason="../shared/schema is not beside this clone")
def test_bundled_copy_matches_the_annotators_contract():
    assert bundled_schema_path().read_text("utf-8") == SHARED_SCHEMA.read_text("utf-8")


def test_hash_ignores_comments_but_not_types():
    text = bundled_schema_path().read_text("utf-8")
    base = parse_schema(text).sha256
    assert parse_schema("# a comment\n" + text).sha256 == base
    assert parse_schema(text.replace("Location", "Segment")).sha256 != base


def test_malformed_relation_line_names_the_line():
    with pytest.raises(SchemaError, match="line 4"):
        parse_schema("[entities]\nA\n[relations]\nR Arg1 A\n")
