"""The model's doubt, visible in brat: an `AnnotatorNotes` line on each annotation the model is
unsure of, which brat shows when the annotator hovers over it:

    #3<TAB>AnnotatorNotes T7<TAB>model 0.41

`preannotate` and `select` add these notes to the predictions they write. When the corrected
files come back, ingest recognises a model note by its exact text (`model ` and a probability
with two decimals) and strips it from the document before validation: it is the model's remark,
not an annotation, so it never counts as one, never reaches training or the statistics, and a
note left behind by an annotation the annotator deleted never makes a report invalid. The
annotators' files on disk are never rewritten. A note an annotator typed or edited (any other
text) is theirs, and is kept like any other brat line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import replace

from ingest.document import Document, OtherAnnotation

NOTE_TYPE = "AnnotatorNotes"
NOTE_PREFIX = "model "
# The default `--note-below`: a note on every annotation whose calibrated confidence is under
# 0.9, one the model gives at least a 1-in-10 chance of being wrong. On the sample's test split
# the annotations above it were right 96.7% of the time, and the 16% of relations under it held
# 73% of the wrong ones (docs/annotation-loop.md, "Calibration").
DEFAULT_NOTE_BELOW = 0.9
_NOTE_TEXT = re.compile(r"model (?:0\.\d\d|1\.00)")


def note_text(confidence: float) -> str:
    """"model 0.41": rounded down, so a confidence under a threshold never shows as equal to it."""
    return f"{NOTE_PREFIX}{math.floor(min(max(confidence, 0.0), 1.0) * 100) / 100:.2f}"


def is_model_note(other: OtherAnnotation) -> bool:
    """True for a `#` line written by `with_model_notes` and left as it was."""
    if other.kind != "#" or len(other.fields) != 2:
        return False
    words = other.fields[0].split()
    return len(words) == 2 and words[0] == NOTE_TYPE and bool(_NOTE_TEXT.fullmatch(other.fields[1]))


def model_notes(document: Document, below: float = DEFAULT_NOTE_BELOW
                ) -> tuple[OtherAnnotation, ...]:
    """A note for each entity and relation whose confidence is under `below`, in file order,
    numbered after the `#` ids the document already uses."""
    used = {o.id for o in document.others}
    number = 0
    notes = []
    for item in (*document.entities, *document.relations):
        if item.confidence is None or item.confidence >= below:
            continue
        number += 1
        while f"#{number}" in used:
            number += 1
        notes.append(OtherAnnotation("#", f"#{number}", (f"{NOTE_TYPE} {item.id}",
                                                         note_text(item.confidence))))
    return tuple(notes)


def with_model_notes(document: Document, below: float = DEFAULT_NOTE_BELOW) -> Document:
    """The document with model notes added to its other lines (the brat writer writes them)."""
    return replace(document, others=document.others + model_notes(document, below))


def strip_model_notes(others: Sequence[OtherAnnotation], lines: Sequence[int] = ()
                      ) -> tuple[tuple[OtherAnnotation, ...], tuple[int, ...], int]:
    """(other lines without the model notes, their line numbers, how many notes were dropped).

    `lines` is parallel to `others` (the reader's 1-based line numbers) and may be empty.
    """
    keep = [i for i, o in enumerate(others) if not is_model_note(o)]
    kept_lines = tuple(lines[i] for i in keep) if lines else ()
    return tuple(others[i] for i in keep), kept_lines, len(others) - len(keep)
