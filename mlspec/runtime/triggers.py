"""Retraining decisions and the trigger state they live in.

`decide` evaluates the IR's triggers on a monitor report:
  schedule    owned by the orchestrator (`retraining.owner`), which starts training on the cron itself; the
              monitor evaluates it only when nobody does (owner `local`): a tick passed since the last check;
  drift       at least `features` features score above the trigger's threshold (default: the monitor's);
  performance the live metric is below `below` / above `above`;
  volume      at least `new_rows` predictions were logged since the last retraining;
  data_quality a feature's null, out-of-range or unseen-category rate is above the trigger's bound.
Drift, performance and data quality need `retraining.min_samples` rows (labeled rows for performance). A trigger that fires
within `cooldown` of the last retraining is suppressed.

The state (`retraining.state_uri`: last check, last retraining, the volume count, the claim of a retraining
being sent) is one small JSON document updated with conditional writes (mlspec.runtime.state), so monitors
racing on it never lose an update and never fire twice: a decision to retrain claims the cooldown in the same
write that records it. `send` then hands it to the sink (mlspec.runtime.sinks) and confirms the claim, or
releases it when the sink refused. Every training run, however it started, records itself with
`record_run` (the validate-data step calls it), so a cron-started run holds the cooldown too.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import pandas as pd

from mlspec import contracts
from mlspec.runtime import StepError, state
from mlspec.runtime import now as runtime_now

HISTORY_KEEP = 20  # newest retraining records kept in the state


class SinkError(StepError):
    """The sink refused or could not be reached; the message names the sink and the cause."""


# ----------------------------------------------------------------------------------------------- where


def default_state_path(ir, run_dir: str) -> str:
    """MLSPEC_TRIGGER_STATE; else the IR's state for runs in the deployment (a remote run dir, or a system
    whose state is local anyway); else a file of its own under .mlspec/monitoring/, so that a laptop run of a
    deployed spec never touches the deployment's state."""
    if env := os.environ.get("MLSPEC_TRIGGER_STATE"):
        return env
    uri = ir.retraining.state_uri if ir.retraining else ""
    if uri and ("://" not in uri or "://" in run_dir):
        return uri
    suffix = f"-{ir.system.environment}" if ir.system.environment else ""
    return str(Path(".mlspec") / "monitoring" / f"{ir.system.name}{suffix}-trigger-state.json")


def read_state(path: str) -> dict[str, Any]:
    return state.read(path)


def _ts(value: str | None) -> pd.Timestamp | None:
    return None if not value else pd.Timestamp(value).tz_convert("UTC")


def volume_cutoff(state_path: str) -> pd.Timestamp | None:
    """Rows logged after this are new for the volume trigger (None: every row in the window is)."""
    return _ts(read_state(state_path).get("volume_counted_until"))


# ----------------------------------------------------------------------------------------------- decisions


def _schedule_due(cron: str, since: pd.Timestamp, now: pd.Timestamp) -> tuple[bool, str]:
    from croniter import croniter

    nxt = pd.Timestamp(croniter(cron, since.to_pydatetime()).get_next(float), unit="s", tz="UTC")
    return nxt <= now, f"next tick of '{cron}' after {since.isoformat()} is {nxt.isoformat()}"


def _not_evaluated(rows: int, min_samples: int, what: str) -> str:
    return f"not evaluated: {rows} rows, fewer than min_samples {min_samples}" if rows < min_samples else what


def _evaluate(ir, report: dict[str, Any], trig, st: dict[str, Any], now: pd.Timestamp) -> tuple[bool, str]:
    rt = ir.retraining
    rows = int(report.get("rows", 0))
    enough = rows >= rt.min_samples
    if trig.kind == "schedule":
        if rt.owner != "local":
            return (
                False,
                f"the {rt.owner} scheduler starts training on '{trig.cron}'; the monitor never fires it",
            )
        window = ir.monitoring.window_seconds if ir.monitoring else 86400
        return _schedule_due(
            trig.cron, _ts(st.get("last_checked")) or now - pd.Timedelta(seconds=window), now
        )
    if trig.kind == "drift":
        d = report.get("drift")
        if d is None or not enough:
            return False, _not_evaluated(rows, rt.min_samples, "no drift computed")
        threshold = trig.threshold if trig.threshold is not None else d["threshold"]
        over = [f for f, r in d["features"].items() if r["score"] is None or r["score"] > threshold]
        need = trig.features or 1
        return len(over) >= need, f"{len(over)} features above {threshold} (need {need})" + (
            f": {', '.join(over)}" if over else ""
        )
    if trig.kind == "performance":
        perf = report.get("performance") or {}
        labeled = int(perf.get("labeled_rows", 0))
        value = (perf.get("metrics") or {}).get(trig.metric)
        if labeled < rt.min_samples or value is None:
            return False, f"not evaluated: {labeled} labeled rows (min_samples {rt.min_samples})"
        low = trig.below is not None and value < trig.below
        high = trig.above is not None and value > trig.above
        return low or high, f"{trig.metric}={value:.4f}" + (
            f" < {trig.below}" if low else f" > {trig.above}" if high else " within bounds"
        )
    if trig.kind == "data_quality":
        from mlspec.runtime.monitoring.quality import violations

        if "data_quality" not in report or not enough:
            return False, _not_evaluated(rows, rt.min_samples, "no data quality computed")
        broken = violations(report["data_quality"], trig)
        return bool(broken), "; ".join(broken) if broken else "every feature within its bounds"
    # volume
    return (
        st["volume_rows"] >= (trig.new_rows or 0),
        f"{st['volume_rows']} new rows since the last retraining (need {trig.new_rows})",
    )


def decide(
    ir,
    report: dict[str, Any],
    *,
    now: pd.Timestamp,
    state_path: str,
    timestamps: pd.Series | None = None,
    new_rows: tuple[int, pd.Timestamp | None] | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """{"retrain", "fired_triggers", "suppressed_triggers", "triggers": [...], "state_path", "claim"}.

    Updates the state in one conditional write: the volume count, the time of this check, and, when it
    decides to retrain, a claim on the cooldown that `send` confirms or releases. `dry_run` reads the state
    and writes nothing. The volume trigger counts the window's rows logged after the state's cutoff: from
    their `timestamps`, or as `new_rows` = (count after volume_cutoff(state_path), newest timestamp).
    """
    empty = {"retrain": False, "fired_triggers": [], "suppressed_triggers": [], "triggers": []}
    if ir.retraining is None:
        return {**empty, "state_path": state_path}
    rt = ir.retraining

    def change(st: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {**empty, "triggers": [], "state_path": state_path, "dry_run": dry_run}
        counted_until = _ts(st.get("volume_counted_until"))
        counted = new_rows
        if timestamps is not None and len(timestamps):
            after = int((timestamps > counted_until).sum()) if counted_until is not None else len(timestamps)
            counted = (after, timestamps.max())
        new, newest = counted if counted is not None else (0, None)
        if newest is not None:
            st["volume_counted_until"] = max(newest, counted_until or newest).isoformat()
        st["volume_rows"] = int(st.get("volume_rows", 0)) + new
        for trig in rt.triggers:
            fired, reason = _evaluate(ir, report, trig, st, now)
            out["triggers"].append({"id": trig.id, "kind": trig.kind, "fired": bool(fired), "reason": reason})
        fired_ids = [t["id"] for t in out["triggers"] if t["fired"]]
        last = _ts(st.get("last_fired"))
        cooldown_until = last + pd.Timedelta(seconds=rt.cooldown_seconds) if last is not None else None
        if fired_ids and cooldown_until is not None and now < cooldown_until:
            out["suppressed_triggers"] = fired_ids
            out["cooldown_until"] = cooldown_until.isoformat()
        elif fired_ids:
            out["fired_triggers"] = fired_ids
            out["retrain"] = True
            claim = secrets.token_hex(8)
            st["pending"] = {
                "claim": claim,
                "triggers": fired_ids,
                "at": now.isoformat(),
                "restore": {k: st.get(k) for k in ("last_fired", "last_fired_triggers")},
            }
            st["last_fired"] = now.isoformat()  # the cooldown starts with the claim: a racing monitor waits
            out["claim"] = claim
        st["last_checked"] = now.isoformat()
        return out

    if dry_run:
        return change(read_state(state_path))
    return state.update(state_path, change)


def confirm(state_path: str, claim: str | None, now: pd.Timestamp, sent: dict[str, Any]) -> None:
    """The sink accepted the retraining the claim stands for: record it, reset the volume count."""

    def change(st: dict[str, Any]) -> None:
        pending = st.get("pending") or {}
        if claim is not None and pending.get("claim") != claim:
            return  # a training run recorded itself meanwhile; that record stands
        triggers = pending.get("triggers", [])
        st.pop("pending", None)
        st.update(last_fired=pending.get("at", now.isoformat()), last_fired_triggers=triggers, volume_rows=0)
        _append(st, {"at": now.isoformat(), "event": "sent", "triggers": triggers, "sink": sent.get("sink")})

    state.update(state_path, change)


def release(state_path: str, claim: str | None) -> None:
    """The sink refused: give the claimed cooldown back, so that the next monitor run tries again."""

    def change(st: dict[str, Any]) -> None:
        pending = st.get("pending") or {}
        if claim is None or pending.get("claim") != claim:
            return
        st.pop("pending")
        for key, value in pending.get("restore", {}).items():
            if value is None:
                st.pop(key, None)
            else:
                st[key] = value

    state.update(state_path, change)


def record_run(state_path: str, now: pd.Timestamp, *, started_by: str) -> dict[str, Any]:
    """A training run started (from a monitor's event, a cron tick or by hand): the cooldown starts now and the
    volume count restarts. Returns the record."""
    entry = {"at": now.isoformat(), "event": "training run", "started_by": started_by}

    def change(st: dict[str, Any]) -> None:
        pending = st.pop("pending", None)
        if pending:
            entry["claim"] = pending.get("claim")
            entry["triggers"] = pending.get("triggers", [])
            st["last_fired_triggers"] = pending.get("triggers", [])
        st.update(last_fired=now.isoformat(), volume_rows=0)
        _append(st, entry)

    state.update(state_path, change)
    return entry


def mark_fired(state_path: str, now: pd.Timestamp, triggers: list[str]) -> None:
    """Record a retraining accepted outside `decide` (e.g. started by hand): cooldown, volume reset."""

    def change(st: dict[str, Any]) -> None:
        st.pop("pending", None)
        st.update(last_fired=now.isoformat(), last_fired_triggers=triggers, volume_rows=0)
        _append(st, {"at": now.isoformat(), "event": "sent", "triggers": triggers})

    state.update(state_path, change)


def _append(st: dict[str, Any], entry: dict[str, Any]) -> None:
    st["history"] = [*st.get("history", []), entry][-HISTORY_KEEP:]


# ----------------------------------------------------------------------------------------------- sending


def send(
    ir,
    result: dict[str, Any],
    *,
    sink: str | None = None,
    wait: bool | None = None,
    now: pd.Timestamp | None = None,
) -> dict[str, Any]:
    """Hand a retraining decision to the sink; confirm its claim when accepted, release it when refused."""
    from mlspec.runtime import sinks

    if not result.get("retrain"):
        return {"sent": False, "reason": "no trigger fired"}
    sink = sink or os.environ.get("MLSPEC_RETRAIN_SINK") or (ir.retraining.sink if ir.retraining else "local")
    if wait is None:
        wait = os.environ.get("MLSPEC_RETRAIN_WAIT", "") in ("1", "true", "yes")
    now = now if now is not None else runtime_now()
    path, claim = result.get("state_path"), result.get("claim")
    try:
        sent = sinks.send(ir, result, sink, wait=wait)
    except SinkError:
        if path:
            release(path, claim)
        raise
    if path:
        confirm(path, claim, now, sent)
    return {"sent": True, **sent}


def retrain_reason() -> str:
    """Why this training run started, when the sink that started it said so."""
    return os.environ.get(contracts.RETRAIN_REASON_ENV, "")
