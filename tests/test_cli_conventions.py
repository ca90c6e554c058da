"""ruff/dbt conventions of the CLI: diagnostics on stdout, colour on a terminal only (NO_COLOR, FORCE_COLOR),
carets under the whole token, ignores, GitHub annotations, SARIF with end positions and absolute help URIs,
`explain`, `lint .` discovery, `init --example`, and the install command for a missing backend."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_core import CHURN, MINIMAL, ROOT, run_cli

from mlspec.diagnostics import Diagnostic, Location, render_text

TYPO = MINIMAL + "serving:\n  replcas: {min: 1}\n"
UNPINNED = MINIMAL.replace("demo:1.0.0", "demo:latest")  # MS211 on line 4


@pytest.fixture()
def typo(tmp_path: Path) -> Path:
    path = tmp_path / "mlops.yaml"
    path.write_text(TYPO)
    return path


def _on_a_terminal(*args: str, env: dict[str, str]) -> str:
    """Run the CLI with stdout on a pseudo-terminal, as in an interactive shell."""
    primary, secondary = pty.openpty()
    code = "from mlspec.cli import main; main()"
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=secondary,
        stderr=subprocess.DEVNULL,
        env={**environ, **env},
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(primary)
    return b"".join(chunks).decode()


def test_colour_on_a_terminal_only_and_no_color_wins(typo: Path) -> None:
    tty = _on_a_terminal("lint", str(typo), env={"TERM": "xterm"})
    assert "\x1b[1;31merror\x1b[0m" in tty and "\x1b[1;31m^^^^^^^\x1b[0m" in tty
    assert "\x1b[" not in _on_a_terminal("lint", str(typo), env={"TERM": "xterm", "NO_COLOR": "1"})
    piped = run_cli("lint", str(typo), env={"NO_COLOR": "", "FORCE_COLOR": ""})
    assert "\x1b[" not in piped.stdout and "MS104" in piped.stdout
    forced = run_cli("lint", str(typo), env={"FORCE_COLOR": "1", "NO_COLOR": ""})
    assert "\x1b[1;31merror\x1b[0m" in forced.stdout
    assert "\x1b[" not in run_cli("lint", str(typo), env={"FORCE_COLOR": "1", "NO_COLOR": "1"}).stdout


def test_diagnostics_go_to_stdout_for_pipes(typo: Path) -> None:
    result = subprocess.run(
        f"{sys.executable} -c 'from mlspec.cli import main; main()' lint {typo} | grep -c MS104",
        shell=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.stdout.strip() == "1"


def test_carets_span_the_token_and_sources_are_split_once() -> None:
    text = 'a: 1\nimages: {runtime: "ghcr.io/x/y:latest"}\n'
    d = Diagnostic("MS211", "unpinned", Location("s.yaml", 2, 19))
    out = render_text([d] * 3, {"s.yaml": text}).splitlines()
    assert out[3] == "  |                   " + "^" * len('"ghcr.io/x/y:latest"')


def test_line_file_and_config_ignores(tmp_path: Path) -> None:
    spec = tmp_path / "specs" / "demo.yaml"
    spec.parent.mkdir()
    spec.write_text(UNPINNED)
    assert "MS211" in run_cli("lint", str(spec)).stdout
    lines = UNPINNED.splitlines()
    lines[3] += "  # mlspec: ignore[MS211]"
    spec.write_text("\n".join(lines) + "\n")
    assert run_cli("lint", str(spec)).returncode == 0
    lines[3] = lines[3].replace("ignore[MS211]", "ignore[MS209]")  # another code: still reported
    spec.write_text("\n".join(lines) + "\n")
    assert run_cli("lint", str(spec)).returncode == 1
    spec.write_text("# mlspec: ignore-file[MS211]\n" + UNPINNED)
    assert run_cli("lint", str(spec)).returncode == 0
    spec.write_text(UNPINNED)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.mlspec]\nignore = ["MS211"]\n')
    assert run_cli("lint", str(spec)).returncode == 0
    (tmp_path / ".mlspec.toml").write_text("ignore = []\n")  # nearer, and first in precedence
    assert run_cli("lint", str(spec)).returncode == 1
    assert run_cli("lint", str(spec), "--ignore", "MS211").returncode == 0
    (tmp_path / ".mlspec.toml").write_text('ignore = ["MS21"]\n')
    bad = run_cli("lint", str(spec))
    assert bad.returncode == 1 and "MS020 invalid mlspec configuration" in bad.stdout


def test_loading_errors_cannot_be_ignored(tmp_path: Path) -> None:
    spec = tmp_path / "mlops.yaml"
    spec.write_text("# mlspec: ignore-file[MS104]\n" + TYPO)
    assert run_cli("lint", str(spec)).returncode == 1


def test_github_annotations(typo: Path) -> None:
    result = run_cli("lint", str(typo), "--format", "github")
    assert result.returncode == 1
    assert result.stdout == (
        f"::error file={typo.as_posix()},line=13,col=3,endLine=13,endColumn=10,title=mlspec MS104::"
        "unknown key 'replcas' in serving (did you mean 'replicas'?)\n"
    )


def test_sarif_has_end_positions_and_absolute_help_uris(typo: Path) -> None:
    sarif = json.loads(run_cli("lint", str(typo), "--format", "sarif").stdout)
    run = sarif["runs"][0]
    (rule,) = run["tool"]["driver"]["rules"]
    assert rule["helpUri"] == "https://github.com/mlspec/mlspec/blob/main/docs/rules.md#ms104"
    (result,) = run["results"]
    assert result["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 13,
        "startColumn": 3,
        "endLine": 13,
        "endColumn": 10,
    }


def test_explain_prints_the_rule_docs() -> None:
    result = run_cli("explain", "MS211")
    assert result.returncode == 0
    assert result.stdout.startswith("MS211\n\n**image without a pinned tag or digest.**")
    assert "Bad:" in result.stdout and "Good:" in result.stdout
    assert result.stdout.rstrip().endswith("docs/rules.md#ms211")
    listing = run_cli("explain").stdout.splitlines()
    assert "MS104  unknown key" in listing and len(listing) >= 30
    unknown = run_cli("explain", "MS2111")
    assert unknown.returncode == 2 and "did you mean 'MS211'" in unknown.stderr


def test_lint_dot_discovers_specs(tmp_path: Path) -> None:
    (tmp_path / "mlops.yaml").write_text(TYPO)
    (tmp_path / "team" / "specs").mkdir(parents=True)
    (tmp_path / "team" / "specs" / "b.yaml").write_text(UNPINNED)
    for skipped in (".venv/specs", "node_modules/x/specs", "generated/specs"):
        (tmp_path / skipped).mkdir(parents=True)
        (tmp_path / skipped / "c.yaml").write_text("not: [a spec")
    (tmp_path / "config.yaml").write_text("not: [a spec")  # neither mlops.yaml nor under specs/
    result = run_cli("lint", ".", "--format", "json", cwd=tmp_path)
    found = {(d["location"]["path"], d["code"]) for d in json.loads(result.stdout)}
    assert found == {("mlops.yaml", "MS104"), ("team/specs/b.yaml", "MS211")}
    assert run_cli("lint", cwd=tmp_path).stdout.count("error MS") == 2  # no PATHS means "."
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli("lint", cwd=empty).returncode == 2


def test_missing_backend_names_the_install_command(tmp_path: Path) -> None:
    # a Python without the backend distributions: only the core is on the path
    env = {"PYTHONPATH": str(ROOT), "PYTHONNOUSERSITE": "1"}
    code = (
        "import importlib.metadata as m, sys; "
        "m.entry_points = lambda group=None: []; "
        "from mlspec.cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "compile", str(CHURN), "--target", "kubeflow", "--out", str(tmp_path)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert "MS302 no backend named 'kubeflow' is installed" in result.stdout
    assert (
        "pip install 'mlspec[kubeflow]'" in result.stdout
        and "pip install -e backends/kubeflow" in result.stdout
    )


@pytest.mark.parametrize("example", ["churn", "house-prices"])
def test_init_example_lints_clean_and_its_data_are_deterministic(tmp_path: Path, example: str) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        result = run_cli("init", "--example", example, cwd=tmp_path / folder)
        assert result.returncode == 0, result.stderr
        assert run_cli("lint", "mlops.yaml", cwd=tmp_path / folder).returncode == 0
    data = Path("data") / example / "train.csv"
    assert (tmp_path / "a" / data).read_bytes() == (tmp_path / "b" / data).read_bytes()
    assert 500 <= len((tmp_path / "a" / data).read_text().splitlines()) - 1 <= 1000  # tiny, yet enough rows
    assert run_cli("init", "--example", example, cwd=tmp_path / "a").returncode == 2  # refuses to overwrite
    unknown = run_cli("init", "--example", "chrun", cwd=tmp_path)
    assert unknown.returncode == 2 and "did you mean 'churn'" in unknown.stderr


def test_shell_completion_through_click() -> None:
    exe = Path(sys.executable).parent / "mlspec"
    env = {**os.environ, "_MLSPEC_COMPLETE": "bash_complete", "COMP_WORDS": "mlspec expl", "COMP_CWORD": "1"}
    result = subprocess.run([str(exe)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "plain,explain" in result.stdout.splitlines()
