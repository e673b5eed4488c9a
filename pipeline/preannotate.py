"""Pre-annotation: the model's predictions as brat files, so annotators correct instead of
starting blank.

The run protocol (`pipeline.run`) into a `BratSink`: each report of the input is copied to OUT
with a `.ann` of the predictions beside it. brat has no confidence syntax: an annotation the
model is unsure of (confidence under `note_below`) gets an `AnnotatorNotes` line `model 0.41`
that brat shows on hover (ingest.model_notes); OUT is a brat collection (annotation.conf,
visual.conf, tools.conf copied in, ingest.brat_collection). Reports that cannot be read are
reported and left out; a report the model fails on is
reported and copied with an empty `.ann`, so the annotator still gets it.

Annotators' work is never lost: a report whose `.ann` is already in OUT is left as it is
(counted as kept) unless `force`; OUT is locked while it is written; an OUT inside the input
folder is not read as input, so running twice never pre-annotates its own output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from extraction.shard import DEFAULT_BATCH_SIZE, DocumentExtractor
from ingest.model_notes import DEFAULT_NOTE_BELOW
from pipeline.run import ExtractorLoader, RunSettings, new_run_id, run
from pipeline.sinks import BratSink


@dataclass(frozen=True)
class PreannotateSummary:
    written: int = 0
    kept: int = 0  # already annotated in OUT: left as they were
    entities: int = 0
    relations: int = 0
    problems: tuple[str, ...] = field(default_factory=tuple)

    def format(self) -> str:
        lines = [f"pre-annotated {self.written} reports: {self.entities} entities, "
                 f"{self.relations} relations; {self.kept} already annotated kept (--force "
                 f"overwrites them); {len(self.problems)} problems"]
        return "\n".join(lines + [f"  {p}" for p in self.problems])


def preannotate(extractor: DocumentExtractor | ExtractorLoader, in_dir: str | Path,
                out_dir: str | Path, *,
                batch_size: int = DEFAULT_BATCH_SIZE, force: bool = False,
                wait_for_lock: bool = False,
                note_below: float = DEFAULT_NOTE_BELOW) -> PreannotateSummary:
    """Write `OUT_DIR/<id>.txt` + `<id>.ann` for every readable report of `in_dir` (a folder
    or any archive `ingest.archive` reads). `extractor`: the model, or its loader (called
    once OUT_DIR's lock is held)."""
    in_path, out_path = Path(in_dir).resolve(), Path(out_dir).resolve()
    if out_path == in_path:
        raise ValueError(f"{out_dir}: the output folder must differ from the input folder, or "
                         "the annotators' existing .ann files would be overwritten")
    settings = RunSettings(run_id=new_run_id().replace("run-", "preannotate-"),
                           batch_size=batch_size, wait_for_lock=wait_for_lock)
    summary = run(in_path, BratSink(out_path, force=force, note_below=note_below), extractor,
                  settings)
    return PreannotateSummary(written=summary.extracted + summary.failed, kept=summary.skipped,
                              entities=summary.entities, relations=summary.relations,
                              problems=summary.problems)
