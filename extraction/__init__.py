"""Extraction: tensors and models. The focused attention model (STR-encoder, CRF, RC head),
its training and evaluation, and batch extraction over report archives.

Imports from `ingest` only; turns documents without entities into documents with entities and
relations (with confidences), so nothing downstream needs model code.
"""
