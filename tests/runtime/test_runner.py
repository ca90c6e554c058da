"""`mlspec run` end to end in a temp copy of the project: train, gate, export, register, promote; gates that
fail stop before registration; a failed step stops the run and registers nothing; runs resume with --from."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from mlspec.ir.model import IR_VERSION

ROOT = Path(__file__).resolve().parents[2]
MLSPEC = [sys.executable, "-c", "from mlspec.cli import main; main()"]

pytestmark = pytest.mark.engine  # runs the whole pipeline with a real MLflow registry (SQLite)


def mlspec(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([*MLSPEC, *args], cwd=project, env=env, capture_output=True, text=True, timeout=600)


def variant(project: Path, name: str, edit) -> str:
    spec = YAML().load((project / "specs" / "churn.yaml").read_text())
    edit(spec)
    YAML().dump(spec, project / "specs" / f"{name}.yaml")
    return f"specs/{name}.yaml"


def registry(project: Path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{project / '.mlspec' / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def versions(project: Path) -> list[str]:
    return sorted(str(v.version) for v in registry(project).search_model_versions("name='churn'"))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(ROOT / "specs", root / "specs")
    shutil.copytree(ROOT / "data", root / "data")
    proc = mlspec(root, "run", "specs/churn.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (root / "first-run.txt").write_text(proc.stdout)
    return root


def test_churn_trains_gates_exports_registers_and_promotes(project: Path) -> None:
    out = (project / "first-run.txt").read_text()
    for step in (
        "validate-data",
        "tune-trial",
        "tune-select",
        "train",
        "evaluate",
        "export",
        "register",
        "promote",
    ):
        assert f"{step}: ok" in out
    assert "step" in out and "status" in out and "champion is models:/churn@champion (version 1)" in out
    c = registry(project)
    assert str(c.get_model_version_by_alias("churn", "champion").version) == "1"
    assert str(c.get_model_version_by_alias("churn", "challenger").version) == "1"
    tags = c.get_model_version("churn", "1").tags
    spec_sha = __import__("mlspec.loader").loader.load_file(project / "specs" / "churn.yaml").content_sha256
    train_sha = (
        __import__("hashlib").sha256((project / "data" / "churn" / "train.csv").read_bytes()).hexdigest()
    )
    assert tags["mlspec.spec_sha256"] == spec_sha and tags["mlspec.ir_version"] == IR_VERSION
    assert (
        tags["mlspec.data.train.uri"] == "data/churn/train.csv"
        and tags["mlspec.data.train.sha256"] == train_sha
    )
    assert (
        tags["mlspec.image"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:1.4.2"
        and tags["mlspec.git_commit"]
    )
    run_dir = next((project / ".mlspec" / "runs").iterdir())
    bundle = run_dir / "export"
    for name in ("model.onnx", "preprocessing.json", "reference_profile.json", "model.pt", "metrics.json"):
        assert (bundle / name).exists(), name
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(bundle / "model.onnx")).metadata_props}
    assert json.loads(meta["mlspec.features"]) == [
        "tenure_months",
        "monthly_charges",
        "support_calls",
        "contract",
    ]
    evaluated = json.loads((run_dir / "steps" / "evaluate" / "result.json").read_text())
    assert evaluated["gates_passed"] and evaluated["metrics"]["auc"] >= 0.75
    assert len(evaluated["metrics"]["confusion_matrix"]) == 2
    trials = [
        json.loads((run_dir / "steps" / "tune-trial" / str(i) / "result.json").read_text()) for i in range(4)
    ]
    best = json.loads((run_dir / "steps" / "tune-select" / "result.json").read_text())
    assert best["best_value"] == max(t["value"] for t in trials)
    registered = registry(project).search_registered_models()[0]
    moves = sorted(k for k in registered.tags if k.startswith("mlspec.champion_history."))  # one tag per move
    last = json.loads(registered.tags[moves[-1]])
    assert last["version"] == "1" and last["by"] == "mlspec pipeline"


def test_resume_from_evaluate_compares_with_the_champion(project: Path) -> None:
    proc = mlspec(project, "run", "specs/churn.yaml", "--from", "evaluate", "--until", "evaluate")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[1/1] evaluate" in proc.stdout
    run_dir = next((project / ".mlspec" / "runs").iterdir())
    evaluated = json.loads((run_dir / "steps" / "evaluate" / "result.json").read_text())
    # The same model scored against itself (the champion, from its registered ONNX file) cannot improve.
    assert evaluated["champion_version"] == "1" and evaluated["beats_champion"] is False
    assert evaluated["champion_metrics"]["auc"] == pytest.approx(evaluated["metrics"]["auc"], abs=1e-6)


def test_impossible_gate_stops_before_registration(project: Path) -> None:
    def strict(spec):
        spec["training"].pop("tuning")
        spec["training"]["hyperparameters"]["epochs"] = 2
        spec["evaluation"]["gates"] = [{"metric": "auc", "min": 0.999}]

    proc = mlspec(project, "run", variant(project, "churn-strict", strict))
    assert proc.returncode == 0, proc.stdout + proc.stderr  # gates are conditions, not failures
    for step in ("export", "register", "promote"):
        assert f"{step}: skipped, condition 'gates-passed' is false" in proc.stdout
    assert "misses >= 0.999" in proc.stdout
    assert versions(project) == ["1"]
    assert str(registry(project).get_model_version_by_alias("churn", "champion").version) == "1"


def test_failed_step_stops_the_run_and_registers_nothing(project: Path) -> None:
    def missing(spec):
        spec["data"]["sources"]["train"]["uri"] = "data/churn/missing.csv"

    proc = mlspec(project, "run", variant(project, "churn-missing", missing))
    assert proc.returncode == 1
    assert (
        "validate-data: FAILED" in proc.stdout
        and "missing.csv" in proc.stdout
        and "does not exist" in proc.stdout
    )
    assert "nothing was registered" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
    assert "train" not in proc.stdout.split("FAILED", 1)[1].split("step ", 1)[0]  # nothing ran after it
    assert versions(project) == ["1"]


def test_unknown_from_step_is_a_usage_error(project: Path) -> None:
    proc = mlspec(project, "run", "specs/churn.yaml", "--from", "deploy")
    assert proc.returncode == 2 and "no step 'deploy'" in proc.stderr
