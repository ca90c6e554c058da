"""The loop with Kubeflow owning it, run by kfp.local: the compiled monitor.yaml sees drift in the prediction
log and its trigger-retrain step starts a run of the uploaded training pipeline through kfp.Client; the
compiled pipeline.yaml (what KFP would run) registers a challenger that does not serve users; a second
monitoring run inside the cooldown starts nothing; the challenger's canary passes its analysis and is promoted.

The KFP API is a recorder on 127.0.0.1 (kfp_api.py): the limit of this proof is kfp.Client's REST contract.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from kfp_api import KfpApi, serve

from mlspec import contracts

pytestmark = [pytest.mark.engine, pytest.mark.clock, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
NOW = pd.Timestamp(os.environ.get("MLSPEC_NOW", "2025-07-01T12:00:00Z"))  # pinned by the root conftest
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "contract"]
CONTRACTS = ["month-to-month", "one-year", "two-year"]


def iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def loop_spec(project: Path) -> Path:
    from ruamel.yaml import YAML

    rt = YAML()
    data = rt.load((ROOT / "specs" / "churn.yaml").read_text())
    for key in ("infrastructure", "environments"):
        del data[key]
    data["training"].pop("tuning")
    data["training"]["hyperparameters"] = {"epochs": 2, "lr": 0.01, "batch_size": 256}
    data["training"]["resources"] = {"cpu": 1, "memory": "2Gi"}
    data["evaluation"]["gates"] = [{"metric": "auc", "min": 0.6}]
    data["evaluation"]["champion"] = {"compare_on": "auc", "min_improvement": 0.0}
    data["serving"].pop("cache")
    data["serving"]["prediction_log"] = str(project / "predictions")
    data["serving"]["rollout"] = {
        "strategy": "canary",
        "steps": [10, 100],
        "step_duration": "5m",
        "rollback_on": {"error_rate": 0.05, "latency_p99_ms": 250},
        "analysis": {"min_samples": 100},
    }
    data["monitoring"] = {
        "schedule": "*/30 * * * *",
        "min_samples": 500,
        "drift": {"method": "psi", "threshold": 0.2},
    }
    data["retraining"] = {
        "triggers": [{"on": "drift", "threshold": 0.25}],
        "cooldown": "24h",
        "min_samples": 500,
    }
    data["targets"] = ["kubeflow"]
    path = project / "specs" / "churn.yaml"
    path.parent.mkdir(parents=True)
    rt.dump(data, path)
    return path


def run_package(package: Path, run_root: Path, data: Path) -> Path:
    from kfp import components, local

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(run_root.parent / "kfp-root"))
    pipeline = components.load_component_from_file(str(package))
    before = set(run_root.iterdir()) if run_root.exists() else set()
    pipeline(
        run_root=str(run_root), data_train=str(data / "train.csv"), data_reference=str(data / "reference.csv")
    )
    (run_dir,) = set(run_root.iterdir()) - before  # <run_root>/<KFP job id>
    return run_dir


def result(run_dir: Path, step: str) -> dict:
    return json.loads((run_dir / "steps" / step / "result.json").read_text())


def log_drifted_traffic(base: Path) -> None:
    """A day of live traffic whose monthly charges drifted, logged by the server's PredictionLogger."""
    from mlspec.serving.metrics import Metrics
    from mlspec.serving.predlog import PredictionLogger

    live = pd.read_csv(ROOT / "data" / "churn" / "reference.csv").head(1500)
    x = np.column_stack(
        [
            live["tenure_months"],
            live["monthly_charges"] * 1.6,
            live["support_calls"],
            live["contract"].map(CONTRACTS.index),
        ]
    ).astype(np.float32)
    logger = PredictionLogger(str(base), 1.0, Metrics([0.1], 8), rotate_s=3600, clock=lambda: NOW.timestamp())
    for i in range(0, len(x), 50):
        logger.submit(
            f"live-{i}", "1", FEATURES, x[i : i + 50], [np.full((len(x[i : i + 50]), 2), 0.5, np.float32)]
        )
    logger.close()


def registry_state(tracking: str) -> dict:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)

    def alias(name: str) -> str | None:
        try:
            return str(client.get_model_version_by_alias("churn", name).version)
        except Exception:
            return None

    versions = sorted(client.search_model_versions("name='churn'"), key=lambda v: int(v.version))
    return {
        "versions": [str(v.version) for v in versions],
        "stages": {str(v.version): v.tags.get("mlspec.stage") for v in versions},
        "champion": alias("champion"),
        "challenger": alias("challenger"),
    }


def test_the_loop_closes_with_kfp_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlspec

    project = tmp_path / "project"
    shutil.copytree(ROOT / "data" / "churn", project / "data" / "churn")
    spec = loop_spec(project)
    monkeypatch.chdir(project)
    tracking = f"sqlite:///{project / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    monkeypatch.setenv("HOME", str(tmp_path))  # no kfp context file of this machine's user
    monkeypatch.delenv("MLSPEC_TRIGGER_STATE", raising=False)
    ir = mlspec.lower(mlspec.load(spec))
    assert (ir.retraining.owner, ir.retraining.sink, ir.monitoring.owner) == ("kubeflow",) * 3
    out = tmp_path / "generated"
    subprocess.run(
        [sys.executable, "-m", "mlspec", "compile", str(spec), "--target", "kubeflow", "--out", str(out)],
        check=True,
        cwd=project,
    )
    packages = out / "churn" / "kubeflow"
    assert (packages / "monitor.yaml").exists() and (packages / "monitor-recurring-run.json").exists()
    data = project / "data" / "churn"

    # Two days ago, the first champion (its run's cooldown is long over).
    monkeypatch.setenv("MLSPEC_NOW", iso(NOW - pd.Timedelta(days=2)))
    first = run_package(packages / "pipeline.yaml", project / "runs", data)
    monkeypatch.setenv("MLSPEC_NOW", iso(NOW))
    assert result(first, "promote")["promoted"] is True and registry_state(tracking)["champion"] == "1"
    log_drifted_traffic(project / "predictions")

    name = contracts.pipeline_name("churn", "training")
    with serve(KfpApi({name: ("pipeline-1", "version-7")})) as api:
        monkeypatch.setenv("KFP_HOST", api.url)
        # 1. The monitoring pipeline fires; its sink starts a run of the uploaded training pipeline.
        monitored = run_package(packages / "monitor.yaml", project / "monitor-runs", data)
        assert result(monitored, "monitor")["fired_triggers"] == ["drift-0"]
        sent = result(monitored, "trigger-retrain")
        assert (sent["triggered"], sent["sink"], sent["pipeline_id"], sent["version_id"]) == (
            True,
            "kubeflow",
            "pipeline-1",
            "version-7",
        )
        (run,) = api.runs
        assert run["pipeline_version_reference"] == {
            "pipeline_id": "pipeline-1",
            "pipeline_version_id": "version-7",
        }
        assert run["service_account"] == "churn-training" and run["experiment_id"] == "experiment-1"

        # KFP runs it: the new version is the challenger of a canary, the champion keeps serving.
        retrained = run_package(packages / "pipeline.yaml", project / "runs", data)
        assert result(retrained, "promote")["promoted"] is False
        state = registry_state(tracking)
        assert (state["champion"], state["challenger"], state["stages"]["2"]) == ("1", "2", "slo")

        # 2. The drift is still there, inside the cooldown: monitor.yaml's dsl.If skips trigger-retrain.
        again = run_package(packages / "monitor.yaml", project / "monitor-runs", data)
        assert result(again, "monitor")["suppressed_triggers"] == ["drift-0"]
        assert not (again / "steps" / "trigger-retrain").exists()
        assert len(api.runs) == 1

    # 3. The challenger takes canary traffic for its pauses; its error rate and latency pass: promoted.
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlspec",
            "serve",
            str(spec),
            "--port",
            str(port),
            "--log-flush-interval",
            "1",
            "--model",
            "models:/churn@challenger",
            "--variant",
            "challenger",
        ],
        env={**os.environ, "MLSPEC_NOW": iso(NOW + pd.Timedelta(minutes=1))},
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(port, server)
        calm = pd.read_csv(data / "reference.csv").iloc[1500:1650]
        rows = [
            {"tenure_months": int(r.tenure_months), "monthly_charges": float(r.monthly_charges)}
            | {"support_calls": int(r.support_calls), "contract": r.contract}
            for r in calm.itertuples(index=False)
        ]

        def one(i: int) -> None:
            resp = httpx.post(
                f"http://127.0.0.1:{port}/predict",
                json={"records": [rows[i]]},
                headers={"x-request-id": f"canary-{i}"},
                timeout=30,
            )
            assert resp.status_code == 200, resp.text

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(len(rows))))
        verdict = subprocess.run(
            [
                sys.executable,
                "-m",
                "mlspec",
                "analyze",
                str(spec),
                "--apply",
                "--format",
                "json",
                "--now",
                iso(NOW + pd.Timedelta(minutes=10)),
                "--metrics",
                f"challenger=http://127.0.0.1:{port}/metrics",
            ],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert verdict.returncode == 0, verdict.stderr
    verdict = json.loads(verdict.stdout)
    assert verdict["status"] == "pass", verdict
    assert {c["name"]: c["value"] for c in verdict["checks"]}["challenger_requests"] == 150
    state = registry_state(tracking)
    assert (state["champion"], state["stages"]["1"], state["stages"]["2"]) == ("2", "retired", "champion")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(port: int, proc: subprocess.Popen) -> None:
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the server exited with {proc.returncode}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError("the challenger's server is not ready")


def test_the_kubeflow_sink_without_the_uploaded_pipeline_says_so_and_releases_the_cooldown(
    churn_ir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlspec.runtime import triggers

    monkeypatch.setenv("HOME", str(tmp_path))
    report = {"rows": 5000, "drift": {"threshold": 0.2, "features": {"a": {"score": 0.9, "drifted": True}}}}
    state = str(tmp_path / "state.json")
    decision = triggers.decide(churn_ir, report, now=NOW, state_path=state)
    with serve(KfpApi({})) as api:
        monkeypatch.setenv("KFP_HOST", api.url)
        with pytest.raises(triggers.SinkError, match="no pipeline named 'churn-training' is uploaded"):
            triggers.send(churn_ir, decision, sink="kubeflow", now=NOW)
    assert "last_fired" not in triggers.read_state(state)
