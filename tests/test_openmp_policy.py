"""torch's OpenMP threads sleep, not spin, between ops unless the environment says otherwise."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child(code: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | env
    return subprocess.run([sys.executable, "-c", code], cwd=REPO,
                          env=environ, capture_output=True, text=True, check=True)


def test_importing_extraction_sets_passive_and_keeps_an_operators_choice():
    code = "import extraction, os; print(os.environ['OMP_WAIT_POLICY'])"
    assert child(code).stdout.strip() == "PASSIVE"
    assert child(code, OMP_WAIT_POLICY="ACTIVE").stdout.strip() == "ACTIVE"


def test_the_one_module_outside_extraction_that_imports_torch_loads_extraction_first():
    # The policy is read once, when torch loads its OpenMP runtime: set after, it is ignored.
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import flows.extract_flow"],
                         cwd=REPO, capture_output=True, text=True, check=True).stderr
    names = [line.rsplit("|", 1)[-1].strip() for line in out.splitlines()]
    assert "extraction" in names
    assert "torch" not in names or names.index("extraction") < names.index("torch")
