"""generated/ holds the current output of every spec in specs/ and each of its environments."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mlspec

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
CASES = [(spec, None) for spec in SPECS] + [
    (spec, env) for spec in SPECS for env in mlspec.load(spec).spec.environments
]


@pytest.mark.parametrize(("spec", "env"), CASES, ids=lambda v: getattr(v, "name", v))
def test_committed_output_is_current(spec: Path, env: str | None) -> None:
    args = [sys.executable, "-m", "mlspec", "compile", str(spec.relative_to(ROOT)), "--check"]
    if env:
        args += ["--env", env]
    environment = {**os.environ, "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=environment, timeout=300)
    assert proc.returncode == 0, f"run scripts/regenerate.sh\n{proc.stderr}"


def test_every_generated_system_has_a_spec() -> None:
    systems = {mlspec.load(spec).spec.metadata.name for spec in SPECS}
    assert {p.name for p in (ROOT / "generated").iterdir() if p.is_dir()} == systems


def test_capability_matrix_doc_is_current() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mlspec", "targets", "--markdown"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (ROOT / "docs" / "capabilities.md").read_text(), (
        "run: mlspec targets --markdown > docs/capabilities.md"
    )
