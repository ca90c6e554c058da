"""The monitoring pipeline's fan-out through the runtime's step contract: monitor-plan lists the window once,
each monitor-summarize --shard N summarizes its run of partitions, monitor merges them; the report's scores
equal one process's `mlspec monitor` to the last bit, the label-delayed performance window included.

Kubeflow (kfp.local) and Airflow (`airflow dags test`) run the same steps in backends/*/tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import monitor_scenario as scenario
import pandas as pd
import pytest

import mlspec
from mlspec.runtime import monitor
from mlspec.runtime.__main__ import main as run_step

pytestmark = pytest.mark.clock


@pytest.fixture()
def fanned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The churn variant with 3 shards and churn's 7-day label delay, a broken day of traffic logged now and a
    labeled one a week ago, and its IR written where the steps read it."""
    monkeypatch.chdir(tmp_path)
    ir = mlspec.lower(mlspec.load(scenario.fan_out_spec(tmp_path, ["kubeflow"], shards=3, label_delay="7d")))
    frame = scenario.broken_window()
    scenario.write_log(tmp_path / "log", frame)
    week_ago = scenario.NOW - pd.Timedelta(days=7)
    late_ids = scenario.write_log(tmp_path / "log", frame, now=week_ago)
    scenario.write_labels(tmp_path / "log", frame, late_ids)
    ir_path = tmp_path / "ir.json"
    ir_path.write_text(ir.model_dump_json())
    return ir, ir_path


def steps(pipeline) -> list[tuple[str, str | None]]:
    return [(s.id, s.fan_out and f"{s.fan_out.count} x {s.fan_out.index_arg}") for s in pipeline.steps]


def test_the_ir_fans_the_window_out_and_merges_it(fanned) -> None:
    ir, _ = fanned
    assert steps(ir.pipeline("monitoring")) == [
        ("monitor-plan", None),
        ("monitor-summarize", "3 x --shard"),
        ("monitor", None),
    ]
    assert ir.pipeline("monitoring").steps[2].depends_on == ["monitor-summarize"]


def test_shards_reduce_to_the_single_process_report(fanned, tmp_path: Path) -> None:
    ir, ir_path = fanned
    for run in ("single", "fanned"):
        scenario.write_reference(tmp_path / run, ir)
    single = monitor.run_monitor(ir, "single", state=str(tmp_path / "single-state.json"))

    common = ["--ir", str(ir_path), "--run-dir", "fanned"]
    assert run_step(["monitor-plan", *common]) == 0
    plan = json.loads(Path("fanned/steps/monitor-plan/result.json").read_text())
    assert (plan["partitions"], plan["shards"]) == (24, 3)
    for shard in (2, 0, 1):  # any order: the merge follows the shard index
        assert run_step(["monitor-summarize", *common, "--shard", str(shard)]) == 0
    shard_rows = [
        json.loads(Path(f"fanned/steps/monitor-summarize/{i}/result.json").read_text())["rows"]
        for i in range(3)
    ]
    assert all(rows > 0 for rows in shard_rows) and sum(shard_rows) == single["rows"]
    assert run_step(["monitor", *common]) == 0

    report = json.loads(Path("fanned/steps/monitor/report.json").read_text())
    expected = json.loads(Path(single["report_path"]).read_text())
    assert report["performance"]["labeled_rows"] > 0 and report["drift"]["drifted_features"]
    assert scenario.scores(report) == scenario.scores(expected)


def test_a_missing_shard_fails_the_merge_with_its_number(fanned, tmp_path: Path, capsys) -> None:
    _, ir_path = fanned
    scenario.write_reference(tmp_path / "fanned", fanned[0])
    common = ["--ir", str(ir_path), "--run-dir", "fanned"]
    assert run_step(["monitor-plan", *common]) == 0
    assert run_step(["monitor-summarize", *common, "--shard", "0"]) == 0
    assert run_step(["monitor", *common]) == 1
    assert "shard 1 has not succeeded" in capsys.readouterr().err
    assert run_step(["monitor-summarize", *common, "--shard", "3"]) == 1
    assert "0 <= N < 3" in capsys.readouterr().err
    assert run_step(["monitor-summarize", *common]) == 2
