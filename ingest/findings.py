"""A finding: one problem with one input file, where it is, and what to do about it.

The reader, the validator and the corpus loader all speak this one type, so a finding prints,
serialises to JSON and decides quarantine the same way wherever it came from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

ERROR = "error"
WARNING = "warning"
SEVERITIES = (ERROR, WARNING)


@dataclass(frozen=True)
class Finding:
    """`path`: the file the problem is in; `line`: 1-based line of that file, None for the
    whole file; `code`: a stable kebab-case name for tests and dashboards; `message`: what is
    wrong and what to do; `severity`: "error" (the report is quarantined) or "warning"."""

    path: str
    line: int | None
    code: str
    message: str
    severity: str = ERROR

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def format(self) -> str:
        """`path:line: severity code: message`, the shape compilers and editors understand."""
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.severity} {self.code}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def error(path: str, line: int | None, code: str, message: str) -> Finding:
    return Finding(path, line, code, message, ERROR)


def warning(path: str, line: int | None, code: str, message: str) -> Finding:
    return Finding(path, line, code, message, WARNING)


def has_errors(findings: tuple[Finding, ...] | list[Finding]) -> bool:
    return any(f.is_error for f in findings)
