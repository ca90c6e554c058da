"""End-to-end proof: the compiled pipeline.yaml, loaded by kfp and executed by kfp.local's SubprocessRunner,
validates, tunes, trains, evaluates, gates, exports and registers into MLflow; an impossible gate stops the run
before export/registration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CHURN = ROOT / "specs" / "churn.yaml"
DATA = ROOT / "data" / "churn"


def compile_spec(tmp: Path, name: str, *replacements: tuple[str, str]) -> Path:
    """A copy of the churn spec with the given text replacements, compiled by the mlspec CLI."""
    text = CHURN.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    spec = tmp / f"{name}.yaml"
    spec.write_text(text, encoding="utf-8")
    out = tmp / f"out-{name}"
    subprocess.run(
        [sys.executable, "-m", "mlspec", "compile", str(spec), "--target", "kubeflow", "--out", str(out)],
        check=True,
        cwd=tmp,
    )
    return out / "churn" / "kubeflow" / "pipeline.yaml"


def run_pipeline(package: Path, run_root: Path) -> Path:
    from kfp import components, local

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(run_root.parent / "kfp-root"))
    pipeline = components.load_component_from_file(str(package))
    pipeline(
        run_root=str(run_root),
        data_train=str(DATA / "train.csv"),
        data_reference=str(DATA / "reference.csv"),
        hparam_epochs="3",  # a pipeline parameter, forwarded to tune-trial and train as --hparam epochs=3
    )
    (run_dir,) = run_root.iterdir()  # <run_root>/<KFP job id>
    return run_dir


def result(run_dir: Path, step: str) -> dict:
    return json.loads((run_dir / "steps" / step / "result.json").read_text())


@pytest.mark.engine
def test_kfp_local_runs_the_compiled_pipeline_and_gates_registration(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.chdir(tmp_path)
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    fewer_trials = ("trials: 4", "trials: 2")

    # 1. The example's gates: every step runs, and the registry holds the new version.
    run_dir = run_pipeline(compile_spec(tmp_path, "churn", fewer_trials), tmp_path / "runs-1")
    assert result(run_dir, "validate-data")["status"] == "succeeded"
    assert sorted(p.name for p in (run_dir / "steps" / "tune-trial").iterdir() if p.is_dir()) == ["0", "1"]
    evaluation = result(run_dir, "evaluate")
    assert evaluation["gates_passed"] is True
    for step in ("train", "export", "register", "promote"):
        assert result(run_dir, step)["status"] == "succeeded", step
    client = mlflow.MlflowClient(tracking_uri=tracking, registry_uri=tracking)  # not the process-wide one
    versions = client.search_model_versions("name='churn'")
    assert [str(v.version) for v in versions] == ["1"]
    assert str(result(run_dir, "register")["model_version"]) == "1"

    # 2. An impossible gate: evaluation runs, the dsl.If skips export, register and promote.
    impossible = ("{metric: auc, min: 0.75}", "{metric: auc, min: 0.9999}")
    run_dir = run_pipeline(
        compile_spec(tmp_path, "impossible", fewer_trials, impossible), tmp_path / "runs-2"
    )
    evaluation = result(run_dir, "evaluate")
    assert evaluation["status"] == "succeeded"
    assert evaluation["gates_passed"] is False
    for step in ("export", "register", "promote"):
        assert not (run_dir / "steps" / step).exists(), step
    assert [str(v.version) for v in client.search_model_versions("name='churn'")] == ["1"]


@pytest.mark.engine
def test_kfp_local_runs_the_shop_preparation_steps(tmp_path, monkeypatch):
    """The user steps are lightweight components too: kfp.local runs dedupe (a command) and enrich (a transform)
    under their data contract, and validate-data checks and splits the prepared data."""
    import shutil

    from kfp import components, local

    for folder in ("specs", "examples"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)  # the steps import the example's step module from the project root
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    out = tmp_path / "out"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mlspec",
            "compile",
            "specs/shop.yaml",
            "--target",
            "kubeflow",
            "--out",
            str(out),
        ],
        check=True,
    )
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp-root"))
    pipeline = components.load_component_from_file(str(out / "shop" / "kubeflow" / "pipeline.yaml"))
    run_root = tmp_path / "runs"
    shop = ROOT / "data" / "shop"
    pipeline(
        run_root=str(run_root),
        data_train=str(shop / "train.csv"),
        data_reference=str(shop / "reference.csv"),
        hparam_epochs="3",
    )
    (run_dir,) = run_root.iterdir()
    deduped = result(run_dir, "dedupe")
    assert deduped["inputs"]["train"]["rows"] == 4200 and deduped["outputs"]["train"]["rows"] == 4000
    assert "spend_per_order" in result(run_dir, "enrich")["outputs"]["train"]["columns"]
    validated = result(run_dir, "validate-data")
    assert validated["data"]["train"]["prepared_by"] == "enrich" and validated["train_rows"] == 3200
    for step in ("train", "evaluate", "export", "register", "promote"):
        assert result(run_dir, step)["status"] == "succeeded", step
