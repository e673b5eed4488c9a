"""The queue folder `angiokg select` and the nightly queue write: a brat collection annotators
open as it is, with `queue.csv` saying in which order to correct it.

- the N reports as `.txt` + predicted `.ann`, the model's doubt as AnnotatorNotes
  (ingest.model_notes);
- annotation.conf + visual.conf + tools.conf (ingest.brat_collection);
- `queue.csv`: rank, report id, score, expected corrections, the least sure annotations with
  their text, source. An annotation lead opens it in a spreadsheet, and report ids, sources and
  the reports' own words are input text: every string cell goes through the formula guard of
  `export.csv_safety` (a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return
  gets a leading `'`), and `read_queue` undoes it exactly.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from export.csv_safety import restore_cell, write_csv
from extraction.select import Pick, Selection
from extraction.uncertainty import least_sure
from ingest.brat_collection import write_collection_confs
from ingest.brat_writer import write_document
from ingest.model_notes import DEFAULT_NOTE_BELOW, with_model_notes
from ingest.schema import Schema
from pipeline.lock import LOCK_FILE

QUEUE_CSV = "queue.csv"
QUEUE_COLUMNS = ("rank", "report_id", "score", "expected_corrections", "least_sure", "source")
LEAST_SURE_LISTED = 3


def check_queue_folder(out_dir: str | Path) -> Path:
    """`out_dir` must be new or empty: annotators may be at work in an older queue."""
    out = Path(out_dir)
    # the output lock (pipeline.lock) is the only file a new queue may find
    if out.exists() and (not out.is_dir() or any(p.name != LOCK_FILE for p in out.iterdir())):
        raise ValueError(f"{out}: exists and is not an empty folder; write each queue to a new "
                         "folder (annotators may be correcting the files of an older one)")
    return out


def queue_rows(picks: Iterable[Pick], unsure: int = LEAST_SURE_LISTED) -> list[dict[str, object]]:
    """queue.csv's rows, as values (the guard is applied when they are written)."""
    return [{"rank": p.rank, "report_id": p.document.doc_id, "score": round(p.score, 4),
             "expected_corrections": round(p.expected_corrections, 3),
             "least_sure": "; ".join(i.format() for i in least_sure(p.document, unsure)),
             "source": p.document.source or ""} for p in picks]


def write_queue(selection: Selection, out_dir: str | Path, schema: Schema, *,
                note_below: float = DEFAULT_NOTE_BELOW) -> Path:
    """The queue as a brat collection in `out_dir` (new or empty); returns queue.csv's path."""
    out = check_queue_folder(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_collection_confs(out, schema)
    for pick in selection.picks:
        write_document(with_model_notes(pick.document, note_below), out)
    rows = queue_rows(selection.picks)
    write_csv(out / QUEUE_CSV, QUEUE_COLUMNS, ([row[c] for c in QUEUE_COLUMNS] for row in rows))
    return out / QUEUE_CSV


def read_queue(folder: str | Path) -> list[dict[str, str]]:
    """queue.csv's rows as written (the formula guard undone), as strings."""
    with (Path(folder) / QUEUE_CSV).open(encoding="utf-8", newline="") as handle:
        return [{key: restore_cell(value) for key, value in row.items()}
                for row in csv.DictReader(handle)]
