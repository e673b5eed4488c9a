"""One summary per processed report, from its records: what an analyst filters patients on.

Per territory (LM, LAD, LCX, RCA: `ingest.coronary`), the highest stenosis the report states and
where: null when the report states none there (not reported, or only findings without a
stenosis such as 斑块 or 重度狭窄 without a percentage), 0 when it is reported free of stenosis
(a negated stenosis). A territory among LAD, LCX, RCA with a maximum of 70% or more is a
diseased vessel; left main disease is LM at 50% or more. Occlusions (stenosis 100) are counted
once per artery and set of segments, so a conclusion that repeats a lesion does not count it
twice. The rules are the contract's (`../shared/schema/coronary-tree.md`, `docs/records.md`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ingest.coronary import TERRITORIES, CoronaryTree, Dominance, default_tree
from ingest.document import Document
from ingest.records import KeyValueRecord

DISEASED_VESSEL_MIN = 70.0  # % in LAD, LCX or RCA
LEFT_MAIN_DISEASE_MIN = 50.0  # % in LM
OCCLUSION = 100.0
VESSEL_TERRITORIES = ("LAD", "LCX", "RCA")


@dataclass(frozen=True)
class TerritoryMax:
    stenosis: float | None
    segments: tuple[str, ...]  # of the first record reaching it; () without a segment


@dataclass(frozen=True)
class ReportSummary:
    report_id: str
    dominance: str
    dominance_assumed: bool
    max_stenosis_lm: float | None
    max_stenosis_lm_segments: tuple[str, ...]
    max_stenosis_lad: float | None
    max_stenosis_lad_segments: tuple[str, ...]
    max_stenosis_lcx: float | None
    max_stenosis_lcx_segments: tuple[str, ...]
    max_stenosis_rca: float | None
    max_stenosis_rca_segments: tuple[str, ...]
    total_occlusions: int
    diseased_vessels: int  # 0-3
    left_main_disease: bool
    model_version: str | None


def territory_maxima(records: Sequence[KeyValueRecord], tree: CoronaryTree
                     ) -> dict[str, TerritoryMax]:
    best: dict[str, TerritoryMax] = {t: TerritoryMax(None, ()) for t in TERRITORIES}
    for r in records:
        territory = tree.territory(r.artery, r.dominance)
        if territory is None or r.stenosis is None:
            continue
        current = best[territory].stenosis
        if current is None or r.stenosis > current:
            best[territory] = TerritoryMax(r.stenosis, r.segments)
    return best


def report_summary(document: Document, records: Sequence[KeyValueRecord], *,
                   model_version: str | None, tree: CoronaryTree | None = None) -> ReportSummary:
    """The summary of one report from its records (`records_from_document`)."""
    tree = tree or default_tree()
    # The records carry the report's dominance; read it from the text only when there is none.
    dominance = (Dominance(records[0].dominance, records[0].dominance_assumed) if records
                 else tree.dominance(document.text))
    maxima = territory_maxima(records, tree)

    def at_least(territory: str, threshold: float) -> bool:
        value = maxima[territory].stenosis
        return value is not None and value >= threshold

    occlusions = {(r.artery or r.vessel_text, r.segments) for r in records
                  if r.stenosis == OCCLUSION and not r.negated}
    return ReportSummary(
        report_id=document.doc_id,
        dominance=dominance.value,
        dominance_assumed=dominance.assumed,
        max_stenosis_lm=maxima["LM"].stenosis,
        max_stenosis_lm_segments=maxima["LM"].segments,
        max_stenosis_lad=maxima["LAD"].stenosis,
        max_stenosis_lad_segments=maxima["LAD"].segments,
        max_stenosis_lcx=maxima["LCX"].stenosis,
        max_stenosis_lcx_segments=maxima["LCX"].segments,
        max_stenosis_rca=maxima["RCA"].stenosis,
        max_stenosis_rca_segments=maxima["RCA"].segments,
        total_occlusions=len(occlusions),
        diseased_vessels=sum(at_least(t, DISEASED_VESSEL_MIN) for t in VESSEL_TERRITORIES),
        left_main_disease=at_least("LM", LEFT_MAIN_DISEASE_MIN),
        model_version=model_version,
    )
