"""Time stage 4 (documents through the Parquet sink) with the code of one checkout.

    python bench/sink_worker.py CHECKOUT DOCUMENTS.pickle OUT_DIR

Prints one JSON line: seconds and rows per dataset. bench_pipeline's `--baseline CHECKOUT`
runs it for an older checkout and for this one, taking turns, so the two sinks are compared
side by side in one run on the same documents (pickled once by this checkout). The checkout's
folders come first on sys.path, so its `ingest` and `export` are the ones timed.
"""

from __future__ import annotations

import json
import pickle
import sys
import time
from pathlib import Path


def main(checkout: str, documents: str, out: str) -> int:
    sys.path[:0] = [str(Path(checkout) / "bench"), checkout]
    from pipeline_store import write_run  # the checkout's own stage-4 writer

    import export.parquet_sink as sink
    from ingest.schema import load_schema

    if not Path(sink.__file__).resolve().is_relative_to(Path(checkout).resolve()):
        raise SystemExit(f"{sink.__file__} is not {checkout}'s sink")
    docs = pickle.loads(Path(documents).read_bytes())
    schema = load_schema()
    began = time.perf_counter()
    rows = write_run(Path(out), docs, schema)
    seconds = time.perf_counter() - began
    print(json.dumps({"seconds": seconds, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:4]))
