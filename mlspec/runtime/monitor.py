"""The monitor step: one window of logged predictions against the model's reference, then the triggers.

Inputs
  - the prediction log the model server writes under ir.serving.prediction_log (override: `log` argument or
    MLSPEC_PREDICTION_LOG): Parquet partitions date=YYYY-MM-DD/hour=HH/, older JSONL records, or Parquet files
    with feature columns and "ts";
  - labels when they arrive (`labels` argument or MLSPEC_LABELS, which must exist; default <log>/labels/ when
    present): CSV, Parquet or JSONL with request_id (and row, when present) and the target column (or "label").
    With `monitoring.performance.label_delay`, performance is computed on the window that ended that long ago,
    whose labels have arrived;
  - the reference saved with the model: `reference` argument, else RUN_DIR/steps/export/, else the registry's
    champion artifacts (reference_profile.json, preprocessing.json, metrics.json).

The window is streamed partition by partition into one mergeable Summary (mlspec.runtime.monitoring.summary);
drift, correlation change, data quality and performance are computed from it, never from the raw rows. Rows
of `monitoring.excluded_sources` (the load test's) and `excluded_variants` (a shadow's mirrored copies) are
skipped and counted apart.

Outputs in RUN_DIR/steps/monitor/: report.json, metrics.prom (Prometheus text), report.html (self-contained)
and report.md (for CI comments); logged to MLflow when the registry is in use. The result carries retrain
(bool) and fired_triggers (list) for the trigger-retrain step.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlspec.runtime import data, drift, triggers
from mlspec.runtime import now as runtime_now
from mlspec.runtime.monitoring import MonitorError, distributions, quality, window
from mlspec.runtime.monitoring.plan import Plan, build_plan
from mlspec.runtime.monitoring.reference import Reference, load_reference
from mlspec.runtime.monitoring.summary import Summary

__all__ = ["MonitorError", "Window", "finish", "open_window", "run_monitor", "summarize", "summarize_shard"]


def _ns(ts: pd.Timestamp | None) -> int | None:
    return None if ts is None else int(ts.value)


def _iso(ns: int | None) -> str | None:
    return None if ns is None else pd.Timestamp(ns, unit="ns", tz="UTC").isoformat()


def monitored_features(ir: Any, profile: dict[str, Any]) -> list[str]:
    """The model's features that the reference profiles (every one of them, normally)."""
    return [f for f in ir.data.features if f in profile["features"]]


def window_plan(
    ir: Any, ref: Reference, start: pd.Timestamp, end: pd.Timestamp, volume_cutoff: pd.Timestamp | None = None
) -> Plan:
    """What every partition of the window (start, end] is summarized with."""
    return build_plan(
        ref.profile,
        monitored_features(ir, ref.profile),
        columns=ir.data.columns,
        codes=ref.codes(ir),
        start_ns=_ns(start),
        end_ns=_ns(end),
        volume_cutoff_ns=_ns(volume_cutoff),
        excluded_sources=list(ir.monitoring.excluded_sources),
        excluded_variants=list(ir.monitoring.excluded_variants),
    )


def _report(
    ir: Any,
    ref: Reference,
    plan: Plan,
    summary: Summary,
    *,
    now: pd.Timestamp,
    start: pd.Timestamp,
    log: str,
    n_partitions: int,
    skipped: int,
    labeled: pd.DataFrame | None,
) -> dict[str, Any]:
    mon = ir.monitoring
    report: dict[str, Any] = {
        "system": ir.system.name,
        "now": now.isoformat(),
        "window_start": start.isoformat(),
        "window_seconds": mon.window_seconds,
        "log": log,
        "partitions": {"read": n_partitions, "skipped_files": skipped},
        "rows": summary.rows,
        "first_ts": _iso(summary.ts_min_ns),
        "last_ts": _iso(summary.ts_max_ns),
        "rows_per_hour": dict(sorted(summary.hours.items())),
        "reference": ref.source,
        "min_samples": mon.min_samples,
        "enough_samples": summary.rows >= mon.min_samples,
        "model_versions": sorted(summary.versions),
        "sources": dict(sorted(summary.sources.items())),
        "variants": dict(sorted(summary.variants.items())),
        "excluded": dict(sorted(summary.excluded.items())),
        "distributions": distributions.distributions(ref.profile, summary),
        "data_quality": quality.assess(plan, summary, ref.profile),
    }
    if mon.drift is not None and report["enough_samples"]:
        features = [f for f in mon.drift.features if f in summary.features]
        report["drift"] = drift.score(ref.profile, summary, mon.drift.method, mon.drift.threshold, features)
        report["correlation_change"] = drift.correlation_from_summary(ref.profile, summary, plan.correlation)
        current = drift.current_correlation(summary)
        if current is not None:
            all_cols = ref.profile["correlation"]["columns"]
            idx = [all_cols.index(c) for c in plan.correlation]
            matrix = ref.profile["correlation"]["matrix"]
            report["correlation"] = {
                "columns": plan.correlation,
                "reference": [[matrix[i][j] for j in idx] for i in idx],
                "current": current.tolist(),
            }
        if mon.drift.correlation_change is not None:
            report["correlation_alert"] = report["correlation_change"] > mon.drift.correlation_change
    if labeled is not None and len(labeled):
        from mlspec.runtime.monitoring.performance import performance

        report["performance"] = performance(ir, labeled, ref.preprocessing, ref.metrics)
    return report


@dataclass(frozen=True)
class Window:
    """What one monitoring run reads, fixed before anything is read: every task of a fan-out sees the same.

    The files are listed once, so a partition the server is still writing cannot differ between tasks.
    """

    now: pd.Timestamp
    start: pd.Timestamp
    log: str
    labels: str  # where the labels are read from (the default folder may not exist)
    state_path: str
    volume_cutoff: pd.Timestamp | None
    partitions: list[window.Partition]
    skipped: int
    # the performance window's partitions, with monitoring.performance.label_delay
    late_partitions: list[window.Partition]

    def to_json(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "start": self.start.isoformat(),
            "log": self.log,
            "labels": self.labels,
            "state_path": self.state_path,
            "volume_cutoff": None if self.volume_cutoff is None else self.volume_cutoff.isoformat(),
            "partitions": [[p.key, list(p.files)] for p in self.partitions],
            "skipped": self.skipped,
            "late_partitions": [[p.key, list(p.files)] for p in self.late_partitions],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Window:
        cutoff = obj["volume_cutoff"]
        return cls(
            now=pd.Timestamp(obj["now"]),
            start=pd.Timestamp(obj["start"]),
            log=obj["log"],
            labels=obj["labels"],
            state_path=obj["state_path"],
            volume_cutoff=None if cutoff is None else pd.Timestamp(cutoff),
            partitions=[window.Partition(k, tuple(f)) for k, f in obj["partitions"]],
            skipped=obj["skipped"],
            late_partitions=[window.Partition(k, tuple(f)) for k, f in obj["late_partitions"]],
        )


def _label_delay(ir: Any) -> pd.Timedelta:
    mon = ir.monitoring
    return pd.Timedelta(seconds=mon.performance.label_delay_seconds if mon.performance else 0)


def open_window(
    ir: Any,
    run_dir: str,
    *,
    log: str | None = None,
    labels: str | None = None,
    now: pd.Timestamp | None = None,
    state: str | None = None,
) -> Window:
    """The window ending `now` (default: the clock) and the log files it reads."""
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
    state_path = state or triggers.default_state_path(ir, run_dir)
    given = labels or os.environ.get("MLSPEC_LABELS")
    if given and not window.exists(given):
        raise MonitorError(f"labels {given}: no such file or folder (performance needs the labels)")
    parts, skipped = window.partitions(log, start, now)
    delay = _label_delay(ir)
    late = window.partitions(log, start - delay, now - delay)[0] if delay else []
    return Window(
        now=now,
        start=start,
        log=log,
        labels=given or f"{log.rstrip('/')}/labels",
        state_path=state_path,
        volume_cutoff=triggers.volume_cutoff(state_path),
        partitions=parts,
        skipped=skipped,
        late_partitions=late,
    )


def shard_of(parts: list[window.Partition], shard: int, shards: int) -> list[window.Partition]:
    """Shard `shard` of `shards`: a contiguous run of the sorted partitions, so that merging the shards in
    order merges the partitions in the order one process reads them."""
    return parts[shard * len(parts) // shards : (shard + 1) * len(parts) // shards]


def summarize_shard(
    ir: Any, ref: Reference, win: Window, shard: int = 0, shards: int = 1
) -> tuple[Summary, Summary | None]:
    """The window's summary and, with labels and a label delay, the performance window's (None otherwise)."""
    plan = window_plan(ir, ref, win.start, win.now, win.volume_cutoff)
    label_rows = window.read_labels(win.labels, ir.data.target)
    delay = _label_delay(ir)
    current = window.summarize_window(
        shard_of(win.partitions, shard, shards), plan, label_rows if not delay else None
    )
    if not (delay and len(label_rows)):
        return current, None
    late_plan = window_plan(ir, ref, win.start - delay, win.now - delay)
    late = window.summarize_window(shard_of(win.late_partitions, shard, shards), late_plan, label_rows)
    return current, late


def run_monitor(
    ir,
    run_dir: str,
    *,
    reference: str | None = None,
    log: str | None = None,
    labels: str | None = None,
    now: pd.Timestamp | None = None,
    state: str | None = None,
    mlflow: bool | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Monitor one window in this process; writes RUN_DIR/steps/monitor/{report.json,metrics.prom,...}.

    `mlflow`: log the run to MLflow (None: when the registry is in use, see monitoring.tracking).
    `dry_run`: decide the triggers on the current state but record nothing (no state, no MLflow run).
    """
    win = open_window(ir, run_dir, log=log, labels=labels, now=now, state=state)
    ref = load_reference(ir, run_dir, reference)
    current, late = summarize_shard(ir, ref, win)
    return finish(ir, run_dir, ref, win, current, late, mlflow=mlflow, dry_run=dry_run)


def finish(
    ir: Any,
    run_dir: str,
    ref: Reference,
    win: Window,
    summary: Summary,
    late: Summary | None,
    *,
    mlflow: bool | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """The report, the trigger decisions and the outputs of a window's summary (one process's or a fan-out's
    merge: the same summary gives the same report)."""
    mon = ir.monitoring
    now, start, log = win.now, win.start, win.log
    if summary.rows == 0:
        n_files = sum(len(p.files) for p in win.partitions) + win.skipped
        raise MonitorError(
            f"empty window: no logged predictions between {start.isoformat()} and "
            f"{now.isoformat()} under {log} ({n_files} log files)"
        )
    delay = _label_delay(ir)
    report = _report(
        ir,
        ref,
        window_plan(ir, ref, start, now, win.volume_cutoff),
        summary,
        now=now,
        start=start,
        log=log,
        n_partitions=len(win.partitions),
        skipped=win.skipped,
        labeled=summary.labeled if late is None else late.labeled,
    )
    if mon.performance:
        report["performance_window"] = {
            "start": (start - delay).isoformat(),
            "end": (now - delay).isoformat(),
        }
    report["data_quality_violations"] = _violations(ir, report)
    newest = pd.Timestamp(summary.ts_max_ns, unit="ns", tz="UTC") if summary.ts_max_ns is not None else None
    decision = triggers.decide(
        ir, report, now=now, state_path=win.state_path, new_rows=(summary.new_rows, newest), dry_run=dry_run
    )
    report.update(decision)
    out_dir = f"{run_dir.rstrip('/')}/steps/monitor"
    paths = write_outputs(ir, report, out_dir)
    from mlspec.runtime.monitoring import tracking

    record = tracking.enabled(ir, mlflow) and not dry_run
    mlflow_run = tracking.log_run(ir, report, paths) if record else None
    perf = report.get("performance", {})
    return {
        "retrain": decision["retrain"],
        "fired_triggers": decision["fired_triggers"],
        "suppressed_triggers": decision["suppressed_triggers"],
        "claim": decision.get("claim"),
        "dry_run": dry_run,
        "rows": summary.rows,
        "excluded_rows": dict(sorted(summary.excluded.items())),
        "drifted_features": report.get("drift", {}).get("drifted_features", []),
        "correlation_change": report.get("correlation_change"),
        "data_quality_violations": report["data_quality_violations"],
        "performance": perf.get("metrics"),
        "state_path": decision["state_path"],
        "report_path": paths["report.json"],
        "metrics_path": paths["metrics.prom"],
        "html_report_path": paths["report.html"],
        "markdown_report_path": paths["report.md"],
        "mlflow_run_id": mlflow_run,
        "summary": summarize(report),
    }


def _violations(ir: Any, report: dict[str, Any]) -> list[str]:
    """Every data_quality trigger's broken bounds (the report's table marks them)."""
    out: list[str] = []
    for trig in ir.retraining.triggers if ir.retraining else []:
        if trig.kind == "data_quality":
            out += [v for v in quality.violations(report["data_quality"], trig) if v not in out]
    return out


def _write(text: str, uri: str) -> None:
    if "://" not in uri:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    with data.open_file(uri, "wb") as handle:
        handle.write(text.encode())


def write_outputs(ir: Any, report: dict[str, Any], out_dir: str) -> dict[str, str]:
    """report.json, metrics.prom, report.html and report.md in out_dir; returns their paths."""
    from mlspec.runtime.monitoring import report as html
    from mlspec.runtime.monitoring.metrics import write_prometheus

    paths = {
        name: f"{out_dir}/{name}" for name in ("report.json", "metrics.prom", "report.html", "report.md")
    }
    text = json.dumps(report, indent=2, default=str) + "\n"  # in the order built: features in model order
    _write(text, paths["report.json"])
    written = json.loads(text)  # the pictures show exactly what report.json holds
    write_prometheus(ir.system.name, written, paths["metrics.prom"])
    _write(html.render_html(written), paths["report.html"])
    _write(html.render_markdown(written), paths["report.md"])
    return paths


def summarize(report: dict[str, Any]) -> str:
    lines = [f"monitor {report['system']}: {report['rows']} predictions in the window"]
    if report.get("excluded"):
        lines.append("  not counted: " + ", ".join(f"{k} ({v} rows)" for k, v in report["excluded"].items()))
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
    if report.get("data_quality_violations"):
        lines.append(f"  data quality: {'; '.join(report['data_quality_violations'])}")
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
