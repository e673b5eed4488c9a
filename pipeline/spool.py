"""Texts of a shard copied aside, for archives a worker cannot read at a reference.

A tar.gz has no random access (reaching a member means decompressing everything before it),
neither has a CSV (quoted newlines: rows cannot be found by seeking), and a Parquet file whose
row groups hold more than `ingest.archive.PARQUET_GROUP_ROWS` rows has little (a row group is
the least it can read). Reading a shard's members
from the archive itself would cost each shard a pass over the archive, so over the whole run
(shards x archive) grows with the square of the archive. Instead, while planning streams the
archive once, each new shard's texts are written to `<scratch>/<shard key>.parquet`, and the
shard's references point at rows of that file. Cost: one write and one read of the new reports'
text, on disk in the run's scratch folder until the run is published (then removed); planning
holds at most one shard's texts in memory. Only reports still to extract are spooled: a night
over a big archive with a few new reports spools a few.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ingest.archive import ArchiveReport, ReportRef
from ingest.atomic import atomic_path


def spool_shard(folder: Path, key: str, reports: Sequence[ArchiveReport]
                ) -> tuple[Path, tuple[ReportRef, ...]]:
    """Write the readable reports' texts to `folder/<key>.parquet`; references into it (a
    report with a problem keeps its own reference: it is not read again)."""
    readable = [r for r in reports if r.problem is None and r.text is not None]
    path = folder / f"{key}.parquet"
    table = pa.table({"report_id": [r.report_id for r in readable],
                      "text": [r.text for r in readable]},
                     schema=pa.schema([("report_id", pa.string()), ("text", pa.large_string())]))
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    refs, row = [], 0
    for report in reports:
        ref = report.ref
        if report.problem is None and report.text is not None:
            ref = ReportRef(ref.report_id, ref.source, "", row, ref.sha256, ref.chars, None,
                            ref.warning)
            row += 1
        refs.append(ref)
    return path, tuple(refs)
