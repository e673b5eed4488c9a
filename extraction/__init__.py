"""Extraction: tensors and models. The focused attention model (STR-encoder, CRF, RC head),
its training and evaluation, and batch extraction over report archives.

Imports from `ingest` only; turns documents without entities into documents with entities and
relations (with confidences), so nothing downstream needs model code.

Importing the package sets OpenMP's wait policy to PASSIVE unless the environment already
says (OMP_WAIT_POLICY=ACTIVE restores the spinning): torch's OpenMP runtime reads it once, when
torch loads, and every import of torch in the project comes through this package. With the
default, each torch thread spins after a parallel region; between the model's ops extraction
runs Python (the CRF's decoding, the relation pairs, the Parquet rows), and on a machine whose
cores are shared the spinning threads take the CPU that Python needs. Stage 3 of `make bench`,
200 reports, torch's 2 threads, 2026-12-01 under a load of about 7: full extraction 96.2 s ->
18.5 s, the plain BertModel floor 50.2 -> 12.1 s, full / floor 1.92x -> 1.52x.
"""

import os

OPENMP_WAIT_POLICY = "PASSIVE"
os.environ.setdefault("OMP_WAIT_POLICY", OPENMP_WAIT_POLICY)
