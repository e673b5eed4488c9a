"""Which schema types play which part in a key-value record: the one mapping module.

The guideline makes the BodyPart the central word: a Degree (finding) modifies a BodyPart
(vessel), the BodyPart has a Location (segment), the Degree has a Quantifier (percentage) and
may be negated by a Negation. The entity types below are the only literals; the relation names
are found in the schema by their argument types, so renaming a relation in annotation.conf needs
no change here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.schema import Schema

VESSEL_TYPE = "BodyPart"
SEGMENT_TYPE = "Location"
FINDING_TYPE = "Degree"
QUANTITY_TYPE = "Quantifier"
NEGATION_TYPE = "Negation"


@dataclass(frozen=True)
class Roles:
    """Relation names of the schema, by the part they play in a record."""

    modifier: str  # Degree -> BodyPart
    position: str  # BodyPart -> Location
    percentage: str  # Degree -> Quantifier
    negative: str  # Degree -> Negation


def _relation_for(schema: Schema, arg1_type: str, arg2_type: str) -> str:
    names = [r.name for r in schema.relation_types if r.allows(arg1_type, arg2_type)]
    if len(names) != 1:
        found = ", ".join(names) or "none"
        raise ValueError(
            f"annotation.conf: expected exactly one relation Arg1:{arg1_type}, Arg2:{arg2_type} "
            f"(found {found}); fix the [relations] section or ingest/roles.py"
        )
    return names[0]


def roles_from_schema(schema: Schema) -> Roles:
    """Map each record role to the schema relation whose argument types fit it."""
    return Roles(
        modifier=_relation_for(schema, FINDING_TYPE, VESSEL_TYPE),
        position=_relation_for(schema, VESSEL_TYPE, SEGMENT_TYPE),
        percentage=_relation_for(schema, FINDING_TYPE, QUANTITY_TYPE),
        negative=_relation_for(schema, FINDING_TYPE, NEGATION_TYPE),
    )
