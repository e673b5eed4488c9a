"""The one set of defaults of a run, importable without torch or pyarrow (the command line's
argument defaults and the flows' parameters read them here)."""

from extraction.shard import DEFAULT_BATCH_SIZE
from ingest.archive import DEFAULT_MAX_BYTES

DEFAULT_SHARD_REPORTS = 256
# About 8 MB of UTF-8 Chinese text: a shard of huge reports closes early instead of growing.
DEFAULT_SHARD_CHARS = 3_000_000

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_MAX_BYTES", "DEFAULT_SHARD_CHARS",
           "DEFAULT_SHARD_REPORTS"]
