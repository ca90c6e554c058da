"""report.json's numbers as Prometheus text (metrics.prom), for the node-exporter textfile collector or a push.

Every metric carries the `system` label; docs/monitoring.md lists them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from mlspec.runtime import data


def _gauges(reg: Any, system: str, report: dict[str, Any]) -> None:
    from prometheus_client import Gauge

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Any:
        return Gauge(name, doc, ["system", *labels], registry=reg)

    gauge("mlspec_monitor_window_rows", "Logged predictions in the monitoring window.").labels(system).set(
        report["rows"]
    )
    gauge("mlspec_monitor_last_run_timestamp_seconds", "When the monitor last ran.").labels(system).set(
        pd.Timestamp(report["now"]).timestamp()
    )
    if report.get("drift"):
        d = report["drift"]
        score = gauge(
            "mlspec_feature_drift_score",
            "Drift score per feature against the reference.",
            ("feature", "method"),
        )
        flag = gauge(
            "mlspec_feature_drifted", "1 when the feature's drift score is above the threshold.", ("feature",)
        )
        for feature, res in d["features"].items():
            if res["score"] is not None:
                score.labels(system, feature, d["method"]).set(res["score"])
            flag.labels(system, feature).set(1 if res["drifted"] else 0)
        gauge("mlspec_drifted_features", "Features above the drift threshold.").labels(system).set(
            d["n_drifted"]
        )
    if report.get("correlation_change") is not None:
        gauge("mlspec_correlation_change", "Largest change of a pairwise feature correlation.").labels(
            system
        ).set(report["correlation_change"])
    quality = (report.get("data_quality") or {}).get("features", {})
    if quality:
        rates = {
            "null_rate": gauge(
                "mlspec_feature_null_rate", "Share of missing values per feature.", ("feature",)
            ),
            "out_of_range_rate": gauge(
                "mlspec_feature_out_of_range_rate",
                "Share of values outside the schema's bounds or type per feature.",
                ("feature",),
            ),
            "unseen_rate": gauge(
                "mlspec_feature_unseen_rate",
                "Share of unseen categories per categorical feature.",
                ("feature",),
            ),
        }
        for feature, row in quality.items():
            for key, g in rates.items():
                if row.get(key) is not None:
                    g.labels(system, feature).set(row[key])
        gauge(
            "mlspec_data_quality_violations", "Data-quality bounds exceeded (feature and check) in this run."
        ).labels(system).set(len(report.get("data_quality_violations", [])))
    perf = report.get("performance") or {}
    if perf.get("metrics"):
        g = gauge("mlspec_model_performance", "Live model metric on labeled predictions.", ("metric",))
        for name, value in perf["metrics"].items():
            g.labels(system, name).set(value)
        gauge("mlspec_labeled_rows", "Predictions joined with a label.").labels(system).set(
            perf["labeled_rows"]
        )
    if perf.get("kpis"):
        g = gauge("mlspec_business_kpi", "Business KPI on labeled predictions.", ("kpi",))
        for name, value in perf["kpis"].items():
            g.labels(system, name).set(value)
    if perf.get("confusion_matrix_change") is not None:
        gauge("mlspec_confusion_matrix_change", "Largest change of a per-class confusion rate.").labels(
            system
        ).set(perf["confusion_matrix_change"])
    fired = gauge(
        "mlspec_retrain_trigger_fired",
        "1 when the retraining trigger fired in this run.",
        ("trigger", "kind"),
    )
    for trig in report["triggers"]:
        fired.labels(system, trig["id"], trig["kind"]).set(1 if trig["fired"] else 0)
    gauge("mlspec_retrain_decision", "1 when the monitor asked for retraining.").labels(system).set(
        1 if report["retrain"] else 0
    )


def write_prometheus(system: str, report: dict[str, Any], path: str) -> None:
    from prometheus_client import CollectorRegistry, write_to_textfile

    reg = CollectorRegistry()
    _gauges(reg, system, report)
    if "://" in path:
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, "metrics.prom")
            write_to_textfile(local, reg)
            with open(local, "rb") as src, data.open_file(path, "wb") as dst:
                dst.write(src.read())
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(path, reg)
