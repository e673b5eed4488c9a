"""The annotators' contract: entity and relation types parsed from brat's annotation.conf.

Every other module takes its types from a `Schema`, never from string literals, so a change to
annotation.conf is a change in one place.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

NO_RELATION = "NoRelation"


class SchemaError(ValueError):
    """annotation.conf could not be understood."""


@dataclass(frozen=True)
class RelationType:
    name: str
    arg1_types: frozenset[str]
    arg2_types: frozenset[str]

    def allows(self, arg1_type: str, arg2_type: str) -> bool:
        return arg1_type in self.arg1_types and arg2_type in self.arg2_types


@dataclass(frozen=True)
class Schema:
    entity_types: tuple[str, ...]
    relation_types: tuple[RelationType, ...]
    source_text: str
    # relations_between for every pair of declared types, made once: extraction asks it for
    # every pair of entities in every sentence (60,000 times over 600 sample reports)
    _between: dict[tuple[str, str], tuple[tuple[str, bool], ...]] = field(
        init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_between", {
            (a, b): self._find_between(a, b)
            for a in self.entity_types for b in self.entity_types})

    @property
    def relation_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.relation_types)

    @property
    def relation_labels(self) -> tuple[str, ...]:
        """Classifier labels: NoRelation first, then the schema's relations in file order."""
        return (NO_RELATION, *self.relation_names)

    @property
    def sha256(self) -> str:
        """Hash of the meaning (types and argument constraints), not of comments or spacing."""
        canonical = "\n".join(
            ["E:" + ",".join(self.entity_types)]
            + [
                f"R:{r.name}:{','.join(sorted(r.arg1_types))}:{','.join(sorted(r.arg2_types))}"
                for r in self.relation_types
            ]
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def relation(self, name: str) -> RelationType | None:
        return next((r for r in self.relation_types if r.name == name), None)

    def relations_between(self, type_a: str, type_b: str) -> tuple[tuple[str, bool], ...]:
        """Relations possible between entities of these types, as (name, a_is_arg1)."""
        known = self._between.get((type_a, type_b))
        return known if known is not None else self._find_between(type_a, type_b)

    def _find_between(self, type_a: str, type_b: str) -> tuple[tuple[str, bool], ...]:
        found = []
        for r in self.relation_types:
            if r.allows(type_a, type_b):
                found.append((r.name, True))
            if r.allows(type_b, type_a):
                found.append((r.name, False))
        return tuple(found)

    def relation_from(self, arg1_type: str, arg2_type: str) -> str | None:
        """The one relation the schema allows from arg1_type to arg2_type; None when it allows
        none or several (then the types alone do not name it)."""
        names = [r.name for r in self.relation_types if r.allows(arg1_type, arg2_type)]
        return names[0] if len(names) == 1 else None

    def pair_allowed(self, type_a: str, type_b: str) -> bool:
        """True when some relation of the schema can hold between the two types, either way."""
        return bool(self.relations_between(type_a, type_b))

    def declared_names(self, section: str) -> frozenset[str]:
        """Type names declared in a section of annotation.conf (e.g. "events", "attributes")."""
        names = set()
        for _, line in _sections(self.source_text).get(section, []):
            name = line.replace("\t", " ").split(" ")[0].lstrip("!")
            if name and not name.startswith("<"):
                names.add(name)
        return frozenset(names)


def _sections(text: str) -> dict[str, list[tuple[int, str]]]:
    sections: dict[str, list[tuple[int, str]]] = {}
    current = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
            sections.setdefault(current, [])
            continue
        if current is None:
            raise SchemaError(f"line {number}: {line!r} stands before any [section]")
        sections[current].append((number, line))
    return sections


def _parse_relation(number: int, line: str) -> RelationType | None:
    name, _, rest = line.replace("\t", " ").partition(" ")
    if name.startswith("<"):  # brat's <OVERLAP> and other macros are display rules, not relations
        return None
    args: dict[str, frozenset[str]] = {}
    for part in rest.split(","):
        key, sep, value = part.strip().partition(":")
        if not sep:
            raise SchemaError(f"line {number}: relation {name!r}: expected Arg:Type, got {part!r}")
        args[key.strip()] = frozenset(t.strip() for t in value.split("|") if t.strip())
    if "Arg1" not in args or "Arg2" not in args:
        raise SchemaError(f"line {number}: relation {name!r} needs Arg1 and Arg2")
    return RelationType(name=name, arg1_types=args["Arg1"], arg2_types=args["Arg2"])


def parse_schema(text: str) -> Schema:
    sections = _sections(text)
    entity_types = tuple(
        line.split()[0].lstrip("!") for _, line in sections.get("entities", [])
    )
    relations: dict[str, RelationType] = {}
    for number, line in sections.get("relations", []):
        rel = _parse_relation(number, line)
        if rel is None:
            continue
        if rel.name in relations:  # brat allows one relation on several lines: union them
            prev = relations[rel.name]
            rel = RelationType(
                rel.name, prev.arg1_types | rel.arg1_types, prev.arg2_types | rel.arg2_types
            )
        relations[rel.name] = rel
    if not entity_types:
        raise SchemaError("no [entities] declared")
    return Schema(entity_types=entity_types, relation_types=tuple(relations.values()),
                  source_text=text)


def bundled_schema_path() -> Path:
    return Path(str(resources.files("ingest") / "data" / "annotation.conf"))


def load_schema(path: str | Path | None = None) -> Schema:
    """Load annotation.conf from `path`, or the copy bundled with the package."""
    source = Path(path) if path else bundled_schema_path()
    try:
        return parse_schema(source.read_text(encoding="utf-8-sig"))
    except SchemaError as exc:
        raise SchemaError(f"{source}: {exc}") from exc
