"""A real editor: headless Neovim's built-in LSP client starts `mlspec lsp` on a spec and reports the same
diagnostics, at the same spans, as `mlspec lint`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_core import CHURN, ROOT, run_cli

pytestmark = pytest.mark.engine

SCRIPT = ROOT / "tests" / "editors" / "nvim_diagnostics.lua"
LATEST_IMAGE = CHURN.read_text().replace("churn:1.4.2", "churn:latest")  # MS211, a rule
TYPO = CHURN.read_text().replace("    strategy: canary\n", "    strategy: canery\n")  # MS103, validation


def nvim_diagnostics(spec: Path, tmp_path: Path) -> list[dict]:
    nvim = shutil.which("nvim")
    assert nvim, "Neovim is installed by scripts/setup.sh (Debian package neovim)"
    out = tmp_path / "diagnostics.json"
    env = {
        **os.environ,
        "MLSPEC_LSP_CMD": json.dumps([sys.executable, "-m", "mlspec", "lsp"]),
        "MLSPEC_NVIM_OUT": str(out),
    }
    subprocess.run(
        [nvim, "--headless", "-u", "NONE", "-i", "NONE", "-n", str(spec), "-c", f"luafile {SCRIPT}"],
        cwd=tmp_path,
        env=env,
        check=True,
        timeout=90,
        capture_output=True,
    )
    rows = json.loads(out.read_text())
    assert isinstance(rows, list), rows
    return rows


@pytest.mark.parametrize("text", [LATEST_IMAGE, TYPO], ids=["rules", "validation"])
def test_neovim_reports_what_mlspec_lint_reports(tmp_path: Path, text: str) -> None:
    spec = tmp_path / "mlops.yaml"
    spec.write_text(text)
    lint = json.loads(run_cli("lint", str(spec), "--format", "json").stdout)
    expected = {
        (
            d["code"],
            d["location"]["line"] - 1,
            d["location"]["col"] - 1,
            d["location"]["end_col"] - 1,
            d["message"],
        )
        for d in lint
    }
    found = {
        (d["code"], d["lnum"], d["col"], d["end_col"], d["message"].split("\nhint: ")[0])
        for d in nvim_diagnostics(spec, tmp_path)
    }
    assert expected and found == expected
