"""`angiokg records | cypher | load-graph | export-neo4j | bulk-import`: the export room's
commands."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from export import graph_model as gm
from export.cypher_guard import QueryRefused, ReadQuery, check_read_only
from export.published import RunInfo, find_run, latest_run

if TYPE_CHECKING:
    from export.ladybug_store import QueryResult

logger = logging.getLogger(__name__)

DEFAULT_DB = Path(os.environ.get("ANGIOKG_GRAPH_DB", "runs/sample/graph/angiokg.lbug"))


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table; wide (CJK) characters count two columns."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([_width(c)] + [_width(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        padded = (v + " " * (w - _width(v)) for v, w in zip(values, widths, strict=True))
        return " | ".join(padded).rstrip()

    out = [line(columns), "-+-".join("-" * w for w in widths)] + [line(r) for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


PARAM_TYPES = ("str", "int", "float", "bool", "json")
PARAM_SYNTAX = ("NAME=TEXT is text; NAME:int=3, NAME:float=70.5, NAME:bool=true and "
                "NAME:json=[1,2] are typed")


class CypherError(Exception):
    """`angiokg cypher` cannot run the query; the message is one line saying why."""


def parse_parameter(pair: str, default: Any = None) -> tuple[str, Any]:
    """`NAME=VALUE` (text) or `NAME:TYPE=VALUE`. A value is never guessed from how it looks
    (`id=123` stays the report id "123"); an untyped value takes the type of `default`, the
    named query's own default for that parameter, when there is one."""
    key, sep, raw = pair.partition("=")
    name, _, type_name = key.partition(":")
    if not sep or not name:
        raise CypherError(f"--param {pair!r}: expected NAME=VALUE ({PARAM_SYNTAX})")
    if not type_name and default is not None and not isinstance(default, str):
        type_name = {bool: "bool", int: "int", float: "float"}.get(type(default), "json")
    try:
        return name, _typed(raw, type_name or "str")
    except ValueError as exc:
        raise CypherError(f"--param {pair!r}: {exc}") from None


def _typed(raw: str, type_name: str) -> Any:
    if type_name == "str":
        return raw
    if type_name == "int":
        return int(raw)
    if type_name == "float":
        return float(raw)
    if type_name == "bool":
        if raw.lower() not in ("true", "false"):
            raise ValueError("a bool is true or false")
        return raw.lower() == "true"
    if type_name == "json":
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON ({exc.msg} at character {exc.pos})") from None
    raise ValueError(f"unknown type {type_name!r}; use one of {', '.join(PARAM_TYPES)}")


def _run(root: Path, run_id: str | None) -> RunInfo:
    return find_run(root, run_id) if run_id else latest_run(root)


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def cypher_query(args: argparse.Namespace) -> tuple[ReadQuery, dict[str, Any]]:
    """The checked query and its parameters from the command line; `CypherError` if refused."""
    if args.named and args.query:
        raise CypherError("give a Cypher query or --named NAME, not both")
    if args.named:
        text, defaults = gm.QUERIES[args.named], dict(gm.QUERY_DEFAULTS.get(args.named, {}))
    elif args.query:
        text, defaults = args.query, {}
    else:
        raise CypherError("give a Cypher query or --named " + "|".join(sorted(gm.QUERIES)))
    try:
        query = check_read_only(text)
    except QueryRefused as exc:
        raise CypherError(f"refused: {exc}") from None
    params = dict(defaults)
    for pair in args.param:
        name = pair.partition("=")[0].partition(":")[0]
        key, value = parse_parameter(pair, defaults.get(name))
        params[key] = value
    unknown = sorted(set(params) - set(query.parameters) - set(defaults))
    if unknown:
        uses = ", ".join(f"${p}" for p in query.parameters) or "no parameter"
        raise CypherError(f"--param {unknown[0]}: the query has no ${unknown[0]} (it uses "
                          f"{uses})")
    missing = [p for p in query.parameters if p not in params]
    if missing:
        raise CypherError(f"the query uses ${missing[0]} but no --param {missing[0]}=VALUE "
                          f"was given ({PARAM_SYNTAX})")
    return query, params


def cmd_cypher(args: argparse.Namespace) -> int:
    """Run one read-only query; any error is one line on stderr and exit status 2."""
    try:
        query, params = cypher_query(args)
        result = _query_graph(Path(args.db), query, params)
    except CypherError as exc:
        print(f"angiokg cypher: {exc}", file=sys.stderr)
        return 2
    print(format_table(result.columns, result.rows))
    return 0


def _query_graph(db: Path, query: ReadQuery, params: dict[str, Any]) -> QueryResult:
    from export.ladybug_store import LadybugStore

    if not db.exists():
        raise CypherError(f"--db {db}: no embedded graph here; load one with "
                          "`angiokg load-graph DATA_ROOT --db PATH` or pass --db")
    try:
        store = LadybugStore(db, read_only=True)  # the second guard: LadybugDB refuses writes
    except RuntimeError as exc:
        raise CypherError(f"--db {db}: not a LadybugDB graph ({_one_line(exc)}); pass the "
                          "file `angiokg load-graph` wrote") from None
    with store:
        try:
            return store.query(query.text, params)
        except (RuntimeError, ValueError, TypeError) as exc:
            # a value of the wrong type shows as a failed cast: say how to type it
            mistyped = params and any(w in str(exc).lower() for w in ("convert", "cast"))
            hint = f" ({PARAM_SYNTAX})" if mistyped else ""
            raise CypherError(f"the query failed: {_one_line(exc)}{hint}") from None


def _errors_on_one_line(parser: argparse.ArgumentParser, prog: str) -> None:
    """A usage error as one line and exit status 2, like every other error of the command."""

    def error(message: str) -> NoReturn:
        print(f"{prog}: {message} (see {prog} --help)", file=sys.stderr)
        raise SystemExit(2)

    parser.error = error  # type: ignore[method-assign]


def _mib(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{raw}: give MiB, or 0 for LadybugDB's default")
    return value


def cmd_load_graph(args: argparse.Namespace) -> int:
    from export.ladybug_store import GraphBufferPoolError, LadybugStore

    try:
        run = _run(Path(args.data), args.run_id)
    except (FileNotFoundError, ValueError) as exc:  # no such run, no run, a bad _published
        raise SystemExit(f"angiokg load-graph: {_one_line(exc)}; give the --out folder of "
                         "`angiokg extract` (and a --run-id it published)") from None
    try:
        store = LadybugStore(args.db, batch_size=args.batch_size,
                             buffer_pool_mib=args.buffer_pool_mib)
    except ValueError as exc:  # a bad $ANGIOKG_GRAPH_BUFFER_POOL_MIB
        raise SystemExit(f"angiokg load-graph: {_one_line(exc)}") from None
    except RuntimeError as exc:  # a file or folder that is no LadybugDB graph
        raise SystemExit(f"angiokg load-graph: --db {args.db}: not a LadybugDB graph "
                         f"({_one_line(exc)}); give a new path or the file load-graph wrote"
                         ) from None
    with store:
        try:
            counts = store.load_run(args.data, run)
        except GraphBufferPoolError as exc:
            raise SystemExit(f"angiokg load-graph: {_one_line(exc)}") from None
    print(f"run {run.run_id} loaded into {args.db}: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def cmd_export_neo4j(args: argparse.Namespace) -> int:
    from export.neo4j_store import Neo4jConfigError, Neo4jSettings, Neo4jWriter, redact_uri

    try:
        # flows.cli sets `secret_loader` (Prefect's Secret blocks): export never imports Prefect.
        settings = Neo4jSettings.from_env(batch_size=args.batch_size,
                                          secret_loader=getattr(args, "secret_loader", None))
    except Neo4jConfigError as exc:
        raise SystemExit(f"export-neo4j: {exc}") from None
    run = _run(Path(args.data), args.run_id)
    driver, writer = Neo4jWriter.open(settings)
    try:
        try:
            # Fail fast when the server is down: the driver would spend its 30 s retry budget
            # on the first write before saying so.
            driver.verify_connectivity()
        except Exception as exc:
            raise SystemExit(
                f"export-neo4j: cannot reach Neo4j at {redact_uri(settings.uri)} as "
                f"{settings.user} ({type(exc).__name__}: {settings.redact(str(exc))}); is the "
                "server running, and are NEO4J_URI, NEO4J_USER and NEO4J_PASSWORD right?"
            ) from None
        writer.ensure_schema()
        counts = writer.load_run(args.data, run)
    finally:
        driver.close()
    print(f"run {run.run_id} written to Neo4j database {settings.database}: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def cmd_bulk_import(args: argparse.Namespace) -> int:
    from export.bulk_import import bundle_from_run

    run = _run(Path(args.data), args.run_id)
    bundle = bundle_from_run(args.data, run, args.out, database=args.database,
                             guard=not args.no_formula_guard)
    print(f"bundle for run {run.run_id} in {bundle.folder}; load it with {bundle.script}, "
          f"then run {bundle.after_import}")
    return 0


def cmd_records(args: argparse.Namespace) -> int:
    from export.annotated_records import write_annotated_run
    from ingest.schema import load_schema

    corpus = Path(args.corpus)
    if not corpus.is_dir():
        raise SystemExit(f"angiokg records: {corpus} is not a folder of brat .txt/.ann files")
    result = write_annotated_run(corpus, args.out, load_schema(args.schema), run_id=args.run_id)
    print(result.format(Path(args.out)))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "records", help="records and report_summary Parquet from annotated brat files (no model)",
        description="Build the key-value records and per-report summaries of an annotated "
                    "corpus from its annotations, and write them (with the reports, entities "
                    "and triples datasets) under OUT as one run, in the shape a model's run "
                    "has. Reports that fail validation are quarantined rows of `reports`.")
    p.add_argument("corpus", metavar="CORPUS", help="folder of brat .txt + .ann files")
    p.add_argument("--out", required=True, help="root of the Parquet datasets")
    p.add_argument("--run-id", help="name of the run's partition (default annotations-<UTC>)")
    p.add_argument("--schema", help="annotation.conf (default: the bundled one)")
    p.set_defaults(handler=cmd_records)

    p = subparsers.add_parser(
        "cypher", help="run a read-only query on the embedded graph (LadybugDB)",
        description="Run one read query (MATCH, OPTIONAL MATCH, WITH, UNWIND, WHERE, RETURN, "
                    "...) on the embedded graph. Queries that write the graph or touch files "
                    "(CREATE, SET, DELETE, COPY, LOAD FROM, EXPORT, ...) are refused. Every "
                    "error is one line on stderr, exit status 2.")
    p.add_argument("query", nargs="?", help="a Cypher query; data goes in --param, not here")
    p.add_argument("--named", choices=sorted(gm.QUERIES), help="one of the analysts' queries")
    p.add_argument("--param", action="append", default=[], metavar="NAME[:TYPE]=VALUE",
                   help=f"query parameter $NAME (repeatable): {PARAM_SYNTAX}")
    p.add_argument("--db", default=str(DEFAULT_DB), help=f"graph file (default {DEFAULT_DB})")
    p.set_defaults(handler=cmd_cypher)
    _errors_on_one_line(p, "angiokg cypher")

    run_help = "run id (default: the latest committed run)"
    p = subparsers.add_parser("load-graph", help="bulk-load a run's Parquet into LadybugDB")
    p.add_argument("data", help="root of the Parquet datasets")
    p.add_argument("--run-id", help=run_help)
    p.add_argument("--db", default=str(DEFAULT_DB))
    p.add_argument("--batch-size", type=int, default=gm.DEFAULT_BATCH_SIZE)
    p.add_argument("--buffer-pool-mib", type=_mib, default=None, metavar="MIB",
                   help=f"LadybugDB's buffer pool cap (default: ${gm.BUFFER_POOL_ENV}, else "
                        f"{gm.DEFAULT_BUFFER_POOL_MIB}, raised for a run that needs more, to at "
                        "most half of the machine's memory; 0: LadybugDB's own default, ~80%% "
                        "of the machine's memory)")
    p.set_defaults(handler=cmd_load_graph)

    p = subparsers.add_parser("export-neo4j", help="write a run to Neo4j (NEO4J_* env vars)")
    p.add_argument("data", help="root of the Parquet datasets")
    p.add_argument("--run-id", help=run_help)
    p.add_argument("--batch-size", type=int, default=gm.DEFAULT_BATCH_SIZE)
    p.set_defaults(handler=cmd_export_neo4j)

    p = subparsers.add_parser("bulk-import", help="CSV bundle for neo4j-admin import")
    p.add_argument("data", help="root of the Parquet datasets")
    p.add_argument("--out", required=True, help="folder for the bundle")
    p.add_argument("--run-id", help=run_help)
    p.add_argument("--database", default="neo4j")
    p.add_argument("--no-formula-guard", action="store_true",
                   help="write cells starting with = + - @ as they are")
    p.set_defaults(handler=cmd_bulk_import)
