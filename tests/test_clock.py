"""The one clock: MLSPEC_NOW and --now pin every time-dependent decision, in this process and in the steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlspec import clock

pytestmark = pytest.mark.clock
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30T03:30:00Z", datetime(2026, 11, 30, 3, 30, tzinfo=UTC)),
        ("2026-11-30T03:30:00", datetime(2026, 11, 30, 3, 30, tzinfo=UTC)),  # no zone: UTC
        ("2026-10-25T02:30:00+02:00", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),  # CEST, before DST ends
        ("2026-10-25T02:30:00+01:00", datetime(2026, 10, 25, 1, 30, tzinfo=UTC)),  # CET, the repeated hour
        ("2028-02-29", datetime(2028, 2, 29, tzinfo=UTC)),
    ],
)
def test_instants_parse_to_utc(text: str, expected: datetime) -> None:
    assert clock.parse_instant(text) == expected


def test_the_suite_runs_on_a_pinned_clock() -> None:
    assert clock.now() == clock.parse_instant(os.environ[clock.ENV_VAR])


def test_without_a_pin_the_clock_is_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(clock.ENV_VAR)
    before = datetime.now(UTC)
    assert before <= clock.now() <= datetime.now(UTC)


def test_a_malformed_pin_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock.ENV_VAR, "next tuesday")
    with pytest.raises(clock.ClockError, match="MLSPEC_NOW: 'next tuesday' is not an ISO 8601 instant"):
        clock.now()


def test_pin_sets_the_canonical_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock.ENV_VAR, "2000-01-01T00:00:00Z")  # restored after the test
    assert clock.pin("2026-10-25T02:30:00+01:00") == "2026-10-25T01:30:00Z"
    assert clock.now() == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


def test_freshness_reads_the_clock_when_not_given_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    from mlspec.runtime import checks

    frame = pd.DataFrame({"t": ["2025-06-29T22:06:38Z"]})
    spec = {"check": "freshness", "column": "t", "max_age": "7d"}
    monkeypatch.setenv(clock.ENV_VAR, "2025-07-01T12:00:00Z")
    assert checks.check_freshness(spec, frame)["passed"]
    monkeypatch.setenv(clock.ENV_VAR, "2025-07-07T00:00:00Z")
    result = checks.check_freshness(spec, frame)
    assert not result["passed"] and result["age_seconds"] == pytest.approx(7 * 86400 + 6802)


def test_schedule_trigger_reads_the_clock_through_the_monitor_cli(tmp_path: Path) -> None:
    """`mlspec monitor --now` decides as of that instant: Monday 03:30 is past the '0 3 * * 1' tick."""
    import numpy as np
    import pandas as pd

    log = tmp_path / "log" / "date=2026-11-30"
    log.mkdir(parents=True)
    ref = pd.read_csv(ROOT / "data" / "churn" / "reference.csv").head(50)
    ts = pd.Timestamp("2026-11-30T03:00:00Z") - pd.to_timedelta(np.arange(len(ref)) * 60, unit="s")
    contracts = ["month-to-month", "one-year", "two-year"]
    with (log / "part.jsonl").open("w") as out:
        for i, (t, row) in enumerate(zip(ts, ref.itertuples(index=False), strict=True)):
            inputs = {
                "tenure_months": float(row.tenure_months),
                "monthly_charges": float(row.monthly_charges),
                "support_calls": float(row.support_calls),
                "contract": float(contracts.index(row.contract)),
            }
            record = {"ts": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "request_id": f"r{i}", "model_version": "1"}
            out.write(json.dumps({**record, "row": 0, "inputs": inputs, "outputs": [[0.5, 0.5]]}) + "\n")
    _save_reference_profile(tmp_path / "run" / "steps" / "export")
    # no orchestrator owns this loop (sink: local), so the monitor evaluates the schedule trigger itself
    spec = tmp_path / "churn.yaml"
    text = (ROOT / "specs" / "churn.yaml").read_text()
    spec.write_text(text.replace("  cooldown: 24h\n", "  cooldown: 24h\n  sink: local\n"))
    verdicts = {}
    for now in ("2026-11-30T03:30:00Z", "2026-11-30T02:30:00Z"):
        state = tmp_path / f"state-{now[11:13]}.json"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "mlspec",
                "monitor",
                str(spec),
                "--now",
                now,
                "--log",
                str(tmp_path / "log"),
                "--run-dir",
                str(tmp_path / "run"),
                "--dry-run",
            ],
            env={**os.environ, "PYTHONPATH": str(ROOT), "MLSPEC_TRIGGER_STATE": str(state)},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        report = json.loads((tmp_path / "run" / "steps" / "monitor" / "report.json").read_text())
        assert report["now"].startswith(now[:19])
        verdicts[now] = report["fired_triggers"]
    assert verdicts == {"2026-11-30T03:30:00Z": ["schedule-0"], "2026-11-30T02:30:00Z": []}


def test_a_malformed_now_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mlspec", "monitor", str(ROOT / "specs" / "churn.yaml"), "--now", "soon"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "'soon' is not an ISO 8601 instant" in proc.stderr and "Traceback" not in proc.stderr


def _save_reference_profile(export_dir: Path) -> None:
    """The reference profile the export step saves, built from the example's reference data."""
    import pandas as pd

    from mlspec import api
    from mlspec.runtime import drift

    ir = api.lower(api.load(ROOT / "specs" / "churn.yaml"))
    ref = pd.read_csv(ROOT / "data" / "churn" / "reference.csv")
    export_dir.mkdir(parents=True)
    profile = drift.reference_profile(ref, list(ir.data.features), ir.data.columns)
    (export_dir / "reference_profile.json").write_text(json.dumps(profile))
