"""The monitor end to end on a logged JSONL window in the model server's format, with labels joined."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlspec.runtime import drift, monitor

pytestmark = pytest.mark.clock

DATA = Path(__file__).resolve().parents[2] / "data" / "churn"
NOW = pd.Timestamp("2025-07-01T12:00:00Z")
CONTRACTS = ["month-to-month", "one-year", "two-year"]


def write_log(
    base: Path, frame: pd.DataFrame, *, now: pd.Timestamp = NOW, spacing_s: float = 20.0, prefix: str = "r"
) -> None:
    """Records exactly like mlspec.serving.predlog writes them: categories as value indexes."""
    ts = now - pd.to_timedelta(np.arange(len(frame)) * spacing_s, unit="s")
    p = 1 / (1 + np.exp(-(0.45 * frame["support_calls"] - 0.04 * frame["tenure_months"])))
    day = base / f"date={now:%Y-%m-%d}"
    day.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (t, row, pi) in enumerate(zip(ts, frame.itertuples(index=False), p, strict=True)):
        lines.append(
            json.dumps(
                {
                    "ts": t.isoformat().replace("+00:00", "Z"),
                    "request_id": f"{prefix}{i}",
                    "model_version": "1",
                    "row": 0,
                    "inputs": {
                        "tenure_months": float(row.tenure_months),
                        "monthly_charges": float(row.monthly_charges),
                        "support_calls": float(row.support_calls),
                        "contract": float(CONTRACTS.index(row.contract)),
                    },
                    "outputs": [1 - pi, pi],
                }
            )
        )
    (day / f"{prefix}-000.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture()
def project(tmp_path: Path, churn_ir, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    train = pd.read_csv(DATA / "train.csv")
    export = tmp_path / "run" / "steps" / "export"
    export.mkdir(parents=True)
    profile = drift.reference_profile(train, list(churn_ir.data.features), list(churn_ir.data.columns))
    (export / "reference_profile.json").write_text(json.dumps(profile))
    (export / "metrics.json").write_text(json.dumps({"confusion_matrix": [[2800, 380], [700, 1120]]}))
    return tmp_path


def test_clean_window_does_not_retrain(project: Path, churn_ir) -> None:
    write_log(project / "log", pd.read_csv(DATA / "reference.csv"))
    res = monitor.run_monitor(churn_ir, "run", log="log", now=NOW)
    assert res["rows"] == 3000 and res["drifted_features"] == []
    assert not res["retrain"] and res["fired_triggers"] == []
    report = json.loads((project / "run/steps/monitor/report.json").read_text())
    assert report["drift"]["method"] == "psi" and report["correlation_change"] < 0.2
    assert set(report["drift"]["features"]) == {
        "tenure_months",
        "monthly_charges",
        "support_calls",
        "contract",
    }


def test_drifted_window_with_labels_fires_and_writes_prometheus(project: Path, churn_ir) -> None:
    cur = pd.read_csv(DATA / "reference.csv")
    cur["monthly_charges"] = cur["monthly_charges"] * 1.6
    cur.loc[: len(cur) // 2, "contract"] = "two-year"
    write_log(project / "log", cur)
    # an old record outside the 1d window must be ignored
    write_log(project / "log", cur.head(50), now=NOW - pd.Timedelta(days=3), prefix="old")
    # churn's labels arrive 7 days late (label_delay: 7d): performance is the window that ended a week ago
    assert churn_ir.monitoring.performance.label_delay_seconds == 7 * 86400
    write_log(project / "log", cur, now=NOW - pd.Timedelta(days=7), prefix="late")
    labels = project / "log" / "labels"
    labels.mkdir()
    pd.DataFrame({"request_id": [f"late{i}" for i in range(len(cur))], "churned": cur["churned"]}).to_csv(
        labels / "labels.csv", index=False
    )
    res = monitor.run_monitor(churn_ir, "run", log="log", now=NOW)
    assert res["rows"] == 3000
    assert res["drifted_features"] == ["monthly_charges", "contract"]
    assert res["retrain"] and "drift-1" in res["fired_triggers"]
    assert 0.5 < res["performance"]["auc"] < 0.8 and "performance-2" in res["fired_triggers"]  # auc < 0.80
    report = json.loads((project / "run/steps/monitor/report.json").read_text())
    perf = report["performance"]
    assert perf["labeled_rows"] == 3000 and np.asarray(perf["confusion_matrix"]).sum() == 3000
    assert report["performance_window"]["end"] == (NOW - pd.Timedelta(days=7)).isoformat()
    assert 0 <= perf["confusion_matrix_change"] <= 1
    families = {
        f.name: f
        for f in text_string_to_metric_families((project / "run/steps/monitor/metrics.prom").read_text())
    }
    scores = {s.labels["feature"]: s.value for s in families["mlspec_feature_drift_score"].samples}
    assert scores["monthly_charges"] == pytest.approx(report["drift"]["features"]["monthly_charges"]["score"])
    assert families["mlspec_retrain_decision"].samples[0].value == 1
    assert families["mlspec_monitor_window_rows"].samples[0].value == 3000
    auc = [s.value for s in families["mlspec_model_performance"].samples if s.labels["metric"] == "auc"]
    assert auc == [pytest.approx(res["performance"]["auc"])]


def test_parquet_window_with_feature_columns(project: Path, churn_ir) -> None:
    cur = pd.read_csv(DATA / "reference.csv").head(1500)
    cur["ts"] = (NOW - pd.to_timedelta(np.arange(len(cur)), unit="min")).strftime("%Y-%m-%dT%H:%M:%SZ")
    (project / "plog").mkdir()
    cur[["ts", *churn_ir.data.features]].to_parquet(
        project / "plog" / "part-0.parquet"
    )  # raw category strings
    res = monitor.run_monitor(churn_ir, "run", log="plog", now=NOW)
    assert res["rows"] == 1440  # one per minute for 24 h
    assert res["drifted_features"] == [] and not res["retrain"]


def test_empty_window_and_missing_reference_are_clear_errors(project: Path, churn_ir) -> None:
    write_log(project / "log", pd.read_csv(DATA / "reference.csv").head(10), now=NOW - pd.Timedelta(days=5))
    with pytest.raises(monitor.MonitorError, match="empty window: no logged predictions"):
        monitor.run_monitor(churn_ir, "run", log="log", now=NOW)
    write_log(project / "log", pd.read_csv(DATA / "reference.csv").head(10))
    with pytest.raises(monitor.MonitorError, match=r"reference profile .*nope\.json does not exist"):
        monitor.run_monitor(churn_ir, "run", log="log", now=NOW, reference=str(project / "nope.json"))


def test_few_samples_skip_drift(project: Path, churn_ir) -> None:
    cur = pd.read_csv(DATA / "reference.csv").head(100)
    cur["monthly_charges"] *= 3
    write_log(project / "log", cur)
    res = monitor.run_monitor(churn_ir, "run", log="log", now=NOW)
    assert res["rows"] == 100 and not res["retrain"]  # below monitoring.min_samples (500)
    assert "fewer than 500 samples" in res["summary"]


def test_labels_of_the_current_window_are_not_due_yet(project: Path, churn_ir) -> None:
    """With label_delay, the current window's labels (if any) do not count: they are not all in yet."""
    cur = pd.read_csv(DATA / "reference.csv")
    write_log(project / "log", cur)
    labels = project / "log" / "labels"
    labels.mkdir()
    pd.DataFrame({"request_id": [f"r{i}" for i in range(len(cur))], "churned": cur["churned"]}).to_csv(
        labels / "labels.csv", index=False
    )
    res = monitor.run_monitor(churn_ir, "run", log="log", now=NOW, state="state.json")
    assert res["performance"] is None and "performance-2" not in res["fired_triggers"]


def test_a_labels_path_that_does_not_exist_is_an_error(project: Path, churn_ir) -> None:
    write_log(project / "log", pd.read_csv(DATA / "reference.csv"))
    with pytest.raises(monitor.MonitorError, match=r"labels typo/labels\.csv: no such file"):
        monitor.run_monitor(churn_ir, "run", log="log", labels="typo/labels.csv", now=NOW)


def test_load_test_and_mirrored_rows_are_not_monitored(project: Path, churn_ir) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cur = pd.read_csv(DATA / "reference.csv").head(1500)
    shadow_ir = churn_ir.model_copy(
        update={"monitoring": churn_ir.monitoring.model_copy(update={"excluded_variants": ["shadow"]})}
    )
    ts = pd.Series(NOW - pd.to_timedelta(np.arange(len(cur)) * 20, unit="s"))
    part = project / "log" / f"date={NOW:%Y-%m-%d}" / "hour=11"
    part.mkdir(parents=True)

    def write(name: str, frame: pd.DataFrame, source: str, variant: str) -> None:
        table = pa.table(
            {
                "ts": pa.array(ts[: len(frame)], type=pa.timestamp("ms", tz="UTC")),
                "request_id": [f"{name}{i}" for i in range(len(frame))],
                "model_version": ["1"] * len(frame),
                "variant": [variant] * len(frame),
                "source": [source] * len(frame),
                "row": [0] * len(frame),
                "tenure_months": frame["tenure_months"].astype(float),
                "monthly_charges": frame["monthly_charges"].astype(float),
                "support_calls": frame["support_calls"].astype(float),
                "contract": frame["contract"].map(CONTRACTS.index).astype(float),
            }
        )
        pq.write_table(table, part / f"{name}.parquet")

    write("live", cur, "live", "champion")
    drifted = cur.assign(monthly_charges=cur["monthly_charges"] * 3)
    write("load", drifted, "loadtest", "champion")  # synthetic traffic, far from the reference
    write("mirror", drifted, "live", "shadow")  # the shadow's copies of requests
    res = monitor.run_monitor(shadow_ir, "run", log="log", now=NOW, state="state.json")
    assert res["rows"] == 1500 and res["drifted_features"] == []
    assert res["excluded_rows"] == {"source=loadtest": 1500, "variant=shadow": 1500}
