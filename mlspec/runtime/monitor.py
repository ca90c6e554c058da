"""The monitor step: drift, correlation change and live performance over a window of logged predictions.

Inputs
  - the prediction log the model server writes under ir.serving.prediction_log (override: `log` argument or
    MLSPEC_PREDICTION_LOG): JSONL records {"ts", "request_id", "model_version", "row", "inputs": {...},
    "outputs": [...]}, or Parquet files with feature columns and "ts" (optionally request_id, outputs);
  - labels when they arrive (`labels` argument or MLSPEC_LABELS; default <log>/labels/): CSV, Parquet or JSONL
    with request_id (and row, when present), joined to the predictions, and the target column (or "label");
  - the reference profile saved with the model: `reference` argument, else RUN_DIR/steps/export/, else the
    registry's champion artifacts (reference_profile.json, preprocessing.json, metrics.json).

Outputs in RUN_DIR/steps/monitor/: report.json and metrics.prom (Prometheus text exposition). The result
carries retrain (bool) and fired_triggers (list) for the trigger-retrain step.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlspec.runtime import StepError, data, drift, triggers
from mlspec.runtime import now as runtime_now

PROFILE = "reference_profile.json"
PREPROCESSING = "preprocessing.json"
METRICS = "metrics.json"
LOG_SUFFIXES = (".jsonl", ".json", ".parquet", ".pq")
LABEL_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet", ".pq")


class MonitorError(StepError):
    """The monitor cannot run: no log, an empty window, no reference profile; the message says which."""


# ----------------------------------------------------------------------------------------------- reading


def _list_files(base: str, suffixes: tuple[str, ...], exclude: str | None = None) -> list[str]:
    try:
        fs, path = data.filesystem(base)
        if not fs.exists(path):
            return []
        if not fs.isdir(path):
            return [base]
        listed = fs.find(path)
    except Exception as exc:  # credentials, network, permissions: name the location, not a traceback
        raise MonitorError(f"cannot list {base}: {type(exc).__name__}: {exc}") from exc
    proto = base.split("://", 1)[0] + "://" if "://" in base else ""
    found = sorted(p for p in listed if p.lower().endswith(suffixes))
    if exclude:
        found = [p for p in found if f"/{exclude}/" not in p]
    return [proto + p if proto and not p.startswith(proto) else p for p in found]


def _partition_date(path: str) -> str | None:
    for part in path.split("/"):
        if part.startswith("date="):
            return part[5:]
    return None


def _read_one(uri: str) -> pd.DataFrame:
    low = uri.lower()
    if low.endswith((".parquet", ".pq")):
        return data.read_source(uri, "parquet")
    if low.endswith(".csv"):
        return data.read_source(uri, "csv")
    with data.open_file(uri, "rb") as handle:
        raw = handle.read()
    if not raw.strip():
        return pd.DataFrame()
    import io

    return pd.read_json(io.BytesIO(raw), lines=True, dtype=False)


def _flatten(frame: pd.DataFrame) -> pd.DataFrame:
    """Spread the "inputs" dicts of JSONL records into one column per feature."""
    if "inputs" not in frame.columns:
        return frame
    inputs = pd.DataFrame(frame["inputs"].tolist(), index=frame.index)
    rest = frame.drop(columns=["inputs"])
    return pd.concat([rest, inputs.drop(columns=[c for c in inputs.columns if c in rest.columns])], axis=1)


def read_window(base: str, start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.DataFrame, int]:
    """Logged predictions with start < ts <= end, and how many log files were read."""
    files = _list_files(base, LOG_SUFFIXES, exclude="labels")
    first_day = start.strftime("%Y-%m-%d")
    files = [f for f in files if (_partition_date(f) or "9999") >= first_day]  # skip older date= partitions
    frames = [_flatten(_read_one(f)) for f in files]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(), len(files)
    df = pd.concat(frames, ignore_index=True)
    if "ts" not in df.columns:
        raise MonitorError(f"the prediction log under {base} has no 'ts' column")
    from mlspec.runtime.checks import parse_timestamps

    df["ts"] = parse_timestamps(df["ts"])
    df = df[(df["ts"] > start) & (df["ts"] <= end)].reset_index(drop=True)
    return df, len(files)


def read_labels(base: str, target: str) -> pd.DataFrame:
    files = _list_files(base, LABEL_SUFFIXES)
    frames = [f for f in (_read_one(f) for f in files) if len(f)]
    if not frames:
        return pd.DataFrame()
    labels = pd.concat(frames, ignore_index=True)
    if "request_id" not in labels.columns:
        raise MonitorError(f"the labels under {base} have no request_id column to join on")
    column = target if target in labels.columns else "label" if "label" in labels.columns else None
    if column is None:
        raise MonitorError(f"the labels under {base} have neither a '{target}' nor a 'label' column")
    keep = ["request_id", *(["row"] if "row" in labels.columns else []), column]
    return (
        labels[keep]
        .rename(columns={column: "__label__"})
        .drop_duplicates(subset=[k for k in keep if k != column], keep="last")
    )


# ----------------------------------------------------------------------------------------------- the reference


def _read_json(uri: str) -> dict[str, Any] | None:
    try:
        with data.open_file(uri, "rb") as handle:
            return json.loads(handle.read())
    except FileNotFoundError:
        return None


def load_reference(
    ir, run_dir: str, reference: str | None = None
) -> tuple[dict, dict | None, dict | None, str]:
    """(profile, preprocessing spec, export metrics, where from)."""
    if reference:
        profile = _read_json(reference)
        if profile is None:
            raise MonitorError(f"reference profile {reference} does not exist")
        base = reference.rsplit("/", 1)[0] if "/" in reference else "."
        return profile, _read_json(f"{base}/{PREPROCESSING}"), _read_json(f"{base}/{METRICS}"), reference
    export_dir = f"{run_dir.rstrip('/')}/steps/export"
    profile = _read_json(f"{export_dir}/{PROFILE}")
    if profile is not None:
        return (
            profile,
            _read_json(f"{export_dir}/{PREPROCESSING}"),
            _read_json(f"{export_dir}/{METRICS}"),
            f"{export_dir}/{PROFILE}",
        )
    from mlspec.runtime import registry  # mlflow only when the registry is the source

    version = registry.alias_version(ir, ir.registry.champion_alias)
    if version is None:
        raise MonitorError(
            f"no reference profile: none given, none in {export_dir}, and model "
            f"'{ir.registry.model_name}' has no '{ir.registry.champion_alias}' version"
        )
    local = Path(tempfile.mkdtemp(prefix="mlspec-ref-"))
    path = registry.download(ir, version, local)
    found = next(iter(sorted(path.rglob(PROFILE))), None)
    if found is None:
        raise MonitorError(f"champion version {version} of '{ir.registry.model_name}' has no {PROFILE}")
    side = found.parent
    pre = json.loads((side / PREPROCESSING).read_text()) if (side / PREPROCESSING).exists() else None
    met = json.loads((side / METRICS).read_text()) if (side / METRICS).exists() else None
    return json.loads(found.read_text()), pre, met, f"models:/{ir.registry.model_name}/{version}"


def decode_categories(df: pd.DataFrame, ir, profile: dict, preprocessing: dict | None) -> pd.DataFrame:
    """The server logs model inputs, where a category is its index in the value list (-1 unknown or missing)."""
    values: dict[str, list] = {}
    if preprocessing:
        values = {
            f["name"]: f["values"] for f in preprocessing.get("features", []) if f.get("kind") == "category"
        }
    for col in ir.data.columns:
        if col.values and col.name not in values:
            values[col.name] = list(col.values)
    out = df.copy()
    for name, prof in profile["features"].items():
        if prof["kind"] != "categorical" or name not in out.columns or name not in values:
            continue
        if not pd.api.types.is_numeric_dtype(out[name]):
            continue
        codes = pd.to_numeric(out[name], errors="coerce").to_numpy()
        lookup = np.asarray([str(v) for v in values[name]], dtype=object)
        valid = ~np.isnan(codes) & (codes >= 0) & (codes < len(lookup))
        decoded = np.full(len(codes), None, dtype=object)
        decoded[valid] = lookup[codes[valid].astype(int)]
        out[name] = pd.Series(decoded, index=out.index, dtype=object)
    return out


# ----------------------------------------------------------------------------------------------- performance


def _probabilities(outputs: pd.Series) -> np.ndarray:
    """The logged outputs as a float matrix (ragged rows padded with NaN)."""
    return pd.DataFrame(outputs.tolist(), index=outputs.index).to_numpy(dtype=float, na_value=np.nan)


def performance(ir, joined: pd.DataFrame, preprocessing: dict | None, reference_metrics: dict | None) -> dict:
    from sklearn import metrics as skm

    perf_cfg = ir.monitoring.performance
    y_raw = joined["__label__"]
    out: dict[str, Any] = {"labeled_rows": len(joined)}
    if ir.data.task == "regression":
        pred = _probabilities(joined["outputs"])[:, 0]
        y = pd.to_numeric(y_raw, errors="coerce").to_numpy(dtype=float)
        out["metrics"] = {
            "rmse": float(np.sqrt(skm.mean_squared_error(y, pred))),
            "mae": float(skm.mean_absolute_error(y, pred)),
            "r2": float(skm.r2_score(y, pred)),
        }
    else:
        classes = (preprocessing or {}).get("classes") or next(
            (c.values for c in ir.data.columns if c.name == ir.data.target and c.values), None
        )
        if classes is None:
            classes = sorted(y_raw.dropna().unique().tolist(), key=str)
        lookup = {str(c): i for i, c in enumerate(classes)}
        y = y_raw.astype(str).map(lookup)
        keep = y.notna().to_numpy()
        y = y[keep].to_numpy(dtype=int)
        proba = _probabilities(joined["outputs"])[keep]
        if proba.shape[1] == 1 and len(classes) == 2:
            proba = np.column_stack([1 - proba[:, 0], proba[:, 0]])
        pred = proba.argmax(axis=1)
        labels = list(range(len(classes)))
        m: dict[str, Any] = {"accuracy": float(skm.accuracy_score(y, pred))}
        binary = len(classes) == 2
        avg = "binary" if binary else "macro"
        m["precision"] = float(skm.precision_score(y, pred, average=avg, zero_division=0))
        m["recall"] = float(skm.recall_score(y, pred, average=avg, zero_division=0))
        m["f1"] = float(skm.f1_score(y, pred, average=avg, zero_division=0))
        if len(np.unique(y)) == len(classes):
            m["auc"] = float(
                skm.roc_auc_score(y, proba[:, 1])
                if binary
                else skm.roc_auc_score(y, proba, multi_class="ovr", labels=labels)
            )
            m["log_loss"] = float(skm.log_loss(y, np.clip(proba, 1e-7, 1), labels=labels))
        out["metrics"] = m
        if perf_cfg is not None and perf_cfg.confusion_matrix:
            cm = skm.confusion_matrix(y, pred, labels=labels)
            out["confusion_matrix"] = cm.tolist()
            ref_cm = _find(reference_metrics, "confusion_matrix")
            if ref_cm is not None and np.asarray(ref_cm).shape == cm.shape:
                out["confusion_matrix_change"] = confusion_change(np.asarray(ref_cm), cm)
    if perf_cfg is not None:
        value = out["metrics"].get(perf_cfg.metric)
        out["metric"], out["value"] = perf_cfg.metric, value
        ok = (
            value is not None
            and (perf_cfg.min is None or value >= perf_cfg.min)
            and (perf_cfg.max is None or value <= perf_cfg.max)
        )
        out["degraded"] = value is not None and not ok
    return out


def _find(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for value in obj.values():
            if (found := _find(value, key)) is not None:
                return found
    return None


def confusion_change(reference: np.ndarray, current: np.ndarray) -> float:
    """Largest change of a row-normalized confusion-matrix cell (per true class rates), 0 to 1."""

    def rates(cm: np.ndarray) -> np.ndarray:
        totals = cm.sum(axis=1, keepdims=True).astype(float)
        return np.divide(cm, totals, out=np.zeros(cm.shape, dtype=float), where=totals > 0)

    return float(np.abs(rates(reference) - rates(current)).max())


# ----------------------------------------------------------------------------------------------- outputs


def prometheus_text(ir, report: dict[str, Any], path: str) -> None:
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    reg = CollectorRegistry()
    system = ir.system.name
    g = Gauge(
        "mlspec_monitor_window_rows", "Logged predictions in the monitoring window.", ["system"], registry=reg
    )
    g.labels(system).set(report["rows"])
    g = Gauge(
        "mlspec_monitor_last_run_timestamp_seconds", "When the monitor last ran.", ["system"], registry=reg
    )
    g.labels(system).set(pd.Timestamp(report["now"]).timestamp())
    if report.get("drift"):
        d = report["drift"]
        score = Gauge(
            "mlspec_feature_drift_score",
            "Drift score per feature against the reference.",
            ["system", "feature", "method"],
            registry=reg,
        )
        flag = Gauge(
            "mlspec_feature_drifted",
            "1 when the feature's drift score is above the threshold.",
            ["system", "feature"],
            registry=reg,
        )
        for feature, res in d["features"].items():
            if res["score"] is not None:
                score.labels(system, feature, d["method"]).set(res["score"])
            flag.labels(system, feature).set(1 if res["drifted"] else 0)
        Gauge(
            "mlspec_drifted_features", "Features above the drift threshold.", ["system"], registry=reg
        ).labels(system).set(d["n_drifted"])
    if report.get("correlation_change") is not None:
        Gauge(
            "mlspec_correlation_change",
            "Largest change of a pairwise feature correlation.",
            ["system"],
            registry=reg,
        ).labels(system).set(report["correlation_change"])
    perf = report.get("performance") or {}
    if perf.get("metrics"):
        g = Gauge(
            "mlspec_model_performance",
            "Live model metric on labeled predictions.",
            ["system", "metric"],
            registry=reg,
        )
        for name, value in perf["metrics"].items():
            g.labels(system, name).set(value)
        Gauge("mlspec_labeled_rows", "Predictions joined with a label.", ["system"], registry=reg).labels(
            system
        ).set(perf["labeled_rows"])
    if perf.get("confusion_matrix_change") is not None:
        Gauge(
            "mlspec_confusion_matrix_change",
            "Largest change of a per-class confusion rate.",
            ["system"],
            registry=reg,
        ).labels(system).set(perf["confusion_matrix_change"])
    fired = Gauge(
        "mlspec_retrain_trigger_fired",
        "1 when the retraining trigger fired in this run.",
        ["system", "trigger", "kind"],
        registry=reg,
    )
    for trig in report["triggers"]:
        fired.labels(system, trig["id"], trig["kind"]).set(1 if trig["fired"] else 0)
    Gauge(
        "mlspec_retrain_decision", "1 when the monitor asked for retraining.", ["system"], registry=reg
    ).labels(system).set(1 if report["retrain"] else 0)
    if "://" in path:
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, "metrics.prom")
            write_to_textfile(local, reg)
            with open(local, "rb") as src, data.open_file(path, "wb") as dst:
                dst.write(src.read())
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(path, reg)


def _write_json(obj: Any, uri: str) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    if "://" not in uri:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    with data.open_file(uri, "wb") as handle:
        handle.write(text.encode())


# ----------------------------------------------------------------------------------------------- entry point


def run_monitor(
    ir,
    run_dir: str,
    *,
    reference: str | None = None,
    log: str | None = None,
    labels: str | None = None,
    now: pd.Timestamp | None = None,
    state: str | None = None,
) -> dict[str, Any]:
    """Monitor one window; writes RUN_DIR/steps/monitor/{report.json,metrics.prom}; returns the result."""
    if ir.monitoring is None:
        raise MonitorError("the IR has no monitoring section")
    mon = ir.monitoring
    now = pd.Timestamp(now) if now is not None else runtime_now()
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    start = now - pd.Timedelta(seconds=mon.window_seconds)
    log = (
        log or os.environ.get("MLSPEC_PREDICTION_LOG") or (ir.serving.prediction_log if ir.serving else None)
    )
    if not log:
        raise MonitorError("no prediction log: the IR has no serving.prediction_log and none was given")
    window, n_files = read_window(log, start, now)
    if len(window) == 0:
        raise MonitorError(
            f"empty window: no logged predictions between {start.isoformat()} and "
            f"{now.isoformat()} under {log} ({n_files} log files)"
        )
    profile, preprocessing, ref_metrics, ref_source = load_reference(ir, run_dir, reference)
    window = decode_categories(window, ir, profile, preprocessing)
    report: dict[str, Any] = {
        "system": ir.system.name,
        "now": now.isoformat(),
        "window_start": start.isoformat(),
        "window_seconds": mon.window_seconds,
        "log": log,
        "rows": len(window),
        "reference": ref_source,
        "min_samples": mon.min_samples,
        "enough_samples": len(window) >= mon.min_samples,
        "model_versions": sorted(window["model_version"].astype(str).unique().tolist())
        if "model_version" in window.columns
        else [],
    }
    if mon.drift is not None and report["enough_samples"]:
        features = [f for f in mon.drift.features if f in profile["features"]]
        report["drift"] = drift.compute_drift(
            profile, window, mon.drift.method, mon.drift.threshold, features
        )
        change = drift.correlation_change(profile, window)
        report["correlation_change"] = change
        if mon.drift.correlation_change is not None:
            report["correlation_alert"] = change > mon.drift.correlation_change
    labels = labels or os.environ.get("MLSPEC_LABELS") or f"{log.rstrip('/')}/labels"
    label_frame = read_labels(labels, ir.data.target)
    if len(label_frame) and "request_id" in window.columns and "outputs" in window.columns:
        keys = (
            ["request_id", "row"]
            if "row" in label_frame.columns and "row" in window.columns
            else ["request_id"]
        )
        joined = window.merge(label_frame, on=keys, how="inner")
        if len(joined):
            report["performance"] = performance(ir, joined, preprocessing, ref_metrics)
    decision = triggers.decide(
        ir,
        report,
        now=now,
        state_path=state or triggers.default_state_path(ir, run_dir),
        timestamps=window["ts"],
    )
    report.update(decision)
    out_dir = f"{run_dir.rstrip('/')}/steps/monitor"
    _write_json(report, f"{out_dir}/report.json")
    prometheus_text(ir, report, f"{out_dir}/metrics.prom")
    drifted = report.get("drift", {}).get("drifted_features", [])
    perf = report.get("performance", {})
    return {
        "retrain": decision["retrain"],
        "fired_triggers": decision["fired_triggers"],
        "suppressed_triggers": decision["suppressed_triggers"],
        "rows": len(window),
        "drifted_features": drifted,
        "correlation_change": report.get("correlation_change"),
        "performance": perf.get("metrics"),
        "state_path": decision["state_path"],
        "report_path": f"{out_dir}/report.json",
        "metrics_path": f"{out_dir}/metrics.prom",
        "summary": summarize(report),
    }


def summarize(report: dict[str, Any]) -> str:
    lines = [f"monitor {report['system']}: {report['rows']} predictions in the window"]
    d = report.get("drift")
    if d:
        lines.append(
            f"  drift ({d['method']} > {d['threshold']}): {d['n_drifted']} of {len(d['features'])} "
            f"features drifted" + (f": {', '.join(d['drifted_features'])}" if d["drifted_features"] else "")
        )
    elif not report["enough_samples"]:
        lines.append(f"  drift not computed: fewer than {report['min_samples']} samples")
    if report.get("correlation_change") is not None:
        lines.append(f"  correlation change: {report['correlation_change']:.3f}")
    perf = report.get("performance")
    if perf:
        lines.append(
            f"  performance on {perf['labeled_rows']} labeled predictions: "
            + ", ".join(f"{k}={v:.3f}" for k, v in perf["metrics"].items())
        )
    lines.append(
        f"  retrain: {'yes' if report['retrain'] else 'no'}"
        + (f" (fired: {', '.join(report['fired_triggers'])})" if report["fired_triggers"] else "")
    )
    if report["suppressed_triggers"]:
        lines.append(f"  suppressed by cooldown: {', '.join(report['suppressed_triggers'])}")
    return "\n".join(lines)
