"""Shared helpers for the core tests: a minimal valid spec and a subprocess runner for the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
CHURN = SPECS / "churn.yaml"
INVALID = ROOT / "tests" / "specs" / "invalid"
LINT = ROOT / "tests" / "specs" / "lint"

MINIMAL = """\
apiVersion: mlspec/v1
kind: MLSystem
metadata: {name: demo}
images: {runtime: ghcr.io/acme/demo:1.0.0}
data:
  sources: {train: {uri: data/train.csv}}
  schema:
    target: label
    columns:
      x: {type: float}
      label: {type: int, values: [0, 1]}
"""


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the real `mlspec` entry point in a fresh interpreter."""
    full_env = {**os.environ, **(env or {})}
    code = "from mlspec.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd or ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def expected_code(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# expect:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{path} has no '# expect:' line")


def schema_verdict(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# schema:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{path} has no '# schema:' line")


def root_conftest():
    """The root conftest as a module (free_port, wait_for_port, stop): importlib mode cannot import it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
