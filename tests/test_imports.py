"""`mlspec lint` stays light: it imports none of the heavy libraries the backends and runtime need."""

from __future__ import annotations

import subprocess
import sys

from helpers_core import CHURN, ROOT

HEAVY = ("kfp", "airflow", "cdktf", "kubernetes", "torch", "onnxruntime", "mlflow")

_PROBE = """
import sys
heavy_names = set(sys.argv.pop().split(','))
from mlspec.cli import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
heavy = sorted({m.split('.')[0] for m in sys.modules} & heavy_names)
print('EXIT', code, 'HEAVY', ','.join(heavy) or '-', 'IR', 'mlspec.ir.model' in sys.modules)
"""


def probe(*args: str, heavy: tuple[str, ...] = HEAVY) -> str:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *args, ",".join(heavy)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout.strip().splitlines()[-1]


def test_lint_imports_no_heavy_library() -> None:
    line = probe("lint", str(CHURN))
    # lint lowers the spec (every environment) to predict what each target cannot express, so it loads the
    # IR and the backends' capability tables, but none of the libraries the backends generate with
    assert line == "EXIT 0 HEAVY - IR True", line


def test_probe_detects_imports() -> None:
    # the same probe sees a module that the command does import (so the check above is not vacuous)
    assert probe("ir", str(CHURN), heavy=("pydantic", "json")).startswith("EXIT 0 HEAVY json,pydantic")


def test_importtime_lists_no_heavy_module() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mlspec", "lint", str(CHURN)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    imported = {
        line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line
    }
    assert not imported & set(HEAVY), imported & set(HEAVY)
