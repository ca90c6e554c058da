"""Retraining decisions and the sinks that act on them.

`decide` evaluates the IR's triggers on a monitor report:
  schedule    a tick of the cron expression passed since the previous evaluation;
  drift       at least `features` features score above the trigger's threshold (default: the monitor's);
  performance the live metric is below `below` / above `above`;
  volume      at least `new_rows` predictions were logged since the last retraining;
  data_quality a feature's null, out-of-range or unseen-category rate is above the trigger's bound.
Drift, performance and data quality need `retraining.min_samples` rows (labeled rows for performance). A trigger that fires
within `cooldown` of the last retraining is suppressed. The state (last evaluation, last retraining, rows
counted for the volume trigger) lives in a small JSON file; `send` records a retraining there once the sink
accepted it.

Sinks (`retraining.sink`, override with MLSPEC_RETRAIN_SINK):
  local     starts `mlspec run SPEC` as a subprocess (waits when MLSPEC_RETRAIN_WAIT=1);
  airflow   creates an asset event for `mlspec://<system>/retrain` through Airflow 3's REST API
            (AIRFLOW_API_URL; AIRFLOW_API_TOKEN, or AIRFLOW_USERNAME/AIRFLOW_PASSWORD for /auth/token);
  kubeflow  kfp.Client(host=KFP_HOST).create_run_from_pipeline_package(MLSPEC_KFP_PIPELINE or
            generated/<system>/kubeflow/pipeline.yaml).
  orchestrator
            only records the retraining (so the cooldown holds): the orchestrator running this step emits
            the event itself, e.g. the generated Airflow monitoring DAG's asset outlet. Sending it here too
            would start two retraining runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from mlspec import contracts
from mlspec.runtime import StepError, data
from mlspec.runtime import now as runtime_now


class SinkError(StepError):
    """The sink refused or could not be reached; the message names the sink and the cause."""


# ----------------------------------------------------------------------------------------------- state


def default_state_path(ir, run_dir: str) -> str:
    """MLSPEC_TRIGGER_STATE, else next to the artifacts for remote runs, else .mlspec/monitoring/ in the CWD."""
    if env := os.environ.get("MLSPEC_TRIGGER_STATE"):
        return env
    if "://" in run_dir and "://" in ir.artifacts_root:
        return f"{ir.artifacts_root.rstrip('/')}/monitoring/trigger-state.json"
    return str(Path(".mlspec") / "monitoring" / f"{ir.system.name}-trigger-state.json")


def read_state(path: str) -> dict[str, Any]:
    try:
        with data.open_file(path, "rb") as handle:
            return json.loads(handle.read())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise SinkError(f"trigger state {path} is not valid JSON: {exc}") from exc


def write_state(path: str, state: dict[str, Any]) -> None:
    if "://" not in path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp_text = json.dumps(state, indent=2, sort_keys=True) + "\n"
    with data.open_file(path, "wb") as handle:
        handle.write(tmp_text.encode())


def _ts(value: str | None) -> pd.Timestamp | None:
    return None if not value else pd.Timestamp(value).tz_convert("UTC")


# ----------------------------------------------------------------------------------------------- decisions


def _schedule_due(cron: str, since: pd.Timestamp, now: pd.Timestamp) -> tuple[bool, str]:
    from croniter import croniter

    nxt = pd.Timestamp(croniter(cron, since.to_pydatetime()).get_next(float), unit="s", tz="UTC")
    return nxt <= now, f"next tick of '{cron}' after {since.isoformat()} is {nxt.isoformat()}"


def volume_cutoff(state_path: str) -> pd.Timestamp | None:
    """Rows logged after this are new for the volume trigger (None: every row in the window is)."""
    return _ts(read_state(state_path).get("volume_counted_until"))


def decide(
    ir,
    report: dict[str, Any],
    *,
    now: pd.Timestamp,
    state_path: str,
    timestamps: pd.Series | None = None,
    new_rows: tuple[int, pd.Timestamp | None] | None = None,
) -> dict[str, Any]:
    """{"retrain", "fired_triggers", "suppressed_triggers", "triggers": [...], "state_path"}; updates the state.

    The volume trigger counts the window's rows logged after the state's cutoff: from their `timestamps`, or
    as `new_rows` = (count after volume_cutoff(state_path), newest timestamp) from a window summary.
    """
    out: dict[str, Any] = {
        "retrain": False,
        "fired_triggers": [],
        "suppressed_triggers": [],
        "triggers": [],
        "state_path": state_path,
    }
    rt = ir.retraining
    if rt is None:
        return out
    state = read_state(state_path)
    rows = int(report.get("rows", 0))
    enough = rows >= rt.min_samples
    last_checked = _ts(state.get("last_checked")) or now - pd.Timedelta(
        seconds=ir.monitoring.window_seconds if ir.monitoring else 86400
    )
    # volume: count rows logged after the last counted timestamp, accumulated across monitor runs
    counted_until = _ts(state.get("volume_counted_until"))
    if timestamps is not None and len(timestamps):
        new_rows = (
            int((timestamps > counted_until).sum()) if counted_until is not None else len(timestamps),
            timestamps.max(),
        )
    new, newest = new_rows if new_rows is not None else (0, None)
    if newest is not None:
        state["volume_counted_until"] = max(newest, counted_until or newest).isoformat()
    state["volume_rows"] = int(state.get("volume_rows", 0)) + new
    for trig in rt.triggers:
        fired, reason = False, ""
        if trig.kind == "schedule":
            fired, reason = _schedule_due(trig.cron, last_checked, now)
        elif trig.kind == "drift":
            d = report.get("drift")
            if d is None or not enough:
                reason = (
                    f"not evaluated: {rows} rows, fewer than min_samples {rt.min_samples}"
                    if not enough
                    else "no drift computed"
                )
            else:
                threshold = trig.threshold if trig.threshold is not None else d["threshold"]
                over = [f for f, r in d["features"].items() if r["score"] is None or r["score"] > threshold]
                need = trig.features or 1
                fired = len(over) >= need
                reason = f"{len(over)} features above {threshold} (need {need})" + (
                    f": {', '.join(over)}" if over else ""
                )
        elif trig.kind == "performance":
            perf = report.get("performance") or {}
            labeled = int(perf.get("labeled_rows", 0))
            value = (perf.get("metrics") or {}).get(trig.metric)
            if labeled < rt.min_samples or value is None:
                reason = f"not evaluated: {labeled} labeled rows (min_samples {rt.min_samples})"
            else:
                low = trig.below is not None and value < trig.below
                high = trig.above is not None and value > trig.above
                fired = low or high
                reason = f"{trig.metric}={value:.4f}" + (
                    f" < {trig.below}" if low else f" > {trig.above}" if high else " within bounds"
                )
        elif trig.kind == "data_quality":
            from mlspec.runtime.monitoring.quality import violations

            if "data_quality" not in report or not enough:
                reason = (
                    f"not evaluated: {rows} rows, fewer than min_samples {rt.min_samples}"
                    if not enough
                    else "no data quality computed"
                )
            else:
                broken = violations(report["data_quality"], trig)
                fired = bool(broken)
                reason = "; ".join(broken) if broken else "every feature within its bounds"
        elif trig.kind == "volume":
            fired = state["volume_rows"] >= (trig.new_rows or 0)
            reason = f"{state['volume_rows']} new rows since the last retraining (need {trig.new_rows})"
        out["triggers"].append({"id": trig.id, "kind": trig.kind, "fired": bool(fired), "reason": reason})
    fired_ids = [t["id"] for t in out["triggers"] if t["fired"]]
    last_fired = _ts(state.get("last_fired"))
    cooldown_until = (
        last_fired + pd.Timedelta(seconds=rt.cooldown_seconds) if last_fired is not None else None
    )
    if fired_ids and cooldown_until is not None and now < cooldown_until:
        out["suppressed_triggers"] = fired_ids
        out["cooldown_until"] = cooldown_until.isoformat()
    else:
        out["fired_triggers"] = fired_ids
        out["retrain"] = bool(fired_ids)
    state["last_checked"] = now.isoformat()
    write_state(state_path, state)
    return out


def mark_fired(state_path: str, now: pd.Timestamp, triggers: list[str]) -> None:
    """Record an accepted retraining: starts the cooldown and resets the volume count."""
    state = read_state(state_path)
    state.update(last_fired=now.isoformat(), last_fired_triggers=triggers, volume_rows=0)
    write_state(state_path, state)


# ----------------------------------------------------------------------------------------------- sinks


def _find_spec(ir) -> str | None:
    """The spec file under the CWD: its project path, else a file of the same name with the IR's spec content."""
    from mlspec.diagnostics import MlspecError
    from mlspec.loader import load_file

    if Path(ir.system.spec_path).is_file():
        return ir.system.spec_path
    name = Path(ir.system.spec_path).name
    for candidate in sorted(Path(".").glob(f"**/{name}")):
        if ".mlspec" in candidate.parts or "generated" in candidate.parts:
            continue
        try:
            if load_file(str(candidate)).content_sha256 == ir.system.spec_sha256:
                return str(candidate)
        except MlspecError:
            continue
    return None


def _local(ir, result: dict[str, Any], wait: bool) -> dict[str, Any]:
    spec = os.environ.get("MLSPEC_RETRAIN_SPEC") or _find_spec(ir)
    if spec is None or not Path(spec).exists():
        raise SinkError(
            f"local sink: spec {ir.system.spec_path} not found from {Path.cwd()} (set MLSPEC_RETRAIN_SPEC)"
        )
    cmd = [sys.executable, "-m", "mlspec", "run", spec]
    if ir.system.environment:
        cmd += ["--env", ir.system.environment]
    log_dir = Path(".mlspec") / "monitoring"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{ir.system.name}-retrain.log"
    env = {**os.environ, "MLSPEC_RETRAIN_REASON": ",".join(result.get("fired_triggers", []))}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=not wait
        )
        if not wait:
            return {"sink": "local", "command": cmd, "pid": proc.pid, "log": str(log_path)}
        rc = proc.wait()
    if rc != 0:
        tail = log_path.read_text(errors="replace")[-2000:]
        raise SinkError(f"local sink: `{' '.join(cmd)}` exited with {rc}; log {log_path}:\n{tail}")
    return {"sink": "local", "command": cmd, "returncode": rc, "log": str(log_path)}


def _airflow(ir, result: dict[str, Any]) -> dict[str, Any]:
    import httpx

    base = os.environ.get("AIRFLOW_API_URL")
    if not base:
        raise SinkError("airflow sink: set AIRFLOW_API_URL (e.g. http://airflow-api-server:8080)")
    base = base.rstrip("/")
    uri = contracts.retrain_event_uri(ir.system.name)
    headers = {"Accept": "application/json"}
    with httpx.Client(timeout=float(os.environ.get("MLSPEC_SINK_TIMEOUT", "30"))) as client:
        try:
            token = os.environ.get("AIRFLOW_API_TOKEN")
            if not token and os.environ.get("AIRFLOW_USERNAME"):
                resp = client.post(
                    f"{base}/auth/token",
                    json={
                        "username": os.environ["AIRFLOW_USERNAME"],
                        "password": os.environ.get("AIRFLOW_PASSWORD", ""),
                    },
                )
                _raise(resp, "airflow sink: login")
                token = resp.json()["access_token"]
            if token:
                headers["Authorization"] = f"Bearer {token}"
            resp = client.get(
                f"{base}/api/v2/assets", params={"uri_pattern": uri, "limit": 100}, headers=headers
            )
            _raise(resp, "airflow sink: asset lookup")
            asset = next((a for a in resp.json().get("assets", []) if a.get("uri") == uri), None)
            if asset is None:
                raise SinkError(f"airflow sink: no asset with uri {uri} (is the retrain DAG deployed?)")
            extra = {
                "fired_triggers": result.get("fired_triggers", []),
                "system": ir.system.name,
                "drifted_features": result.get("drifted_features", []),
            }
            resp = client.post(
                f"{base}/api/v2/assets/events",
                json={"asset_id": asset["id"], "extra": extra},
                headers=headers,
            )
            _raise(resp, "airflow sink: create asset event")
        except httpx.HTTPError as exc:
            raise SinkError(f"airflow sink: cannot reach {base}: {exc}") from exc
        event = resp.json()
    return {"sink": "airflow", "asset_uri": uri, "asset_id": asset["id"], "event_id": event.get("id")}


def _raise(resp, what: str) -> None:
    if resp.status_code >= 400:
        raise SinkError(f"{what} failed: HTTP {resp.status_code} {resp.text[:500]}")


def _kubeflow(ir, result: dict[str, Any]) -> dict[str, Any]:
    package = os.environ.get("MLSPEC_KFP_PIPELINE") or f"generated/{ir.system.name}/kubeflow/pipeline.yaml"
    if not Path(package).exists():
        raise SinkError(f"kubeflow sink: pipeline package {package} not found (set MLSPEC_KFP_PIPELINE)")
    import kfp

    try:
        client = kfp.Client(
            host=os.environ.get("KFP_HOST"), namespace=os.environ.get("KFP_NAMESPACE", "kubeflow")
        )
        run = client.create_run_from_pipeline_package(
            pipeline_file=package,
            arguments={},
            run_name=f"{ir.system.name}-retrain",
            experiment_name=os.environ.get("KFP_EXPERIMENT", ir.system.name),
        )
    except Exception as exc:
        raise SinkError(f"kubeflow sink: cannot create a run: {type(exc).__name__}: {exc}") from exc
    return {"sink": "kubeflow", "run_id": run.run_id, "pipeline_package": package}


def send(
    ir,
    result: dict[str, Any],
    *,
    sink: str | None = None,
    wait: bool | None = None,
    now: pd.Timestamp | None = None,
) -> dict[str, Any]:
    """Hand a retraining decision to the sink; records it in the trigger state when accepted."""
    if not result.get("retrain"):
        return {"sent": False, "reason": "no trigger fired"}
    sink = sink or os.environ.get("MLSPEC_RETRAIN_SINK") or (ir.retraining.sink if ir.retraining else "local")
    if wait is None:
        wait = os.environ.get("MLSPEC_RETRAIN_WAIT", "") in ("1", "true", "yes")
    if sink == "local":
        sent = _local(ir, result, wait)
    elif sink == "airflow":
        sent = _airflow(ir, result)
    elif sink == "kubeflow":
        sent = _kubeflow(ir, result)
    elif sink == "orchestrator":
        sent = {"sink": "orchestrator", "note": "the orchestrator emits the retraining event"}
    else:
        raise SinkError(f"unknown retraining sink {sink!r}; use local, airflow, kubeflow or orchestrator")
    if result.get("state_path"):
        mark_fired(
            result["state_path"],
            now if now is not None else runtime_now(),
            list(result.get("fired_triggers", [])),
        )
    return {"sent": True, **sent}
