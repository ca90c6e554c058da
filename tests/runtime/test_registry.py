"""The MLflow registry: a real `mlflow server` (SQLite backend) driven through MLFLOW_TRACKING_URI, a registry
that is down, and promote/rollback by hand with who/why recorded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
MLSPEC = [sys.executable, "-c", "from mlspec.cli import main; main()"]


def _conftest():
    import importlib.util

    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fast_project(root: Path) -> Path:
    shutil.copytree(ROOT / "data" / "churn", root / "data" / "churn")
    spec = YAML().load((ROOT / "specs" / "churn.yaml").read_text())
    spec["training"].pop("tuning")
    spec["training"]["hyperparameters"]["epochs"] = 3
    (root / "specs").mkdir()
    YAML().dump(spec, root / "specs" / "churn.yaml")
    return root


def mlspec(project: Path, tracking_uri: str | None, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    return subprocess.run([*MLSPEC, *args], cwd=project, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.engine
def test_pipeline_against_a_real_mlflow_server(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    helpers = _conftest()
    port = helpers.free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        helpers.wait_for_port(port, timeout=180, proc=server)
        uri = f"http://127.0.0.1:{port}"
        project = fast_project(tmp_path / "project")
        proc = mlspec(project, uri, "run", "specs/churn.yaml")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        champion = client.get_model_version_by_alias("churn", "champion")
        assert (
            str(champion.version) == "1" and champion.tags["mlspec.data.train.uri"] == "data/churn/train.csv"
        )
        run = client.get_run(champion.run_id)
        assert run.data.metrics["test_auc"] >= 0.75 and "lr" in run.data.params
        assert run.data.tags["mlspec.spec_sha256"] and run.data.tags["mlspec.ir_version"] == "1"
        files = {f.path for f in client.list_artifacts(champion.run_id, "model")}
        assert {"model/model.onnx", "model/reference_profile.json", "model/preprocessing.json"} <= files
        assert (tmp_path / "server-artifacts").exists()  # artifacts travelled through the server
        assert not (project / ".mlspec" / "mlflow.db").exists()  # the local default was not used
    finally:
        helpers.stop(server)


def test_registry_down_fails_the_step_clearly_and_touches_nothing(tmp_path: Path) -> None:
    project = fast_project(tmp_path / "project")
    dead = f"http://127.0.0.1:{_conftest().free_port()}"
    proc = mlspec(project, dead, "run", "specs/churn.yaml")
    assert proc.returncode == 1
    assert "train: FAILED" in proc.stdout and f"the MLflow registry at {dead} is unreachable" in proc.stdout
    assert "nothing was registered" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
    assert not (project / ".mlspec" / "mlflow.db").exists()
    run_dir = next((project / ".mlspec" / "runs").iterdir())
    assert not (run_dir / "model" / "model.pt").exists()  # it failed before training, not after


def _seed_versions(uri: str, n: int) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("churn")
    for _ in range(n):
        client.create_model_version("churn", source="file:///nowhere/model")


def test_promote_and_rollback_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient

    from mlspec.cli import cli

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    _seed_versions(uri, 3)
    spec = str(ROOT / "specs" / "churn.yaml")
    runner = CliRunner()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def champion() -> str:
        return str(client.get_model_version_by_alias("churn", "champion").version)

    for version in ("1", "3"):
        result = runner.invoke(
            cli, ["promote", spec, "--version", version, "--by", "alice", "--reason", "release"]
        )
        assert result.exit_code == 0, result.output
        assert champion() == version
    assert "champion 1 -> 3 by alice" in result.output
    result = runner.invoke(cli, ["rollback", spec, "--by", "bob", "--reason", "latency regression"])
    assert result.exit_code == 0, result.output
    assert champion() == "1"
    tags = client.get_model_version("churn", "1").tags
    assert tags["mlspec.champion_by"] == "bob" and tags["mlspec.champion_reason"] == "latency regression"
    assert tags["mlspec.champion_action"] == "rollback" and tags["mlspec.previous_champion"] == "3"
    history = json.loads(client.get_registered_model("churn").tags["mlspec.champion_history"])
    assert [(h["version"], h["action"], h["by"]) for h in history] == [
        ("1", "promote", "alice"),
        ("3", "promote", "alice"),
        ("1", "rollback", "bob"),
    ]
    # Version 1 was the first champion: there is nothing before it to return to.
    result = runner.invoke(cli, ["rollback", spec, "--reason", "again"])
    assert result.exit_code == 1 and "has no previous champion" in result.output
    assert champion() == "1"
    result = runner.invoke(cli, ["promote", spec, "--version", "9"])
    assert result.exit_code == 1 and "has no version 9" in result.output
    assert champion() == "1"
