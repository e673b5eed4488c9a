"""Flows: the Prefect wiring of ingest -> extraction -> export, and the `angiokg` command line.

Thin by design: every task calls a plain function from the other packages.
"""
