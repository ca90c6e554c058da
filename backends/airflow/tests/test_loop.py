"""The loop, closed by a real Airflow 3 (api-server, scheduler with LocalExecutor, dag-processor, PostgreSQL)
running the generated local-mode DAGs, with a real model server writing the prediction log:

  drifted live traffic (and load-test traffic, which monitoring must skip) -> the monitoring DAG, deployed,
  runs its latest schedule tick at once (catchup off) and fires -> its asset event makes the scheduler start
  the training DAG -> a new challenger in a shadow rollout, which does not serve users -> a second drift inside
  the cooldown starts nothing; every transition is in `mlspec history`.

What the rollout's analysis then decides (the shadow promoted, a slow shadow rejected with the champion kept) is
proved on a real registry and real prediction logs by tests/runtime/test_analysis.py, and through `mlspec analyze`
after a compiled pipeline by backends/kubeflow/tests/test_kfp_loop.py: here it would add two training runs and
four servers to a test that must stay short.

The clock is pinned (MLSPEC_NOW) for every process.
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
import pandas as pd
import pytest
from airflow_cluster import Airflow, Postgres, free_port, wait_for
from airflow_support import ROOT, emit, write

import mlspec

pytestmark = [pytest.mark.engine, pytest.mark.clock, pytest.mark.slow]

NOW = pd.Timestamp(os.environ.get("MLSPEC_NOW", "2025-07-01T12:00:00Z"))  # pinned by the root conftest


def iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def loop_spec(project: Path) -> Path:
    """churn, served with a shadow rollout, monitored for drift, with Airflow (local mode) owning the loop."""
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
    data["registry"]["mlflow"]["tracking_uri"] = f"sqlite:///{project / 'mlflow.db'}"
    data["serving"].pop("cache")
    data["serving"]["prediction_log"] = str(project / "predictions")
    data["serving"]["rollout"] = {
        "strategy": "shadow",
        "step_duration": "10m",
        "rollback_on": {"error_rate": 0.05, "latency_p99_ms": 250},
        "analysis": {"min_samples": 200},
    }
    data["monitoring"] = {
        "schedule": "0 0 1 1 *",  # the test starts each monitoring run itself
        "min_samples": 500,
        "drift": {"method": "psi", "threshold": 0.2},
    }
    data["retraining"] = {
        "triggers": [{"on": "drift", "threshold": 0.25}],
        "cooldown": "24h",
        "min_samples": 500,
    }
    data["orchestration"] = {"airflow_mode": "local"}
    data["targets"] = ["airflow"]
    path = project / "specs" / "churn.yaml"
    path.parent.mkdir(parents=True)
    rt.dump(data, path)
    return path


def mlspec_cli(
    args: list[str], env: dict[str, str], cwd: Path, timeout: int = 600
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "mlspec", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"mlspec {' '.join(args)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


class Server:
    """`mlspec serve` on 127.0.0.1 with its clock pinned at `now`, stopped by its PID."""

    def __init__(self, spec: Path, env: dict[str, str], now: pd.Timestamp, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = spec.parent.parent / f"server-{self.port}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mlspec",
                    "serve",
                    str(spec),
                    "--port",
                    str(self.port),
                    "--log-flush-interval",
                    "1",
                    "--reload-interval",
                    "3600",
                    *args,
                ],
                env={**env, "MLSPEC_NOW": iso(now)},
                cwd=spec.parent.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

        def ready() -> bool:
            try:
                return httpx.get(f"{self.url}/v2/health/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 120, f"the server on {self.port} ({self.log.read_text()[-2000:]})", [self.proc])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # graceful: the prediction log's open files are closed and published
            self.proc.wait(timeout=60)


def records(frame: pd.DataFrame) -> list[dict]:
    return [
        {
            "tenure_months": int(r.tenure_months),
            "monthly_charges": float(r.monthly_charges),
            "support_calls": int(r.support_calls),
            "contract": r.contract,
        }
        for r in frame.itertuples(index=False)
    ]


def send(
    servers: list[Server], rows: list[dict], prefix: str, per_request: int = 1, clients: int = 8
) -> None:
    """Each request to every server with the same x-request-id: what the mesh's mirror does."""

    def one(i: int) -> None:
        body = {"records": rows[i * per_request : (i + 1) * per_request]}
        for server in servers:
            resp = httpx.post(
                f"{server.url}/predict", json=body, headers={"x-request-id": f"{prefix}{i}"}, timeout=30
            )
            assert resp.status_code == 200, resp.text

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(len(rows) // per_request)))


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


def log_traffic(spec: Path, env: dict[str, str], project: Path) -> None:
    live = pd.read_csv(project / "data" / "churn" / "reference.csv").head(1500)
    live["monthly_charges"] = (live["monthly_charges"] * 1.6).round(2)
    champion = Server(spec, env, NOW)
    try:
        send([champion], records(live), "live-", per_request=50, clients=4)
        loadtest = subprocess.run(
            [
                sys.executable,
                "-m",
                "mlspec",
                "loadtest",
                champion.url,
                "--spec",
                str(spec),
                "--duration",
                "2s",
                "--concurrency",
                "2",
                "--max-requests",
                "400",
            ],
            env=env,
            cwd=project,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert loadtest.returncode in (0, 1), loadtest.stderr  # its SLO verdict is not this test's concern
    finally:
        champion.stop()


@pytest.fixture()
def cluster(tmp_path: Path):
    pg = Postgres()
    airflow = Airflow(tmp_path / "airflow-home", tmp_path / "dags", dict(os.environ))
    airflow.home.mkdir()
    airflow.dags.mkdir()
    try:
        airflow.configure(pg.start())
        yield airflow
    finally:
        airflow.stop()
        pg.stop()


def test_the_loop_closes_in_airflow(cluster: Airflow, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(ROOT / "data" / "churn", project / "data" / "churn")
    spec = loop_spec(project)
    tracking = f"sqlite:///{project / 'mlflow.db'}"
    ir = mlspec.lower(mlspec.load(spec))
    assert (ir.retraining.owner, ir.monitoring.owner, ir.monitoring.excluded_sources) == (
        "airflow",
        "airflow",
        ["loadtest"],
    )
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking,
        "PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT)),
    }
    env.pop("MLSPEC_TRIGGER_STATE", None)
    cluster.env.update(
        {
            "MLFLOW_TRACKING_URI": tracking,
            "AIRFLOW_VAR_MLSPEC_CHURN_WORKDIR": str(project),
            "AIRFLOW_VAR_MLSPEC_CHURN_RUNS_ROOT": str(project / "runs"),
        }
    )

    # Two days ago: the first champion, trained by hand (its run holds a cooldown that is long over), while
    # PostgreSQL takes Airflow's schema.
    with ThreadPoolExecutor(1) as training:
        first = training.submit(
            mlspec_cli, ["run", str(spec), "--now", iso(NOW - pd.Timedelta(days=2))], env, project
        )
        cluster.migrate()
        first.result()
    assert registry_state(tracking)["champion"] == "1"

    # Live traffic whose monthly charges drifted, and a load test that monitoring must not count, logged by
    # the champion's server while Airflow starts.
    with ThreadPoolExecutor(1) as starting:
        started = starting.submit(cluster.start)
        log_traffic(spec, env, project)
        started.result()

    # 1. Deployed, the monitoring DAG runs its latest tick (catchup off), sees the drift (not the load test)
    # and fires; its asset event starts training.
    write(emit(ir, "local")[0], cluster.dags)
    (first_monitor,) = wait_for(lambda: cluster.runs("churn_monitoring"), 180, "the first monitoring run")
    assert first_monitor["run_type"] == "scheduled"
    cluster.wait_for_run("churn_monitoring", first_monitor["dag_run_id"])
    result = json.loads(
        next((project / "runs" / "churn_monitoring").glob("*/steps/monitor/result.json")).read_text()
    )
    assert (
        cluster.task_states("churn_monitoring", first_monitor["dag_run_id"])["trigger_retrain"] == "success"
    )
    assert result["fired_triggers"] == ["drift-0"] and "monthly_charges" in result["drifted_features"]
    assert result["rows"] == 1500 and result["excluded_rows"]["source=loadtest"] > 0
    training = wait_for(lambda: cluster.runs("churn_training"), 120, "the asset-triggered training run")
    (run,) = training
    assert run["run_type"] == "asset_triggered"
    cluster.wait_for_run("churn_training", run["dag_run_id"], timeout=600)
    state = registry_state(tracking)
    # the new version is the challenger in a shadow rollout; the champion still serves users
    assert (state["versions"], state["champion"], state["challenger"]) == (["1", "2"], "1", "2")
    assert state["stages"] == {"1": "champion", "2": "shadow"}

    # 2. The same drift inside the cooldown starts nothing.
    second_monitor = cluster.trigger("churn_monitoring")
    cluster.wait_for_run("churn_monitoring", second_monitor)
    states = cluster.task_states("churn_monitoring", second_monitor)
    assert states["monitor"] == "success" and states["trigger_retrain"] == "skipped"
    results = sorted(
        (project / "runs" / "churn_monitoring").glob("*/steps/monitor/result.json"),
        key=lambda p: p.stat().st_mtime,
    )
    assert json.loads(results[-1].read_text())["suppressed_triggers"] == ["drift-0"]
    # no second retrain event, so the scheduler has nothing to start training from
    events = cluster.api("GET", "/assets/events", params={"limit": 100})["asset_events"]
    assert [e["uri"] for e in events] == ["mlspec://churn/retrain"]
    assert len(cluster.runs("churn_training")) == 1

    # Every transition is on record, with who and why.
    history = json.loads(mlspec_cli(["history", str(spec), "--format", "json"], env, project).stdout)
    assert [(h["action"], h["alias"], h["version"]) for h in history] == [
        ("register", "challenger", "1"),
        ("promote", "champion", "1"),
        ("register", "challenger", "2"),
        ("rollout", "challenger", "2"),
    ]
    assert "shadow" in history[3]["reason"], history[3]
