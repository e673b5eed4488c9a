"""The brat collection files: one copy in the repository, copied into output folders, every
schema type drawn with its own colour and short label, and no external link anywhere.

The checks parse visual.conf and tools.conf with brat's own rules (server/src/projectconfig.py:
`[section]` headers, `Full | Short` label lines, `Type<TAB>key:value, ...` drawing lines)."""

from __future__ import annotations

import re

from ingest.brat_collection import COLLECTION_FILES, bundled_conf, write_collection_confs
from ingest.schema import load_schema

SPAN_KEYS = {"fgColor", "bgColor", "borderColor"}
ARC_KEYS = {"color", "dashArray", "arrowHead", "arrowTail", "labelArrow"}
SHORT_LABELS = {"BodyPart": "BP", "Location": "Loc", "Degree": "Deg", "Quantifier": "Q",
                "Negation": "Neg"}


def sections(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    current = "general"
    for line in text.split("\n"):
        header = re.match(r"^\s*\[(.*)\]\s*$", line)
        if header:
            current = header.group(1)
            found.setdefault(current, [])
        elif line.strip() and not re.match(r"^\s*#", line):
            found.setdefault(current, []).append(line)
    return found


def visual() -> tuple[dict[str, list[str]], dict[str, dict[str, str]]]:
    parts = sections(bundled_conf("visual.conf").read_text(encoding="utf-8"))
    assert set(parts) == {"labels", "drawing"}
    labels = {}
    for line in parts["labels"]:
        terms = [t.strip() for t in line.split("|") if t.strip()]
        labels[terms[0]] = terms[1:]
    drawing = {}
    for line in parts["drawing"]:
        name, tab, args = line.partition("\t")
        assert tab, f"drawing line without a TAB: {line!r}"
        drawing[name] = dict(a.strip().split(":", 1) for a in args.split(","))
    return labels, drawing


def test_every_schema_type_has_a_label_and_its_own_colour():
    schema = load_schema()
    labels, drawing = visual()
    for entity in schema.entity_types:
        assert labels[entity][0] == entity and labels[entity][-1] == SHORT_LABELS[entity]
        assert set(drawing[entity]) <= SPAN_KEYS and "bgColor" in drawing[entity]
    for relation in schema.relation_names:
        assert labels[relation][0] == relation and len(labels[relation][-1]) <= 3
        assert set(drawing[relation]) <= ARC_KEYS and "color" in drawing[relation]
    colours = [drawing[t]["bgColor"] for t in schema.entity_types]
    assert len(set(colours)) == len(colours)
    arcs = [drawing[r]["color"] for r in schema.relation_names]
    assert len(set(arcs)) == len(arcs)
    assert set(labels) == set(schema.entity_types) | set(schema.relation_names)


def test_the_negation_arc_is_set_apart():
    _, drawing = visual()
    dashed = [name for name, style in drawing.items() if "dashArray" in style]
    assert dashed == ["Negative"]


def test_tools_conf_has_every_section_and_no_external_link():
    text = bundled_conf("tools.conf").read_text(encoding="utf-8")
    parts = sections(text)
    assert {"options", "search", "annotators", "disambiguators", "normalization"} <= set(parts)
    assert parts["search"] == [] and parts["annotators"] == [] and parts["normalization"] == []
    assert not re.search(r"https?://|<URL>|www\.", text)


def test_confs_are_copied_into_a_folder_with_the_schema_it_was_made_for(tmp_path):
    schema = load_schema()
    written = write_collection_confs(tmp_path / "out", schema)
    assert sorted(p.name for p in written) == sorted(COLLECTION_FILES)
    assert (tmp_path / "out" / "annotation.conf").read_text(encoding="utf-8") == \
        schema.source_text
    for name in ("visual.conf", "tools.conf"):
        assert (tmp_path / "out" / name).read_bytes() == bundled_conf(name).read_bytes()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
