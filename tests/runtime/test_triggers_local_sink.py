"""The local sink end to end: drifted data in, `mlspec run` started by the trigger, a new model version out."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlspec.runtime import monitor, triggers

pytestmark = pytest.mark.clock

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ["month-to-month", "one-year", "two-year"]


def _versions(tracking: str) -> tuple[list[str], str | None]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    versions = sorted(str(v.version) for v in client.search_model_versions("name='churn'"))
    try:
        champion = str(client.get_model_version_by_alias("churn", "champion").version)
    except Exception:
        champion = None
    return versions, champion


@pytest.mark.engine
@pytest.mark.slow
def test_drift_fires_local_sink_which_trains_a_new_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlspec

    (tmp_path / "specs").mkdir()
    shutil.copy(ROOT / "specs" / "churn.yaml", tmp_path / "specs" / "churn.yaml")
    shutil.copytree(ROOT / "data" / "churn", tmp_path / "data" / "churn")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # churn's loop owner is airflow; this test runs the loop here
    monkeypatch.setenv("MLSPEC_RETRAIN_SINK", "local")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # the first champion was trained two days ago: every training run holds the cooldown from its start
    trained = pd.Timestamp(os.environ["MLSPEC_NOW"]) - pd.Timedelta(days=2)
    first = subprocess.run(
        [sys.executable, "-m", "mlspec", "run", "specs/churn.yaml", "--now", trained.isoformat()],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    tracking = "sqlite:///.mlspec/mlflow.db"
    versions, champion = _versions(tracking)
    assert versions == ["1"] and champion == "1"

    ir = mlspec.lower(mlspec.load("specs/churn.yaml"))
    # a day of logged traffic whose monthly charges drifted (the server logs categories as value indexes)
    cur = pd.read_csv("data/churn/reference.csv").head(1500)
    cur["monthly_charges"] = cur["monthly_charges"] * 1.6
    now = pd.Timestamp(os.environ["MLSPEC_NOW"])  # pinned by the root conftest: a Tuesday, off the cron
    ts = now - pd.to_timedelta(np.arange(len(cur)) * 30, unit="s")
    log = tmp_path / "predictions" / f"date={now:%Y-%m-%d}"
    log.mkdir(parents=True)
    inputs = (
        cur[["tenure_months", "monthly_charges", "support_calls"]]
        .astype(float)
        .assign(contract=cur["contract"].map(CONTRACTS.index).astype(float))
    )
    records = pd.DataFrame(
        {
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "request_id": [f"r{i}" for i in range(len(cur))],
            "model_version": "1",
            "row": 0,
            "inputs": inputs.to_dict("records"),
            "outputs": [[0.5, 0.5]] * len(cur),
        }
    )
    records.to_json(log / "part.jsonl", orient="records", lines=True)
    # the reference profile comes from the champion's artifacts in the registry
    result = monitor.run_monitor(ir, str(tmp_path / "mon"), log=str(tmp_path / "predictions"))
    assert result["drifted_features"] == ["monthly_charges"] and result["fired_triggers"] == ["drift-1"]
    report = json.loads((tmp_path / "mon/steps/monitor/report.json").read_text())
    assert report["reference"] == "models:/churn/1"

    # new labelled data arrived with the drift; the sink retrains on it
    fresh = pd.read_csv("data/churn/train.csv")
    fresh["monthly_charges"] = (fresh["monthly_charges"] * 1.6).round(2)
    fresh.to_csv("data/churn/train.csv", index=False)
    ref = pd.read_csv("data/churn/reference.csv")
    ref["monthly_charges"] = (ref["monthly_charges"] * 1.6).round(2)
    ref.to_csv("data/churn/reference.csv", index=False)
    sent = triggers.send(ir, result, wait=True)
    assert sent["sent"] and sent["sink"] == "local" and sent["returncode"] == 0
    versions, new_champion = _versions(tracking)
    assert versions == ["1", "2"]  # the retraining registered a new version
    assert new_champion in ("1", "2")  # and moved the champion only if version 2 won its comparison
    state = json.loads(Path(result["state_path"]).read_text())
    assert state["last_fired_triggers"] == ["drift-1"]
