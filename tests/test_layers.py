"""Nothing below `flows` imports Prefect: read from every module's source (lazy imports in a
function body included) and checked in a fresh interpreter that imports them all."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BELOW_FLOWS = ("ingest", "extraction", "export", "pipeline")
PREFECT = ("prefect", "prefect_dask")


def _modules() -> list[Path]:
    return sorted(p for package in BELOW_FLOWS for p in (ROOT / package).rglob("*.py"))


def imported_names(source: str) -> set[str]:
    """Every module an `import` or `from ... import` anywhere in `source` names; a dynamic
    `importlib.import_module("...")` with a literal name counts too."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value)
    return names


def _top(name: str) -> str:
    return name.split(".")[0]


def test_the_check_sees_a_lazy_import_in_a_function_body():
    lazy = "def f():\n    from prefect.blocks.system import Secret\n    return Secret\n"
    assert "prefect" in {_top(n) for n in imported_names(lazy)}
    assert "prefect" in {_top(n) for n in imported_names("import importlib\n"
                                                         "importlib.import_module('prefect')")}


def test_no_module_below_flows_imports_prefect_or_flows():
    modules = _modules()
    assert len(modules) > 50  # the packages were found
    offenders = {
        str(path.relative_to(ROOT)): sorted(n for n in imported_names(path.read_text("utf-8"))
                                            if _top(n) in (*PREFECT, "flows"))
        for path in modules}
    assert {path: names for path, names in offenders.items() if names} == {}


def test_importing_every_module_below_flows_loads_no_prefect():
    names = [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in _modules()]
    names = [n.removesuffix(".__init__") for n in names]
    script = ("import importlib, sys\n"
              f"for name in {names!r}:\n"
              "    importlib.import_module(name)\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in "
              f"{PREFECT!r} or m.split('.')[0] == 'flows'))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
