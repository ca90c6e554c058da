"""The MLflow registry: a real `mlflow server` (SQLite backend) driven through MLFLOW_TRACKING_URI, a registry
that is down, and promote/rollback by hand with who/why recorded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from mlspec.ir.model import IR_VERSION

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
        assert run.data.tags["mlspec.spec_sha256"] and run.data.tags["mlspec.ir_version"] == IR_VERSION
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
    history = champion_history(client)
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


def champion_history(client) -> list[dict]:
    """The champion moves as the registry stores them: one registered-model tag per move, in key order."""
    tags = client.get_registered_model("churn").tags
    return [json.loads(tags[k]) for k in sorted(tags) if k.startswith("mlspec.champion_history.")]


@pytest.fixture(scope="module")
def seeded_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real MLflow SQLite registry: model 'churn' with versions 1-6, version 1 the champion (built once)."""
    from mlspec import api
    from mlspec.runtime import registry

    path = tmp_path_factory.mktemp("seeded") / "mlflow.db"
    uri = f"sqlite:///{path}"
    _seed_versions(uri, 6)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_TRACKING_URI", uri)
        registry.move_champion(api.load_ir(SPEC), "1", action="promote", by="alice")
    return path


@pytest.fixture()
def registry_uri(seeded_registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh copy of the seeded registry (copying the SQLite file skips MLflow's slow schema setup)."""
    shutil.copy(seeded_registry, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


SPEC = str(ROOT / "specs" / "churn.yaml")


def cli_group():
    from mlspec.cli import cli

    return cli


def champion(uri: str) -> str | None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        return str(client.get_model_version_by_alias("churn", "champion").version)
    except Exception:
        return None


def test_a_reason_over_the_limit_is_refused_before_the_alias_moves(registry_uri: str) -> None:
    from mlflow import MlflowClient

    from mlspec.runtime.registry import REASON_MAX_CHARS

    result = CliRunner().invoke(cli_group(), ["promote", SPEC, "--version", "2", "--reason", "x" * 200_000])
    assert (
        result.exit_code == 1
        and f"--reason is 200000 characters; the limit is {REASON_MAX_CHARS}" in result.output
    )
    assert champion(registry_uri) == "1"
    client = MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)
    assert [h["version"] for h in champion_history(client)] == ["1"]
    assert "mlspec.champion_by" not in client.get_model_version("churn", "2").tags


@pytest.mark.parametrize("fails", ["set_registered_model_tag", "set_model_version_tag"])
def test_a_move_that_cannot_be_recorded_is_moved_back(
    registry_uri: str, monkeypatch: pytest.MonkeyPatch, fails: str
) -> None:
    """Fault injection on the real registry: the record fails after the alias moved."""
    from mlflow import MlflowClient

    def refuse(self, *args, **kwargs):
        raise RuntimeError("registry went away")

    monkeypatch.setattr(MlflowClient, fails, refuse)
    result = CliRunner().invoke(cli_group(), ["promote", SPEC, "--version", "3", "--reason", "hotfix"])
    monkeypatch.undo()
    assert result.exit_code == 1 and "registry went away" in result.output
    assert "'champion' was moved back to 1" in result.output and "Traceback" not in result.output
    assert champion(registry_uri) == "1"
    client = MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)
    assert [h["version"] for h in champion_history(client)] == ["1"]  # no entry for the move that was undone


def test_a_first_champion_that_cannot_be_recorded_is_removed(
    registry_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)
    client.delete_registered_model_alias("churn", "champion")
    monkeypatch.setattr(MlflowClient, "set_registered_model_tag", lambda self, *a, **k: 1 / 0)
    result = CliRunner().invoke(cli_group(), ["promote", SPEC, "--version", "2"])
    monkeypatch.undo()
    assert result.exit_code == 1 and "moved back to (none)" in result.output
    assert champion(registry_uri) is None


def test_a_missing_registry_is_an_error_naming_it_and_is_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absent = tmp_path / "nowhere" / "mlflow.db"
    uri = f"sqlite:///{absent}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for args in (["promote", SPEC, "--version", "1"], ["rollback", SPEC]):
        result = CliRunner().invoke(cli_group(), args)
        assert result.exit_code == 1 and f"the MLflow registry {uri} does not exist" in result.output
        assert "no version" not in result.output and "Traceback" not in result.output
    assert not absent.parent.exists()


_PROMOTER = """
import sys, time
from pathlib import Path
from mlspec import api
from mlspec.runtime import registry
ir = api.load_ir(sys.argv[1])
registry.client(ir).get_registered_model("churn")  # connected, before the start line
Path(sys.argv[3]).touch()
while not Path(sys.argv[4]).exists():
    time.sleep(0.005)
registry.move_champion(ir, sys.argv[2], action="promote", by=f"promoter-{sys.argv[2]}", reason="race")
"""


@pytest.mark.engine
def test_concurrent_promotes_keep_every_history_entry(registry_uri: str, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    go = tmp_path / "go"
    procs = []
    for version in ("2", "3", "4", "5"):
        ready = tmp_path / f"ready-{version}"
        procs.append(
            (
                ready,
                subprocess.Popen(
                    [sys.executable, "-c", _PROMOTER, SPEC, version, str(ready), str(go)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                ),
            )
        )
    try:
        deadline = time.monotonic() + 120
        while not all(ready.exists() for ready, _ in procs) and time.monotonic() < deadline:
            assert all(p.poll() is None for _, p in procs), [p.communicate()[0] for _, p in procs]
            time.sleep(0.05)
        go.touch()  # all four move the champion at once
        outputs = [p.communicate(timeout=120)[0] for _, p in procs]
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for _, p in procs), outputs
    client = MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)
    history = champion_history(client)
    assert sorted(h["version"] for h in history) == ["1", "2", "3", "4", "5"]  # none lost
    assert champion(registry_uri) in {"2", "3", "4", "5"}


def test_history_written_by_an_earlier_release_is_still_read(registry_uri: str) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)
    old = [{"version": "2", "previous": None, "action": "promote", "by": "old", "reason": "", "at": 1}]
    client.set_registered_model_tag("churn", "mlspec.champion_history", json.dumps(old))
    from mlspec import api
    from mlspec.runtime import registry

    assert [h["version"] for h in registry.history(api.load_ir(SPEC))] == ["2", "1"]
