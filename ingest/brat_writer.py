"""Write documents as brat standoff (`NAME.txt` + `NAME.ann`), the inverse of the reader."""

from __future__ import annotations

from pathlib import Path

from ingest.atomic import write_bytes_atomic
from ingest.document import Document, Entity


def _span_field(entity: Entity) -> str:
    return ";".join(f"{s.start} {s.end}" for s in entity.spans)


def format_ann(document: Document) -> str:
    """The `.ann` text of a document; confidences are not brat syntax and are left out."""
    lines = [f"{e.id}\t{e.type} {_span_field(e)}\t{e.text}" for e in document.entities]
    lines += [f"{r.id}\t{r.type} Arg1:{r.arg1} Arg2:{r.arg2}\t" for r in document.relations]
    lines += ["\t".join((o.id, *o.fields)) for o in document.others]
    return "".join(line + "\n" for line in lines)


def write_document(document: Document, directory: str | Path, *, with_ann: bool = True) -> Path:
    """Write `directory/<doc_id>.txt` (and `.ann`); doc_id may contain `/` for sub-folders.

    The text is written byte-for-byte as UTF-8 with no newline translation, so brat's offsets
    (which count `\\r`) stay valid.
    """
    txt_path = Path(directory) / f"{document.doc_id}.txt"
    write_bytes_atomic(txt_path, document.text.encode("utf-8"))
    if with_ann:
        write_bytes_atomic(txt_path.with_suffix(".ann"), format_ann(document).encode("utf-8"))
    return txt_path
