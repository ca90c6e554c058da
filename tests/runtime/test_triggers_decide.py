"""Retraining decisions (schedule, drift, performance, volume, cooldown, min samples) and the HTTP sinks."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from mlspec.runtime import triggers

pytestmark = pytest.mark.clock

NOW = pd.Timestamp("2025-07-01T12:00:00Z")  # a Tuesday


def _drift_report(rows: int, scores: dict[str, float], threshold: float = 0.2) -> dict:
    feats = {f: {"score": s, "drifted": s > threshold} for f, s in scores.items()}
    return {"rows": rows, "drift": {"threshold": threshold, "features": feats}}


def test_drift_trigger_threshold_min_samples_and_cooldown(churn_ir, tmp_path: Path) -> None:
    state = str(tmp_path / "state.json")
    # 0.22 is drift for the monitor (0.2) but below the trigger's own threshold (0.25)
    out = triggers.decide(churn_ir, _drift_report(5000, {"a": 0.22, "b": 0.01}), now=NOW, state_path=state)
    assert not out["retrain"]
    out = triggers.decide(churn_ir, _drift_report(500, {"a": 0.9}), now=NOW, state_path=state)
    assert not out["retrain"]  # retraining.min_samples is 1000
    assert "fewer than min_samples 1000" in next(t for t in out["triggers"] if t["id"] == "drift-1")["reason"]
    out = triggers.decide(churn_ir, _drift_report(5000, {"a": 0.9}), now=NOW, state_path=state)
    assert out["retrain"] and out["fired_triggers"] == ["drift-1"]
    triggers.mark_fired(state, NOW, out["fired_triggers"])  # what send() records once the sink accepted
    later = NOW + pd.Timedelta(hours=23)
    out = triggers.decide(churn_ir, _drift_report(5000, {"a": 0.9}), now=later, state_path=state)
    assert not out["retrain"] and out["suppressed_triggers"] == ["drift-1"]  # 24h cooldown
    out = triggers.decide(
        churn_ir, _drift_report(5000, {"a": 0.9}), now=NOW + pd.Timedelta(hours=25), state_path=state
    )
    assert out["retrain"] and out["fired_triggers"] == ["drift-1"]


def test_performance_trigger(churn_ir, tmp_path: Path) -> None:
    state = str(tmp_path / "s.json")
    report = {"rows": 5000, "performance": {"labeled_rows": 2000, "metrics": {"auc": 0.71}}}
    out = triggers.decide(churn_ir, report, now=NOW, state_path=state)
    assert out["fired_triggers"] == ["performance-2"]
    report["performance"]["metrics"]["auc"] = 0.86
    assert not triggers.decide(churn_ir, report, now=NOW, state_path=state)["retrain"]
    report = {"rows": 5000, "performance": {"labeled_rows": 10, "metrics": {"auc": 0.1}}}
    assert not triggers.decide(churn_ir, report, now=NOW, state_path=state)["retrain"]  # too few labels


def _owned_by(ir, owner: str):
    return ir.model_copy(update={"retraining": ir.retraining.model_copy(update={"owner": owner})})


def test_schedule_trigger_belongs_to_the_orchestrator(churn_ir, tmp_path: Path) -> None:
    # churn's loop is owned by Airflow, whose training DAG runs on the cron: the monitor never fires it
    assert churn_ir.retraining.owner == "airflow"
    state = str(tmp_path / "s.json")
    monday = pd.Timestamp("2025-07-07T03:30:00Z")  # cron "0 3 * * 1" ticked at 03:00
    out = triggers.decide(churn_ir, {"rows": 0}, now=monday, state_path=state)
    assert not out["retrain"]
    schedule = next(t for t in out["triggers"] if t["id"] == "schedule-0")
    assert "airflow scheduler starts training" in schedule["reason"]


def test_schedule_trigger_fires_once_per_tick_when_nobody_else_schedules(churn_ir, tmp_path: Path) -> None:
    local = _owned_by(churn_ir, "local")
    state = str(tmp_path / "s.json")
    assert not triggers.decide(local, {"rows": 0}, now=NOW, state_path=state)["retrain"]
    monday = pd.Timestamp("2025-07-07T03:30:00Z")  # cron "0 3 * * 1" ticked at 03:00
    assert triggers.decide(local, {"rows": 0}, now=monday, state_path=state)["fired_triggers"] == [
        "schedule-0"
    ]
    again = monday + pd.Timedelta(minutes=30)
    assert not triggers.decide(local, {"rows": 0}, now=again, state_path=state)["retrain"]


def test_a_training_run_started_by_the_cron_holds_the_cooldown(churn_ir, tmp_path: Path) -> None:
    state = str(tmp_path / "s.json")
    monday = pd.Timestamp("2025-07-07T03:00:00Z")
    triggers.record_run(state, monday, started_by="cron")  # the orchestrator's training run records itself
    out = triggers.decide(
        churn_ir, _drift_report(5000, {"a": 0.9}), now=monday + pd.Timedelta(hours=1), state_path=state
    )
    assert not out["retrain"] and out["suppressed_triggers"] == ["drift-1"]
    recorded = triggers.read_state(state)
    assert recorded["history"][-1]["started_by"] == "cron" and recorded["volume_rows"] == 0


def test_dry_run_writes_nothing(churn_ir, tmp_path: Path) -> None:
    state = tmp_path / "s.json"
    out = triggers.decide(
        churn_ir, _drift_report(5000, {"a": 0.9}), now=NOW, state_path=str(state), dry_run=True
    )
    assert out["retrain"] and not state.exists()


def test_a_refused_retraining_gives_the_cooldown_back(churn_ir, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_API_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    state = str(tmp_path / "s.json")
    decision = triggers.decide(churn_ir, _drift_report(5000, {"a": 0.9}), now=NOW, state_path=state)
    assert decision["retrain"] and triggers.read_state(state)["pending"]["claim"] == decision["claim"]
    with pytest.raises(triggers.SinkError, match="cannot reach"):
        triggers.send(churn_ir, decision, sink="airflow", now=NOW)
    assert "last_fired" not in triggers.read_state(state) and "pending" not in triggers.read_state(state)
    again = triggers.decide(churn_ir, _drift_report(5000, {"a": 0.9}), now=NOW, state_path=state)
    assert again["retrain"]  # the next monitor run tries again


def test_volume_trigger_accumulates_new_rows(churn_ir, tmp_path: Path) -> None:
    state = str(tmp_path / "s.json")
    ts = pd.Series(pd.date_range(end=NOW, periods=60_000, freq="s", tz="UTC"))
    out = triggers.decide(churn_ir, {"rows": 60_000}, now=NOW, state_path=state, timestamps=ts)
    assert not out["retrain"]  # 60k < 100k
    ts2 = pd.Series(pd.date_range(end=NOW + pd.Timedelta(hours=12), periods=80_000, freq="s", tz="UTC"))
    out = triggers.decide(
        churn_ir, {"rows": 80_000}, now=NOW + pd.Timedelta(hours=12), state_path=state, timestamps=ts2
    )
    assert json.loads(Path(state).read_text())["volume_rows"] == 60_000 + 12 * 3600  # overlap counted once
    assert out["fired_triggers"] == ["volume-3"]
    triggers.mark_fired(state, NOW, ["volume-3"])
    assert json.loads(Path(state).read_text())["volume_rows"] == 0


class _Recorder(BaseHTTPRequestHandler):
    """A tiny Airflow-3-shaped REST API that records every request."""

    requests: list[dict] = []

    def _reply(self, code: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _record(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        entry = {
            "method": self.command,
            "path": self.path,
            "auth": self.headers.get("Authorization"),
            "body": body,
        }
        type(self).requests.append(entry)
        return entry

    def do_GET(self) -> None:
        self._record()
        if self.path.startswith("/api/v2/assets?"):
            self._reply(
                200,
                {
                    "assets": [{"id": 7, "uri": "mlspec://churn/retrain", "name": "churn_retrain"}],
                    "total_entries": 1,
                },
            )
        else:
            self._reply(404, {"detail": "not found"})

    def do_POST(self) -> None:
        entry = self._record()
        if self.path == "/auth/token":
            ok = entry["body"] == {"username": "admin", "password": "pw"}
            self._reply(201 if ok else 401, {"access_token": "tok-123"} if ok else {"detail": "bad login"})
        elif self.path == "/api/v2/assets/events":
            self._reply(
                200, {"id": 42, "asset_id": entry["body"]["asset_id"], "extra": entry["body"]["extra"]}
            )
        else:
            self._reply(404, {"detail": "not found"})

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def recorder():
    _Recorder.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.engine
def test_airflow_sink_creates_an_asset_event(
    churn_ir, recorder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in {
        "AIRFLOW_API_URL": recorder,
        "AIRFLOW_USERNAME": "admin",
        "AIRFLOW_PASSWORD": "pw",  # pragma: allowlist secret
    }.items():
        monkeypatch.setenv(key, value)
    state = str(tmp_path / "s.json")
    result = triggers.decide(churn_ir, _drift_report(5000, {"a": 0.9}), now=NOW, state_path=state)
    result["drifted_features"] = ["monthly_charges"]
    sent = triggers.send(churn_ir, result, sink="airflow", now=NOW)
    assert sent == {
        "sent": True,
        "sink": "airflow",
        "asset_uri": "mlspec://churn/retrain",
        "asset_id": 7,
        "event_id": 42,
    }
    login, lookup, event = _Recorder.requests
    assert login["path"] == "/auth/token"
    assert (
        lookup["path"].startswith("/api/v2/assets?")
        and "uri_pattern=mlspec%3A%2F%2Fchurn%2Fretrain" in lookup["path"]
    )
    assert event["path"] == "/api/v2/assets/events" and event["auth"] == "Bearer tok-123"
    assert event["body"] == {
        "asset_id": 7,
        "extra": {"fired_triggers": ["drift-1"], "system": "churn", "drifted_features": ["monthly_charges"]},
    }
    assert json.loads(Path(state).read_text())["last_fired"] == NOW.isoformat()  # cooldown starts


@pytest.mark.engine
def test_airflow_sink_errors_are_clear(churn_ir, recorder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_API_URL", recorder)
    monkeypatch.setenv("AIRFLOW_USERNAME", "admin")
    monkeypatch.setenv("AIRFLOW_PASSWORD", "wrong")
    with pytest.raises(triggers.SinkError, match="login failed: HTTP 401"):
        triggers.send(churn_ir, {"retrain": True, "fired_triggers": ["drift-1"]}, sink="airflow")
    monkeypatch.setenv("AIRFLOW_API_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.delenv("AIRFLOW_USERNAME")
    with pytest.raises(triggers.SinkError, match="cannot reach"):
        triggers.send(churn_ir, {"retrain": True, "fired_triggers": ["drift-1"]}, sink="airflow")


def test_nothing_is_sent_without_a_decision(churn_ir) -> None:
    assert triggers.send(churn_ir, {"retrain": False}) == {"sent": False, "reason": "no trigger fired"}


def test_orchestrator_sink_records_the_cooldown_and_sends_nothing(churn_ir, tmp_path: Path) -> None:
    state = str(tmp_path / "state.json")
    decision = triggers.decide(churn_ir, _drift_report(5000, {"a": 0.9}), now=NOW, state_path=state)
    assert decision["retrain"]
    sent = triggers.send(churn_ir, decision, sink="orchestrator", now=NOW)
    assert sent == {
        "sent": True,
        "sink": "orchestrator",
        "note": "the orchestrator emits the retraining event",
    }
    later = triggers.decide(
        churn_ir, _drift_report(5000, {"a": 0.9}), now=NOW + pd.Timedelta(hours=1), state_path=state
    )
    assert not later["retrain"] and later["suppressed_triggers"] == ["drift-1"]
