"""report.json's numbers as Prometheus gauges: metrics.prom beside the report, and a push to the Pushgateway
when MLSPEC_PUSHGATEWAY_URL is set (the monitoring CronJob sets it; Prometheus scrapes the Pushgateway).

Names and labels are mlspec.contracts'; every metric carries the `system` label; docs/monitoring.md lists them.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from mlspec import contracts as c
from mlspec.runtime import data

log = logging.getLogger(__name__)


def _gauges(reg: Any, system: str, report: dict[str, Any]) -> None:
    from prometheus_client import Gauge

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Any:
        return Gauge(name, doc, [c.LABEL_SYSTEM, *labels], registry=reg)

    gauge(c.MONITOR_WINDOW_ROWS, "Logged predictions in the monitoring window.").labels(system).set(
        report["rows"]
    )
    gauge(c.MONITOR_LAST_RUN, "When the monitor last ran.").labels(system).set(
        pd.Timestamp(report["now"]).timestamp()
    )
    if report.get("drift"):
        d = report["drift"]
        score = gauge(
            c.FEATURE_DRIFT_SCORE,
            "Drift score per feature against the reference.",
            (c.LABEL_FEATURE, "method"),
        )
        flag = gauge(
            c.FEATURE_DRIFTED, "1 when the feature's drift score is above the threshold.", (c.LABEL_FEATURE,)
        )
        for feature, res in d["features"].items():
            if res["score"] is not None:
                score.labels(system, feature, d["method"]).set(res["score"])
            flag.labels(system, feature).set(1 if res["drifted"] else 0)
        gauge(c.DRIFTED_FEATURES, "Features above the drift threshold.").labels(system).set(d["n_drifted"])
    if report.get("correlation_change") is not None:
        gauge(c.CORRELATION_CHANGE, "Largest change of a pairwise feature correlation.").labels(system).set(
            report["correlation_change"]
        )
    quality = (report.get("data_quality") or {}).get("features", {})
    if quality:
        rates = {
            "null_rate": gauge(
                c.FEATURE_NULL_RATE, "Share of missing values per feature.", (c.LABEL_FEATURE,)
            ),
            "out_of_range_rate": gauge(
                c.FEATURE_OUT_OF_RANGE_RATE,
                "Share of values outside the schema's bounds or type per feature.",
                (c.LABEL_FEATURE,),
            ),
            "unseen_rate": gauge(
                c.FEATURE_UNSEEN_RATE,
                "Share of unseen categories per categorical feature.",
                (c.LABEL_FEATURE,),
            ),
        }
        for feature, row in quality.items():
            for key, g in rates.items():
                if row.get(key) is not None:
                    g.labels(system, feature).set(row[key])
        gauge(
            c.DATA_QUALITY_VIOLATIONS, "Data-quality bounds exceeded (feature and check) in this run."
        ).labels(system).set(len(report.get("data_quality_violations", [])))
    perf = report.get("performance") or {}
    if perf.get("metrics"):
        g = gauge(c.MODEL_PERFORMANCE, "Live model metric on labeled predictions.", (c.LABEL_METRIC,))
        for name, value in perf["metrics"].items():
            g.labels(system, name).set(value)
        gauge(c.LABELED_ROWS, "Predictions joined with a label.").labels(system).set(perf["labeled_rows"])
    if perf.get("kpis"):
        g = gauge(c.BUSINESS_KPI, "Business KPI on labeled predictions.", ("kpi",))
        for name, value in perf["kpis"].items():
            g.labels(system, name).set(value)
    if perf.get("confusion_matrix_change") is not None:
        gauge(c.CONFUSION_MATRIX_CHANGE, "Largest change of a per-class confusion rate.").labels(system).set(
            perf["confusion_matrix_change"]
        )
    fired = gauge(
        c.RETRAIN_TRIGGER_FIRED,
        "1 when the retraining trigger fired in this run.",
        (c.LABEL_TRIGGER, "kind"),
    )
    for trig in report["triggers"]:
        fired.labels(system, trig["id"], trig["kind"]).set(1 if trig["fired"] else 0)
    gauge(c.RETRAIN_DECISION, "1 when the monitor asked for retraining.").labels(system).set(
        1 if report["retrain"] else 0
    )


def write_prometheus(system: str, report: dict[str, Any], path: str) -> None:
    from prometheus_client import CollectorRegistry, write_to_textfile

    reg = CollectorRegistry()
    _gauges(reg, system, report)
    gateway = os.environ.get(c.PUSHGATEWAY_URL_ENV)
    if gateway:
        push(reg, system, gateway)
    if "://" in path:
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, "metrics.prom")
            write_to_textfile(local, reg)
            with open(local, "rb") as src, data.open_file(path, "wb") as dst:
                dst.write(src.read())
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(path, reg)


def push(reg: Any, system: str, gateway: str) -> None:
    """Replace this system's group on the Pushgateway with this run's gauges (a feature that is gone goes).

    A failed push is logged, not raised: the run's decision is already recorded and its files written, and
    the dashboard shows the last run's time, so a stale Pushgateway is visible where it matters.
    """
    from prometheus_client import push_to_gateway

    try:
        push_to_gateway(gateway, job=c.MONITOR_PUSH_JOB, registry=reg, grouping_key={c.LABEL_SYSTEM: system})
    except OSError as exc:
        log.warning("could not push the monitor's metrics to %s: %s", gateway, exc)
