"""The pre-commit hooks, run by pre-commit itself (`pre-commit try-repo` against this checkout) in a scratch
project with a root mlops.yaml: mlspec-lint in the environment pre-commit builds, mlspec-check in the
project's own (see .pre-commit-hooks.yaml for why)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_core import ROOT, run_cli

pytestmark = [pytest.mark.engine, pytest.mark.slow]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def _try_repo(repo: Path, hook: str, home: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(home),
        # language: system finds `mlspec` where the project installed it
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), hook, "--all-files", "--verbose"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_hooks_pass_in_a_project_with_a_root_mlops_yaml(tmp_path: Path) -> None:
    repo = tmp_path / "project"
    repo.mkdir()
    _git(repo, "init", "-q")
    assert run_cli("init", "--example", "churn", cwd=repo).returncode == 0
    assert run_cli("compile", cwd=repo).returncode == 0  # discovers the root mlops.yaml
    assert (repo / "generated" / "churn" / "manifest.json").is_file()
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "spec and generated output")
    home = tmp_path / "pre-commit-home"

    lint = _try_repo(repo, "mlspec-lint", home)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "mlspec lint" in lint.stdout and "Passed" in lint.stdout
    check = _try_repo(repo, "mlspec-check", home)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "generated output is current" in check.stdout

    spec = repo / "mlops.yaml"
    spec.write_text(spec.read_text().replace("replicas: {min: 1, max: 3}", "replcas: {min: 1, max: 3}"))
    failed = _try_repo(repo, "mlspec-lint", home)
    assert failed.returncode == 1 and "MS104 unknown key 'replcas'" in failed.stdout
    spec.write_text(spec.read_text().replace("replcas", "replicas").replace("max: 3}", "max: 4}"))
    stale = _try_repo(repo, "mlspec-check", home)
    assert stale.returncode == 1 and "stale" in stale.stdout
