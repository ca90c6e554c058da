"""The monitoring run in MLflow: the report's headline numbers as metrics, the report files as artifacts.

The run goes to the registry's tracking server and experiment (MLFLOW_TRACKING_URI, else
registry.tracking_uri), tagged mlspec.run_kind=monitoring, when that registry is in use: a server URI, or a
local SQLite file that already exists (the monitor does not create a database just to hold its report).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from mlspec.runtime import StepError, data, registry

_METRIC_NAME = re.compile(r"[^A-Za-z0-9_\-. /]")


def enabled(ir: Any, requested: bool | None) -> bool:
    if requested is not None:
        return requested
    uri = registry.tracking_uri(ir)
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :]).is_file()
    if uri.startswith("file:") or "://" not in uri:
        return Path(uri.removeprefix("file://")).exists()
    return True


def _metrics(report: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {"window_rows": float(report["rows"]), "retrain": float(report["retrain"])}
    for name, res in (report.get("drift") or {}).get("features", {}).items():
        if res["score"] is not None:
            out[f"drift.{name}"] = float(res["score"])
    if report.get("correlation_change") is not None:
        out["correlation_change"] = float(report["correlation_change"])
    for name, row in report["data_quality"]["features"].items():
        for key in ("null_rate", "out_of_range_rate", "unseen_rate"):
            if row.get(key) is not None:
                out[f"{key}.{name}"] = float(row[key])
    perf = report.get("performance") or {}
    for name, value in (perf.get("metrics") or {}).items():
        out[f"live.{name}"] = float(value)
    for name, value in (perf.get("kpis") or {}).items():
        out[f"kpi.{name}"] = float(value)
    return {_METRIC_NAME.sub("_", k): v for k, v in out.items()}


def log_run(ir: Any, report: dict[str, Any], paths: dict[str, str]) -> str:
    """Create the monitoring run; returns its id."""
    from mlflow.entities import Metric

    c = registry.client(ir)
    when = pd.Timestamp(report["now"])
    tags = {
        "mlspec.system": ir.system.name,
        "mlspec.run_kind": "monitoring",
        "mlspec.environment": ir.system.environment or "",
        "mlspec.retrain": str(report["retrain"]).lower(),
        "mlspec.fired_triggers": ",".join(report["fired_triggers"]),
        "mlspec.reference": report["reference"],
    }
    try:
        run = c.create_run(
            registry.experiment_id(c, ir),
            start_time=int(when.timestamp() * 1000),
            tags=tags,
            run_name=f"monitor-{when.strftime('%Y%m%dT%H%M%SZ')}",
        )
        stamp = int(when.timestamp() * 1000)
        metrics = [Metric(k, v, stamp, 0) for k, v in sorted(_metrics(report).items())]
        c.log_batch(run.info.run_id, metrics=metrics)
        with tempfile.TemporaryDirectory() as tmp:
            for name, path in paths.items():
                if "://" in path:  # a remote run directory: copy the file here first
                    local = os.path.join(tmp, name)
                    with data.open_file(path, "rb") as src, open(local, "wb") as dst:
                        dst.write(src.read())
                    path = local
                c.log_artifact(run.info.run_id, path, "monitoring")
        c.set_terminated(run.info.run_id, end_time=stamp)
    except StepError:
        raise
    except Exception as exc:
        raise StepError(f"cannot log the monitoring run to MLflow: {type(exc).__name__}: {exc}") from exc
    return run.info.run_id
