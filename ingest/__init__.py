"""Ingest: brat standoff files, the annotation schema, validation, splits and training examples.

This package is the bottom room: it imports nothing from `extraction`, `export` or `flows`.
"""
