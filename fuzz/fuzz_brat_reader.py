"""Fuzz the brat reader, decoder and validator: no input may raise; every problem is a finding.

Run for about three minutes (hypothesis, no extra dependency; figures in docs/fuzzing.md):

    FUZZ_SECONDS=180 .venv/bin/python fuzz/fuzz_brat_reader.py

It feeds three kinds of input through `read_report` (decode -> parse -> validate), the same path
a corpus load takes: raw random bytes as `.txt`/`.ann`, `.ann` text assembled from brat-like
line fragments (ids, types, offsets, tabs, `;`, `:`, CR/LF, huge and negative numbers), and
mutations of a valid report. It prints how many inputs it ran and exits 1 with the failing
input when anything raises.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.brat_reader import parse_ann  # noqa: E402
from ingest.corpus import QUARANTINED, VALID, read_report  # noqa: E402
from ingest.encoding import decode_bytes  # noqa: E402
from ingest.schema import load_schema  # noqa: E402

SCHEMA = load_schema()
TEXT = "前降支近段狭窄70%。回旋支未见狭窄；\r\n右冠中段闭塞。"
ANN = ("T1\tBodyPart 0 3\t前降支\nT2\tLocation 3 5\t近段\nT3\tDegree 5 7\t狭窄\n"
       "R1\tPosition Arg1:T1 Arg2:T2\nR2\tModifier Arg1:T3 Arg2:T1\n#1\tAnnotatorNotes T3\tok\n")

pieces = st.sampled_from([
    "T", "R", "E", "A", "M", "N", "#", "*", "1", "12", "\t", " ", ";", ":", "\n", "\r\n", "\r",
    "Arg1:", "Arg2:", "T1", "T99", "R1", "E1", "BodyPart", "Degree", "Modifier", "Equiv",
    "AnnotatorNotes", "Reference", "0", "3", "5", "-1", "99999999999999999999", "前降支", "狭窄",
    "\ufeff", "\x00", "%", "。", "；",
])
ann_like = st.lists(pieces, max_size=60).map("".join)
mutated = st.tuples(st.integers(0, len(ANN)), st.integers(0, 20), ann_like).map(
    lambda t: ANN[: t[0]] + t[2] + ANN[t[0] + t[1]:])
text_like = st.one_of(st.just(TEXT), st.text(max_size=80), ann_like)
ann_bytes = st.one_of(
    st.binary(max_size=300),
    ann_like.map(lambda s: s.encode("utf-8", "surrogatepass")),
    mutated.map(lambda s: s.encode("utf-8", "surrogatepass")),
)
txt_bytes = st.one_of(
    st.binary(max_size=300),
    text_like.map(lambda s: s.encode("utf-8", "surrogatepass")),
    text_like.map(lambda s: s.encode("gb18030", "replace")),
    text_like.map(lambda s: s.encode("utf-16", "surrogatepass")),
)

RUNS = 0


def check(workdir: Path, txt: bytes | None, ann: bytes | None) -> None:
    global RUNS
    RUNS += 1
    txt_path = workdir / "r.txt" if txt is not None else None
    ann_path = workdir / "r.ann" if ann is not None else None
    for path, data in ((txt_path, txt), (ann_path, ann)):
        if path is not None:
            path.write_bytes(data)
    if txt is None and ann is None:
        return
    report = read_report("r", txt_path, ann_path, SCHEMA)
    assert report.status in (VALID, QUARANTINED)
    assert (report.document is None) == (report.status == QUARANTINED)
    assert all(f.path and f.code and f.message for f in report.findings)
    # the pure layers on their own, too
    decoded = decode_bytes(ann or b"", "x.ann", keep_bom=False)
    if decoded.text is not None:
        parse_ann(decoded.text, "x.ann")


def main() -> int:
    seconds = float(os.environ.get("FUZZ_SECONDS", "120"))
    workdir = Path(tempfile.mkdtemp(prefix="fuzz-brat-"))
    started = time.monotonic()

    # Batches of fresh random inputs until the time is up. (Stopping by raising from inside the
    # test does not work: hypothesis replays the input, sees it pass, reports a FlakyFailure.)
    @settings(max_examples=BATCH, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(st.none(), txt_bytes), st.one_of(st.none(), ann_bytes))
    def fuzz(txt: bytes | None, ann: bytes | None) -> None:
        check(workdir, txt, ann)

    batches = 0
    while time.monotonic() - started < seconds:
        fuzz()  # a failure raises here, with the shrunk failing input: exit 1
        batches += 1
    elapsed = time.monotonic() - started
    print(f"fuzz_brat_reader: {RUNS} inputs ({batches} batches of {BATCH} examples) in "
          f"{elapsed:.0f} s, no unhandled exception")
    return 0


BATCH = 1000

if __name__ == "__main__":
    sys.exit(main())
