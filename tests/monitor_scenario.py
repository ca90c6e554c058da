"""A day of churn traffic logged by the real PredictionLogger, with drift and broken live data planted.

Used by the monitor, report and summary tests. What is planted (against data/churn/reference.csv rows):
  monthly_charges x 1.6 (drift); support_calls missing in 50.8% of the rows (null rate); tenure_months
  negative in 3% (below the schema's min 0); contract unknown to the model (logged as -1) in 6%; labels for
  every second request.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "churn"
NOW = pd.Timestamp("2025-07-01T12:00:00Z")
CONTRACTS = ["month-to-month", "one-year", "two-year"]
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "contract"]
DATA_QUALITY_TRIGGER = (
    "    - {on: data_quality, max_null_rate: 0.2, max_out_of_range_rate: 0.02, max_unseen_rate: 0.05}\n"
)


def churn_ir_with_data_quality(tmp: Path):
    """The churn spec plus a data_quality trigger (its only targets: kubeflow and kubernetes)."""
    import mlspec

    text = (ROOT / "specs" / "churn.yaml").read_text()
    text = text.replace(
        "    - {on: volume, new_rows: 100000}\n",
        "    - {on: volume, new_rows: 100000}\n" + DATA_QUALITY_TRIGGER,
    )
    text = text.replace(
        "targets: [kubeflow, airflow, terraform, cloudformation, kubernetes, container, ci]",
        "targets: [kubeflow, kubernetes]",
    )
    # the scenario's labels come with its day (the label_delay window is tested in test_monitor_window.py)
    text = text.replace("label_delay: 7d", "label_delay: 0s")
    spec = tmp / "churn-dq.yaml"
    spec.write_text(text)
    return mlspec.lower(mlspec.load(spec))


def write_reference(run_dir: Path, ir) -> Path:
    """RUN_DIR/steps/export/ as the export step leaves it: profile, preprocessing values, metrics."""
    from mlspec.runtime import drift

    export = run_dir / "steps" / "export"
    export.mkdir(parents=True, exist_ok=True)
    train = pd.read_csv(DATA / "train.csv")
    profile = drift.reference_profile(train, list(ir.data.features), list(ir.data.columns))
    (export / "reference_profile.json").write_text(json.dumps(profile))
    (export / "metrics.json").write_text(
        json.dumps({"test": {"confusion_matrix": [[2800, 380], [700, 1120]]}})
    )
    (export / "preprocessing.json").write_text(
        json.dumps(
            {"features": [{"name": "contract", "kind": "category", "values": CONTRACTS}], "classes": [0, 1]}
        )
    )
    return export / "reference_profile.json"


def model_inputs(frame: pd.DataFrame) -> np.ndarray:
    """Rows as the server passes them to the model: categories as value indexes, float32."""
    codes = frame["contract"].map({c: i for i, c in enumerate(CONTRACTS)}).fillna(-1)
    return np.column_stack(
        [frame["tenure_months"], frame["monthly_charges"], frame["support_calls"], codes]
    ).astype(np.float32)


def broken_window(rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cur = pd.read_csv(DATA / "reference.csv").head(rows).reset_index(drop=True)
    cur["monthly_charges"] = cur["monthly_charges"] * 1.6
    cur["support_calls"] = cur["support_calls"].astype(float).mask(rng.random(rows) < 0.508)
    cur.loc[rng.random(rows) < 0.03, "tenure_months"] = -5
    cur.loc[rng.random(rows) < 0.06, "contract"] = "lifetime"  # not a value the model knows
    return cur


def churn_probability(frame: pd.DataFrame) -> np.ndarray:
    calls = frame["support_calls"].fillna(0)
    return (1 / (1 + np.exp(-(0.45 * calls - 0.04 * frame["tenure_months"])))).to_numpy()


def write_log(base: Path, frame: pd.DataFrame, *, now: pd.Timestamp = NOW, per_request: int = 2) -> list[str]:
    """Log `frame` through mlspec.serving.predlog.PredictionLogger, spread evenly over the day before `now`.

    Returns the request ids; each request holds `per_request` rows.
    """
    from mlspec.serving.metrics import Metrics
    from mlspec.serving.predlog import PredictionLogger

    class Clock:
        t = 0.0

        def __call__(self) -> float:
            return self.t

    clock = Clock()
    logger = PredictionLogger(str(base), 1.0, Metrics([0.1], 64), clock=clock, rotate_s=3600)
    x = model_inputs(frame)
    p = churn_probability(frame).astype(np.float32)
    starts = range(0, len(frame), per_request)
    span = 86_000.0
    ids = []
    for k, i in enumerate(starts):
        clock.t = (now - pd.Timedelta(seconds=span)).timestamp() + span * (k + 0.5) / len(starts)
        rid = f"req-{k}"
        ids.append(rid)
        chunk = slice(i, i + per_request)
        logger.submit(rid, "1", FEATURES, x[chunk], [np.column_stack([1 - p[chunk], p[chunk]])])
    logger.close()
    return ids


def write_labels(base: Path, frame: pd.DataFrame, ids: list[str], per_request: int = 2) -> None:
    labels = base / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    rows = [
        {"request_id": rid, "row": j, "churned": int(frame["churned"].iloc[k * per_request + j])}
        for k, rid in enumerate(ids)
        if k % 2 == 0
        for j in range(per_request)
        if k * per_request + j < len(frame)
    ]
    pd.DataFrame(rows).to_csv(labels / "labels.csv", index=False)


def summarize_to_json(args: tuple) -> str:
    """A fan-out worker: one partition's Summary as JSON (what a pipeline task would write)."""
    from mlspec.runtime.monitoring import window
    from mlspec.runtime.monitoring.plan import Plan

    partition, plan_json, labels = args
    return json.dumps(window.summarize(partition, Plan.from_json(plan_json), labels).to_json())


def fan_out_spec(tmp: Path, targets: list[str], *, shards: int, label_delay: str = "0s") -> Path:
    """churn with its monitoring window fanned out over `shards` summarize tasks, logging to tmp/log.

    Local paths only (no infrastructure, no environments) and no retraining: what a fan-out must prove is the
    scores, and an orchestrator owning the loop compiles the monitoring pipeline without a sink to reach.
    """
    from ruamel.yaml import YAML

    rt = YAML()
    data = rt.load((ROOT / "specs" / "churn.yaml").read_text())
    for key in ("infrastructure", "environments", "retraining"):
        del data[key]
    data["serving"]["prediction_log"] = str(tmp / "log")
    data["monitoring"]["shards"] = shards
    data["monitoring"]["performance"]["label_delay"] = label_delay
    data["monitoring"]["min_samples"] = 100
    data["targets"] = targets
    spec = tmp / "specs" / "churn.yaml"
    spec.parent.mkdir(parents=True, exist_ok=True)
    rt.dump(data, spec)
    return spec


def register_champion(tracking_uri: str, run_dir: Path, ir) -> None:
    """A champion version in an MLflow registry whose artifacts are what the export step leaves (the monitor
    of a pipeline run in a cluster reads its reference from the champion)."""
    import mlflow
    from mlflow import MlflowClient

    export = write_reference(run_dir, ir).parent
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(export), "model")
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    name = ir.registry.model_name
    client.create_registered_model(name)
    version = client.create_model_version(name, f"{run.info.artifact_uri}/model", run.info.run_id)
    client.set_registered_model_alias(name, ir.registry.champion_alias, version.version)


# What a monitoring run reports about the window; equal, to the last bit, however the window was summarized.
SCORED_KEYS = (
    "rows",
    "first_ts",
    "last_ts",
    "rows_per_hour",
    "partitions",
    "model_versions",
    "sources",
    "variants",
    "excluded",
    "distributions",
    "data_quality",
    "drift",
    "correlation_change",
    "correlation",
    "performance",
    "data_quality_violations",
)


def scores(report: dict) -> dict:
    missing = [k for k in ("drift", "performance", "data_quality") if k not in report]
    assert not missing, f"the report lacks {missing}"
    return {k: report.get(k) for k in SCORED_KEYS}
