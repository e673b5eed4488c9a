"""Run logs an operator can read: Prefect's retry lines as warnings, and no traceback around an
error whose message already says everything.

`readable_run_logs()` puts one filter on Prefect's run loggers (idempotent; each flow calls it
first). Prefect logs a task's retry ("Task run failed with exception ... - Retry 1/3 will start
...") at INFO and every failure with a traceback of its own engine's frames; an `Explained` error
(a message naming what failed and what to do) keeps its line and loses the traceback.
"""

from __future__ import annotations

import abc
import logging

from pipeline.lock import OutputLocked

RUN_LOGGERS = ("prefect.task_runs", "prefect.flow_runs")
_RETRY_PREFIX = "Task run failed with %s: %r - Retry "  # Prefect's task_engine template


class Explained(Exception, metaclass=abc.ABCMeta):
    """An error whose message is the whole story (what failed, what is intact, what to do).

    Subclass it, or `Explained.register` an error of a lower package (which cannot import
    flows), e.g. export's GraphStoreError."""


# "<folder>: <who> is writing this output folder; wait ..., or pass --wait": the whole story of
# a refused nightly or extract flow.
Explained.register(OutputLocked)


class ReadableRunLogs(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith(_RETRY_PREFIX):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        if record.exc_info and isinstance(record.exc_info[1], Explained):
            record.exc_info, record.exc_text = None, None
        return True


def readable_run_logs() -> None:
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ReadableRunLogs) for f in logger.filters):
            logger.addFilter(ReadableRunLogs())
