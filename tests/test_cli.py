"""The CLI: every command, its help example, output formats and exit codes (0 clean, 1 errors, 2 usage)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_core import CHURN, LINT, MINIMAL, run_cli

import mlspec

COMMANDS = ["init", "lint", "schema", "ir", "compile", "graph", "targets"]


@pytest.fixture()
def bad_spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(MINIMAL + "serving:\n  replcas: {min: 1}\n")
    return path


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and mlspec.__version__ in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_example(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0
    assert "Example:" in result.stdout and f"mlspec {command}" in result.stdout


def test_top_level_help_lists_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0 and all(c in result.stdout for c in COMMANDS)


def test_lint_clean_exit_0() -> None:
    result = run_cli("lint", str(CHURN))
    assert result.returncode == 0 and "clean" in result.stdout


def test_lint_text_format(bad_spec: Path) -> None:
    result = run_cli("lint", str(bad_spec))
    assert result.returncode == 1
    lines = result.stdout.splitlines()  # on stdout, so `mlspec lint x | grep MS` works
    assert lines[0] == f"{bad_spec.as_posix()}:13:3: error MS104 unknown key 'replcas' in serving"
    assert lines[1].strip() == "|"
    assert lines[2] == "13 |   replcas: {min: 1}"
    assert lines[3] == "   |   ^^^^^^^"  # the carets span the token
    assert lines[4] == "  = hint: did you mean 'replicas'?"


def test_lint_json_format(bad_spec: Path) -> None:
    result = run_cli("lint", str(bad_spec), "--format", "json")
    assert result.returncode == 1
    (d,) = json.loads(result.stdout)
    assert d["code"] == "MS104" and d["location"]["line"] == 13 and d["severity"] == "error"
    assert d["hint"] == "did you mean 'replicas'?" and d["key_path"] == ["serving", "replcas"]


def test_lint_sarif_format(bad_spec: Path) -> None:
    result = run_cli("lint", str(bad_spec), str(LINT / "ms211-image-latest.yaml"), "--format", "sarif")
    assert result.returncode == 1
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    assert run["tool"]["driver"]["name"] == "mlspec"
    rules = {r["id"] for r in run["tool"]["driver"]["rules"]}
    results = run["results"]
    assert {r["ruleId"] for r in results} == {"MS104", "MS211"} <= rules | {"MS104", "MS211"}
    for r in results:
        assert r["level"] in ("error", "warning", "note") and r["message"]["text"]
        region = r["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1


def test_sarif_clean_has_empty_results() -> None:
    result = run_cli("lint", str(CHURN), "--format", "sarif")
    assert result.returncode == 0 and json.loads(result.stdout)["runs"][0]["results"] == []


@pytest.mark.parametrize(
    "args",
    [
        ["lint"],
        ["lint", "x.yaml", "--format", "xml"],
        ["nonsense"],
        ["compile", "--bogus"],
        ["ir"],
        ["init", "Bad_Name"],
    ],
)
def test_usage_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr


def test_missing_file_exit_1(tmp_path: Path) -> None:
    result = run_cli("lint", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1 and "MS001" in result.stdout


def test_init_lints_clean(tmp_path: Path) -> None:
    result = run_cli("init", "fraud-detect", cwd=tmp_path)
    assert result.returncode == 0
    spec = tmp_path / "mlops.yaml"
    assert spec.read_text().startswith("# yaml-language-server: $schema=")
    assert run_cli("lint", str(spec), cwd=tmp_path).returncode == 0
    assert run_cli("init", "fraud-detect", cwd=tmp_path).returncode == 2  # refuses to overwrite
    assert run_cli("init", "fraud-detect", "--force", cwd=tmp_path).returncode == 0


def test_ir_command() -> None:
    result = run_cli("ir", str(CHURN), "--env", "staging")
    assert result.returncode == 0
    assert json.loads(result.stdout)["serving"]["replicas_max"] == 3


def test_ir_command_errors(bad_spec: Path) -> None:
    result = run_cli("ir", str(bad_spec), "--format", "json")
    assert result.returncode == 1 and json.loads(result.stdout)[0]["code"] == "MS104"
    unknown_env = run_cli("ir", str(CHURN), "--env", "qa")
    assert unknown_env.returncode == 1 and "MS110" in unknown_env.stderr


def test_lint_env_overlay() -> None:
    assert run_cli("lint", str(CHURN), "--env", "staging").returncode == 0
    result = run_cli("lint", str(CHURN), "--env", "qa")
    assert result.returncode == 1 and "MS110" in result.stdout


def test_graph_mermaid() -> None:
    result = run_cli("graph", str(CHURN))
    assert result.returncode == 0
    out = result.stdout
    assert out.startswith("flowchart TD\n")
    assert "training__evaluate -->|gates-passed| training__export" in out
    assert "trigger_drift_1" in out and "-.-> training__validate_data" in out
    assert "--> serving" in out


def test_compile_target_env_out(tmp_path: Path) -> None:
    result = run_cli("compile", str(CHURN), "--target", "ir", "--env", "staging", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "churn/staging/ir/ir.json").is_file()
    check = run_cli(
        "compile", str(CHURN), "--target", "ir", "--env", "staging", "--out", str(tmp_path), "--check"
    )
    assert check.returncode == 0


def test_compile_lint_errors_block_output(tmp_path: Path) -> None:
    spec = LINT / "ms207-canary-steps-not-increasing.yaml"
    result = run_cli("compile", str(spec), "--target", "ir", "--out", str(tmp_path))
    assert result.returncode == 1 and "MS207" in result.stdout
    assert not any(tmp_path.iterdir())


def test_compile_unknown_target(tmp_path: Path) -> None:
    result = run_cli("compile", str(CHURN), "--target", "kubeflo", "--out", str(tmp_path))
    assert result.returncode == 1 and "MS302" in result.stdout and "kubeflow" in result.stdout


def test_pre_commit_hooks_run_the_cli() -> None:
    import shlex

    from helpers_core import ROOT
    from ruamel.yaml import YAML

    hooks = {
        h["id"]: h for h in YAML(typ="safe", pure=True).load((ROOT / ".pre-commit-hooks.yaml").read_text())
    }
    assert set(hooks) == {"mlspec-lint", "mlspec-check"}
    lint = shlex.split(hooks["mlspec-lint"]["entry"])
    assert lint[0] == "mlspec" and run_cli(*lint[1:], str(CHURN)).returncode == 0
    check = shlex.split(hooks["mlspec-check"]["entry"])
    assert check[1:] == ["compile", "--check"] and hooks["mlspec-check"]["pass_filenames"] is False
