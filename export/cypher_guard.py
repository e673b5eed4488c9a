"""Which Cypher an analyst may run through `angiokg cypher`: read queries, never host files.

LadybugDB opened read-only refuses writes to the graph, but it still runs
`COPY (MATCH ...) TO '/any/path'`, `EXPORT DATABASE '/any/path'` (both write host files) and
`LOAD FROM '/etc/passwd' ...` (reads one). So the query text is checked first, as LadybugDB's own
lexer (its Cypher.g4) would split it: string literals, `backtick` names and comments are
skipped, and every keyword left must be one of the read keywords below (MATCH, OPTIONAL MATCH,
WITH, UNWIND, WHERE, RETURN, UNION, ORDER BY, ...). Anything else that is a LadybugDB keyword
(COPY, LOAD, EXPORT, IMPORT, ATTACH, INSTALL, CREATE, MERGE, SET, DELETE, DROP, ALTER, BEGIN,
...) is refused; `CALL` only for the catalog functions in `CATALOG_CALLS`. One statement per
query.

Where this scanner and the real lexer could disagree, it errs on refusing: an unterminated
string or comment and an escape LadybugDB does not know are malformed here; `''` inside a
single-quoted string ends it (LadybugDB 0.22 has no doubled-quote escape, so the text between
is code); a keyword glued to non-ASCII letters (`前COPY`, one name to LadybugDB) is still seen
as the keyword. A keyword used as a name is accepted where only a name can stand: after `.`
(a property, `m.type`), after `:` (a label or a map value), after AS (an alias, `AS type`) or
before `:` (a map key, `{type: 'Vessel'}`, or a variable with a label).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


def _names(words: str) -> frozenset[str]:
    return frozenset(words.split())


# LadybugDB 0.22's lexer keywords (scripts/antlr4/Cypher.g4), SKIP for its L_SKIP.
KEYWORDS = _names("""
    ACYCLIC ANY ADD ALL ALTER ANALYZE AND AS ASC ASCENDING ATTACH BEGIN BY CALL CASE CAST
    CHECKPOINT COLUMN COMMENT COMMIT COMMIT_SKIP_CHECKPOINT CONTAINS COPY COUNT CREATE CSR CYCLE
    DATABASE DBTYPE DECIMAL DEFAULT DELETE DESC DESCENDING DETACH DISTINCT DROP ELSE END ENDS
    EXISTS EXPLAIN EXPORT EXTENSION FALSE FROM FORCE FOR GLOB GRAPH GROUP HEADERS HINT IMPORT
    INDEX IF IN INCREMENT INSTALL IS JOIN KEY LIMIT LOAD LOGICAL MACRO MAP MATCH MAXVALUE MERGE
    MINVALUE MULTI_JOIN NO NODE NOT NONE NULL ON ONLY OPTIONS OPTIONAL OR ORDER PASSWORD PRIMARY
    PROFILE PROJECT READ REL RENAME RETURN ROLE ROLLBACK ROLLBACK_SKIP_CHECKPOINT SEQUENCE SET
    SHORTEST SINGLE SKIP SORTED START STARTS STRUCT TABLE THEN TO TRAIL TRANSACTION TRUE TYPE
    UNINSTALL UNION UNWIND UPDATE USE USER WHEN WHERE WITH WRITE WSHORTEST XOR YIELD
""")

# The keywords of reading queries: clauses, their modifiers, operators, literals, CASE,
# quantifiers, EXISTS/COUNT subqueries, recursive patterns, join hints and CAST's types.
READ_KEYWORDS = _names("""
    MATCH OPTIONAL WHERE WITH UNWIND RETURN UNION ALL DISTINCT ORDER BY SKIP LIMIT AS ASC
    ASCENDING DESC DESCENDING AND OR XOR NOT IN IS NULL TRUE FALSE STARTS ENDS CONTAINS CASE WHEN
    THEN ELSE END EXISTS COUNT CAST ANY NONE SINGLE SHORTEST WSHORTEST TRAIL ACYCLIC HINT JOIN
    MULTI_JOIN DECIMAL STRUCT MAP YIELD
""")
FIRST_CLAUSES = frozenset({"MATCH", "OPTIONAL", "WITH", "UNWIND", "RETURN", "CALL"})
# Table functions that only read the catalog: `CALL show_tables() RETURN *` lists the graph's
# tables, `CALL table_info('Finding') RETURN *` a table's properties.
CATALOG_CALLS = frozenset({"show_tables", "table_info"})

_ESCAPES = frozenset("\\'\"bfnrtBFNRT")
_HEX = frozenset("0123456789abcdefABCDEF")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DIGITS = re.compile(r"[0-9]+")
_PARAM = re.compile(r"\$([^\W\d]\w*|\d+)")


class QueryRefused(ValueError):
    """The query is not a single read query, or cannot be scanned; the message says why."""


@dataclass(frozen=True)
class Token:
    kind: str  # "word", "param" (text without the $) or "punct" (one character)
    text: str
    at: int  # character offset in the query


@dataclass(frozen=True)
class ReadQuery:
    """A query that passed the check, and the `$parameters` it uses (sorted)."""

    text: str
    parameters: tuple[str, ...]


def tokens(query: str) -> list[Token]:
    """Words, `$parameters` and punctuation of `query`, outside literals and comments.

    Linear in the length of the query. Raises `QueryRefused` for an unterminated string, name
    or comment and for an escape LadybugDB does not accept."""
    found: list[Token] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch in "'\"":
            i = _skip_string(query, i)
        elif ch == "`":
            end = query.find("`", i + 1)
            if end < 0:
                raise QueryRefused(f"a `name` opened at character {i} is never closed")
            i = end + 1
        elif query.startswith("//", i):
            ends = [p for p in (query.find("\n", i), query.find("\r", i)) if p >= 0]
            i = min(ends) if ends else n
        elif query.startswith("/*", i):
            end = query.find("*/", i + 2)
            if end < 0:
                raise QueryRefused(f"a /* comment opened at character {i} is never closed")
            i = end + 2
        elif ch == "$":
            match = _PARAM.match(query, i)
            if match is None:
                raise QueryRefused(f"'$' at character {i} is not followed by a parameter name")
            found.append(Token("param", match.group(1), i))
            i = match.end()
        elif (word := _WORD.match(query, i)) is not None:
            found.append(Token("word", word.group(), i))
            i = word.end()
        elif (digits := _DIGITS.match(query, i)) is not None:
            i = digits.end()  # a number: `12COPY` is 12 then COPY to the lexer, and so here
        elif ch.isspace() or ch.isalpha():
            i += 1  # white space, or a letter of a non-ASCII name (not part of any keyword)
        else:
            found.append(Token("punct", ch, i))
            i += 1
    return found


def _skip_string(query: str, start: int) -> int:
    quote, i, n = query[start], start + 1, len(query)
    while i < n:
        ch = query[i]
        if ch == quote:
            return i + 1
        if ch == "\\":
            escape = query[i + 1 : i + 2]
            if escape in ("x", "X"):
                width = 2
            elif escape in ("u", "U"):
                width = 4
            elif escape and escape in _ESCAPES:
                width = 0
            else:
                raise QueryRefused(f"the string at character {start} has an escape "
                                   f"'\\{escape}' LadybugDB does not accept")
            digits = query[i + 2 : i + 2 + width]
            if len(digits) < width or not set(digits) <= _HEX:
                raise QueryRefused(f"the string at character {start} has a malformed "
                                   f"'\\{escape}' escape")
            i += 2 + width
        else:
            i += 1
    raise QueryRefused(f"the string opened at character {start} is never closed")


def check_read_only(query: str) -> ReadQuery:
    """`query` as a `ReadQuery`, or `QueryRefused` saying what is not allowed and where."""
    found = tokens(query)
    words = [t for t in found if t.kind == "word"]
    if not words:
        raise QueryRefused("the query is empty")
    first = words[0].text.upper()
    if first not in FIRST_CLAUSES or found[0] is not words[0]:
        raise QueryRefused(f"a read query starts with MATCH, OPTIONAL MATCH, WITH, UNWIND, "
                           f"RETURN or CALL, not {words[0].text!r}")
    for k, token in enumerate(found):
        if token.kind == "punct" and token.text == ";" and k != len(found) - 1:
            raise QueryRefused(f"';' at character {token.at}: one query at a time")
        if token.kind != "word":
            continue
        keyword = token.text.upper()
        if keyword not in KEYWORDS or keyword in READ_KEYWORDS or _is_name(found, k):
            continue
        if keyword == "CALL" and _is_catalog_call(found, k):
            continue
        if keyword == "CALL":
            raise QueryRefused(f"CALL at character {token.at}: only the catalog functions "
                               f"{', '.join(sorted(CATALOG_CALLS))} may be called here")
        raise QueryRefused(f"{keyword} at character {token.at} is not a read clause: only "
                           "queries that read the graph (MATCH, WITH, UNWIND, WHERE, RETURN, "
                           "...) run here, and none that writes it or touches files")
    parameters = sorted({t.text for t in found if t.kind == "param"})
    return ReadQuery(query, tuple(parameters))


def _is_name(found: list[Token], k: int) -> bool:
    before = found[k - 1] if k > 0 else None
    after = found[k + 1] if k + 1 < len(found) else None
    return ((before is not None and before.kind == "punct" and before.text in ".:")
            or (before is not None and before.kind == "word" and before.text.upper() == "AS")
            or (after is not None and after.kind == "punct" and after.text == ":"))


def _is_catalog_call(found: list[Token], k: int) -> bool:
    name = found[k + 1] if k + 1 < len(found) else None
    paren = found[k + 2] if k + 2 < len(found) else None
    return (name is not None and name.kind == "word" and name.text.lower() in CATALOG_CALLS
            and paren is not None and paren.text == "(")
