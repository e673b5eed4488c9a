"""The run: an archive's reports through the model into a sink, crash-safe, one writer at a time.

`pipeline.run` says what a run does, step by step. It sits above `extraction` (the model) and
`export` (the sinks), which must not import each other, and below `flows`, so the command line,
the Prefect flows and the tests run the same protocol without Prefect. Nothing here imports
Prefect.
"""
