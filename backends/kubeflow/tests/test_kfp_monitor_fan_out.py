"""The compiled monitor.yaml fans a day of logged traffic out over a ParallelFor of monitor-summarize tasks
(kfp.local runs each as the pipeline would in a cluster: the runtime step contract in a subprocess) and its
monitor task's report has exactly the scores of one `mlspec monitor` process on the same window."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import monitor_scenario as scenario
import pytest
import yaml

import mlspec
from mlspec.runtime import monitor

pytestmark = [pytest.mark.engine, pytest.mark.clock, pytest.mark.slow]


def test_parallel_for_shards_reduce_to_the_single_process_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kfp import components, local

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # no kfp context file of this machine's user
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    monkeypatch.setenv("MLSPEC_TRIGGER_STATE", str(tmp_path / "trigger-state.json"))
    spec = scenario.fan_out_spec(tmp_path, ["kubeflow"], shards=3)
    ir = mlspec.lower(mlspec.load(spec))
    assert ir.monitoring.owner == "kubeflow"
    scenario.register_champion(tracking, tmp_path / "reference", ir)
    frame = scenario.broken_window()
    scenario.write_labels(tmp_path / "log", frame, scenario.write_log(tmp_path / "log", frame))

    out = tmp_path / "generated"
    compile_ = [
        sys.executable,
        "-m",
        "mlspec",
        "compile",
        str(spec),
        "--target",
        "kubeflow",
        "--out",
        str(out),
    ]
    subprocess.run(compile_, check=True, cwd=tmp_path)
    package = out / "churn" / "kubeflow" / "monitor.yaml"
    pipeline_spec = next(yaml.safe_load_all(package.read_text()))  # the second document: platform settings
    loops = [t for t in pipeline_spec["root"]["dag"]["tasks"].values() if "parameterIterator" in t]
    assert [t["iteratorPolicy"]["parallelismLimit"] for t in loops] == [3]

    runs = tmp_path / "runs"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp-root"))
    components.load_component_from_file(str(package))(run_root=str(runs))
    (run,) = runs.iterdir()
    shards = [json.loads((run / f"steps/monitor-summarize/{i}/result.json").read_text()) for i in range(3)]
    assert [s["status"] for s in shards] == ["succeeded"] * 3 and all(s["rows"] > 0 for s in shards)

    single = monitor.run_monitor(ir, str(tmp_path / "single"), state=str(tmp_path / "single-state.json"))
    report = json.loads((run / "steps" / "monitor" / "report.json").read_text())
    assert report["reference"] == "models:/churn/1"
    assert scenario.scores(report) == scenario.scores(json.loads(Path(single["report_path"]).read_text()))
