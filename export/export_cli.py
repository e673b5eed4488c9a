"""`angiokg cypher | load-graph | export-neo4j | bulk-import`: the export room's commands."""

from __future__ import annotations

import argparse
import json
import logging
import os
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from export import graph_model as gm
from export import parquet_sink as ps

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


def _parameters(pairs: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--param {pair!r}: expected NAME=VALUE (VALUE read as JSON if it "
                             "parses, else as text)")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


def _run(root: Path, run_id: str | None) -> ps.RunInfo:
    return ps.find_run(root, run_id) if run_id else ps.latest_run(root)


def cmd_cypher(args: argparse.Namespace) -> int:
    from export.ladybug_store import LadybugStore

    if args.named:
        query = gm.QUERIES[args.named]
        params = {**gm.QUERY_DEFAULTS.get(args.named, {}), **_parameters(args.param)}
    elif args.query:
        query, params = args.query, _parameters(args.param)
    else:
        raise SystemExit("give a Cypher query or --named " + "|".join(gm.QUERIES))
    if not Path(args.db).exists():
        raise SystemExit(f"{args.db}: no embedded graph here; load one with "
                         "`angiokg load-graph DATA_ROOT --db PATH` or pass --db")
    with LadybugStore(args.db, read_only=True) as store:
        result = store.query(query, params)
    print(format_table(result.columns, result.rows))
    return 0


def cmd_load_graph(args: argparse.Namespace) -> int:
    from export.ladybug_store import LadybugStore

    run = _run(Path(args.data), args.run_id)
    with LadybugStore(args.db, batch_size=args.batch_size) as store:
        counts = store.load_run(args.data, run)
    print(f"run {run.run_id} loaded into {args.db}: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def cmd_export_neo4j(args: argparse.Namespace) -> int:
    from export.neo4j_store import Neo4jConfigError, Neo4jSettings, Neo4jWriter

    try:
        settings = Neo4jSettings.from_env(batch_size=args.batch_size)
    except Neo4jConfigError as exc:
        raise SystemExit(f"export-neo4j: {exc}") from None
    run = _run(Path(args.data), args.run_id)
    driver, writer = Neo4jWriter.open(settings)
    try:
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


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("cypher", help="query the embedded graph (LadybugDB)")
    p.add_argument("query", nargs="?", help="a Cypher query; data goes in --param, not here")
    p.add_argument("--named", choices=sorted(gm.QUERIES), help="one of the analysts' queries")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="query parameter $NAME (repeatable)")
    p.add_argument("--db", default=str(DEFAULT_DB), help=f"graph folder (default {DEFAULT_DB})")
    p.set_defaults(handler=cmd_cypher)

    run_help = "run id (default: the latest committed run)"
    p = subparsers.add_parser("load-graph", help="bulk-load a run's Parquet into LadybugDB")
    p.add_argument("data", help="root of the Parquet datasets")
    p.add_argument("--run-id", help=run_help)
    p.add_argument("--db", default=str(DEFAULT_DB))
    p.add_argument("--batch-size", type=int, default=gm.DEFAULT_BATCH_SIZE)
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
