"""`airflow dags test` runs the local-mode monitoring DAG whose monitor-summarize task is mapped over 3 shards
(dynamic task mapping: one task instance per map index, each the runtime step contract); the monitor task's
report has exactly the scores of one `mlspec monitor` process on the same window."""

from __future__ import annotations

import json
from pathlib import Path

import monitor_scenario as scenario
import pytest
from airflow_support import airflow, emit, task_states, write

import mlspec
from mlspec.runtime import monitor

pytestmark = [pytest.mark.engine, pytest.mark.clock, pytest.mark.slow]


def test_mapped_shards_reduce_to_the_single_process_scores(
    airflow_home: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    ir = mlspec.lower(mlspec.load(scenario.fan_out_spec(tmp_path, ["airflow"], shards=3)))
    assert ir.monitoring.owner == "airflow"
    scenario.register_champion(tracking, tmp_path / "reference", ir)
    frame = scenario.broken_window()
    scenario.write_labels(tmp_path / "log", frame, scenario.write_log(tmp_path / "log", frame))

    dags = write(emit(ir, "local")[0], tmp_path / "dags")
    env = {
        **airflow_home,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "MLFLOW_TRACKING_URI": tracking,
        "MLSPEC_TRIGGER_STATE": str(tmp_path / "trigger-state.json"),
        "AIRFLOW_VAR_MLSPEC_CHURN_WORKDIR": str(tmp_path),
        "AIRFLOW_VAR_MLSPEC_CHURN_RUNS_ROOT": str(tmp_path / "runs"),
    }
    airflow(["dags", "test", "churn_monitoring"], env)
    assert task_states(env, "churn_monitoring") == {
        ("monitor_plan", -1): "success",
        ("monitor_summarize", 0): "success",
        ("monitor_summarize", 1): "success",
        ("monitor_summarize", 2): "success",
        ("monitor", -1): "success",
    }

    (run,) = (tmp_path / "runs" / "churn_monitoring").iterdir()
    single = monitor.run_monitor(ir, str(tmp_path / "single"), state=str(tmp_path / "single-state.json"))
    report = json.loads((run / "steps" / "monitor" / "report.json").read_text())
    assert report["reference"] == "models:/churn/1"
    assert scenario.scores(report) == scenario.scores(json.loads(Path(single["report_path"]).read_text()))
