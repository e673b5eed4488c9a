"""The night's training takes its corpus and split from the night's ingest: the split ingest
wrote is the split training reads, and the corpus is read (and hashed) once."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from flows.ingest_flow import ingest_flow
from flows.parameters import NightlyParams
from flows.train_flow import train_flow
from ingest.generator import generate_corpus

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.mark.slow
def test_training_reads_the_split_ingest_wrote_and_does_not_read_the_corpus_again(tmp_path):
    annotated, archive = tmp_path / "annotated", tmp_path / "archive"
    generate_corpus(12, seed=31, out_dir=annotated)
    archive.mkdir()
    params = NightlyParams(annotated=annotated, archive=archive, out=tmp_path / "run",
                           profile="tiny")
    ingested = ingest_flow(**params.ingest_params().arguments())
    # A split no seed gives: 8 train, 2 dev, 2 test, in id order.
    with ingested.split_file.open(encoding="utf-8") as handle:
        ids = [row["report_id"] for row in csv.DictReader(handle)]
    sides = ["train"] * 8 + ["dev"] * 2 + ["test"] * 2
    with ingested.split_file.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("report_id", "split"))
        writer.writerows(zip(ids, sides, strict=True))
    # Read again, the corpus would now hold no annotated report at all.
    for ann in annotated.glob("*.ann"):
        ann.write_text("T1\tNoSuchType 0 1\tx\n", encoding="utf-8")

    model = train_flow(**params.train_params(ingested.split_file,
                                             ingested.corpus_sha256).arguments())

    metrics = json.loads((Path(model.model_dir) / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["split"] == {"train": 8, "dev": 2, "test": 2}
    assert metrics["corpus"]["used"] == 12 and metrics["corpus"]["quarantined"] == 0
    assert model.corpus_sha256 == ingested.corpus_sha256
