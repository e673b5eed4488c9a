"""A neo4j-admin bulk-import bundle written from a run's Parquet datasets.

For the first load of a large archive into an empty Neo4j database: CSV files with Neo4j's
import headers, one per label and edge type, and `import.sh` with the
`neo4j-admin database import full` command line that loads them. After the import,
`after-import.cypher` creates the constraints and indexes (as the online writer does) and, when
the formula guard was on, undoes its `'` prefixes (see `export.csv_safety`).

The import replaces the target database's contents (`--overwrite-destination`): Neo4j
Community's only database, `neo4j`, exists from the server's first start, and without the flag
neo4j-admin refuses it. `--multiline-fields=true` is passed only when a cell of the bundle
holds a line break: the manual warns that it can severely slow the import.

    bundle/
      nodes/Report.csv     id:ID(Report),status,...,:LABEL
      rels/IN_ARTERY.csv   :START_ID(Finding),:END_ID(Artery),:TYPE
      import.sh  after-import.cypher
"""

from __future__ import annotations

import contextlib
import logging
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from export import graph_model as gm
from export.csv_safety import format_row
from export.graph_tables import run_graph_pieces
from export.parquet_sink import RunInfo
from ingest.atomic import atomic_path, write_text_atomic

logger = logging.getLogger(__name__)

# Import types; DOUBLE as `double`, not `float`, which neo4j-admin stores in 32 bits.
NEO4J_IMPORT_TYPES = {gm.STRING: "string", gm.DOUBLE: "double", gm.INT64: "long",
                      gm.BOOLEAN: "boolean", gm.STRING_LIST: "string[]"}
# Between the items of a list cell (segment ids: 6;7), given to neo4j-admin as well.
ARRAY_DELIMITER = ";"


def _typed(prop: gm.Prop) -> str:
    return f"{prop.name}:{NEO4J_IMPORT_TYPES[prop.type]}"


def node_header(spec: gm.NodeSpec) -> list[str]:
    return ([f"{spec.key}:ID({spec.label})"] + [_typed(p) for p in spec.props[1:]]
            + [":LABEL"])


def rel_header(spec: gm.RelSpec) -> list[str]:
    return ([f":START_ID({spec.start.label})", f":END_ID({spec.end.label})"]
            + [_typed(p) for p in spec.props] + [":TYPE"])


@dataclass(frozen=True)
class Bundle:
    folder: Path
    script: Path
    after_import: Path
    rows: dict[str, int]
    multiline_files: tuple[str, ...]  # bundle-relative files with a line break in a cell


def _cell(value: object) -> object:
    if isinstance(value, list):
        return ARRAY_DELIMITER.join(str(v) for v in value)
    return value


def _rows(table: pa.Table, tail: str) -> Iterator[list]:
    for batch in table.to_batches(max_chunksize=10_000):  # bounded memory on big runs
        for row in batch.to_pylist():
            yield [*(_cell(v) for v in row.values()), tail]


def has_line_breaks(table: pa.Table) -> bool:
    """Whether any string cell holds a line break (neo4j-admin then needs --multiline-fields)."""
    def strings(column: pa.ChunkedArray) -> pa.ChunkedArray | None:
        kind = column.type
        if pa.types.is_list(kind) or pa.types.is_large_list(kind):  # string[] cells
            return strings(pc.list_flatten(column))
        return column if pa.types.is_string(kind) or pa.types.is_large_string(kind) else None

    texts = [t for t in (strings(c) for c in table.columns) if t is not None and len(t)]
    return any(pc.any(pc.match_substring_regex(t, r"[\r\n]")).as_py() for t in texts)


def import_command(folder: Path, database: str, *, multiline: bool = False) -> list[str]:
    """The neo4j-admin argument list (database first: required since Neo4j 5.19)."""
    args = ["neo4j-admin", "database", "import", "full", database,
            "--id-type=string", "--overwrite-destination=true",
            f"--array-delimiter={ARRAY_DELIMITER}"]
    if multiline:
        args.append("--multiline-fields=true")
    args += [f"--nodes={folder / 'nodes' / f'{s.label}.csv'}" for s in gm.NODES]
    args += [f"--relationships={folder / 'rels' / f'{r.type}.csv'}" for r in gm.RELS]
    return args


def _after_import(guard: bool) -> str:
    lines = ["// Run once after `neo4j-admin database import full` and starting the database."]
    lines += [s + ";" for s in gm.neo4j_schema_statements()]
    if guard:
        lines.append("// Undo the spreadsheet formula guard: strip one leading ' (csv_safety).")
        for spec in gm.NODES:
            for p in spec.props:
                if p.type == gm.STRING:
                    lines.append(f"MATCH (n:{spec.label}) WHERE n.{p.name} STARTS WITH \"'\" "
                                 f"SET n.{p.name} = substring(n.{p.name}, 1);")
        for rel in gm.RELS:
            for p in rel.props:
                if p.type == gm.STRING:
                    lines.append(f"MATCH ()-[r:{rel.type}]->() WHERE r.{p.name} STARTS WITH "
                                 f"\"'\" SET r.{p.name} = substring(r.{p.name}, 1);")
    return "\n".join(lines) + "\n"


def write_bundle(graph: Mapping[str, pa.Table], folder: str | Path, *,
                 database: str = "neo4j", guard: bool = True) -> Bundle:
    """Write the CSV files, import.sh and after-import.cypher for `graph` into `folder`."""
    return write_bundle_pieces([graph], folder, database=database, guard=guard)


def write_bundle_pieces(pieces: Iterable[Mapping[str, pa.Table]], folder: str | Path, *,
                        database: str = "neo4j", guard: bool = True) -> Bundle:
    """The bundle of a graph given piece by piece (`run_graph_pieces`: one shard of whole
    reports each), one piece in memory at a time; every file stays open until the last piece.
    The coronary tree, in every piece, is written from the first."""
    folder = Path(folder)
    specs = [(f"nodes/{s.label}.csv", s.label, node_header(s), s in gm.TREE_NODES)
             for s in gm.NODES]
    specs += [(f"rels/{r.type}.csv", r.type, rel_header(r), r in gm.TREE_RELS) for r in gm.RELS]
    rows = {name: 0 for _, name, _, _ in specs}
    multiline: set[str] = set()
    with contextlib.ExitStack() as stack:
        files = {}
        for file_name, name, header, _ in specs:
            tmp = stack.enter_context(atomic_path(folder / file_name))
            files[name] = stack.enter_context(open(tmp, "w", encoding="utf-8", newline=""))
            files[name].write(",".join(header) + "\n")  # bare: our names, neo4j-admin syntax
        for number, graph in enumerate(pieces):
            for file_name, name, _, tree in specs:
                if tree and number:
                    continue
                for row in _rows(graph[name], name):
                    files[name].write(format_row(row, guard=guard))
                    rows[name] += 1
                if has_line_breaks(graph[name]):
                    multiline.add(file_name)
    multiline_files = [f for f, _, _, _ in specs if f in multiline]
    script = folder / "import.sh"
    relative = import_command(Path("."), database, multiline=bool(multiline_files))
    write_text_atomic(script, _import_script(relative, database, multiline_files))
    script.chmod(0o755)
    after = folder / "after-import.cypher"
    write_text_atomic(after, _after_import(guard))
    logger.info("bulk-import bundle in %s: %s", folder,
                ", ".join(f"{k} {v}" for k, v in rows.items()))
    return Bundle(folder, script, after, rows, tuple(multiline_files))


def _import_script(command: list[str], database: str, multiline: list[str]) -> str:
    db = shlex.quote(database)
    lines = [
        "#!/bin/sh",
        f"# Load this bundle into the Neo4j database {db}, REPLACING what it holds",
        "# (--overwrite-destination). The database must be stopped: with Neo4j Community (one",
        "# database, `neo4j`), stop the server and run this where neo4j-admin is (in Docker:",
        "# infra/README.md, 'First load of a big archive'). Then:",
        f"#   - a database that did not exist before (Enterprise): CREATE DATABASE {db} in the",
        "#     system database (cypher-shell -d system), which starts it on the imported files;",
        "#     an existing one: start the server (or START DATABASE).",
        f"#   - cypher-shell -d {db} -f after-import.cypher (constraints, indexes, formula guard).",
    ]
    if multiline:
        lines.append("# --multiline-fields: a cell holds a line break in " + ", ".join(multiline))
    lines += ["set -eu", 'cd "$(dirname "$0")"',
              " ".join(shlex.quote(a) for a in command[:5]) + " \\\n  "
              + " \\\n  ".join(shlex.quote(a) for a in command[5:])]
    return "\n".join(lines) + "\n"


def bundle_from_run(root: str | Path, run: RunInfo, folder: str | Path, *,
                    database: str = "neo4j", guard: bool = True) -> Bundle:
    """The bundle for a committed run of the Parquet datasets under `root`, read one shard at
    a time (a run of any size holds one shard's rows in memory)."""
    return write_bundle_pieces(run_graph_pieces(root, run), folder, database=database,
                               guard=guard)
