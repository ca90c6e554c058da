"""The first hour, end to end with the real runtime: `mlspec init --example churn`, `mlspec run` (with its
next-step hints), `mlspec monitor --format json|text` on logged predictions, and `mlspec compile` writing
nothing outside --out."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from helpers_core import CHURN, ROOT, run_cli

from mlspec import clock

pytestmark = [pytest.mark.engine, pytest.mark.slow]
CONTRACTS = ["month-to-month", "one-year", "two-year"]


def _log_predictions(project: Path, rows: int) -> Path:
    """A prediction log as the server writes it (categories as value indexes), ending now."""
    with open(project / "data" / "churn" / "train.csv") as fh:
        records = list(csv.DictReader(fh))[:rows]
    now = clock.now()  # the suite pins it (MLSPEC_NOW); the monitor reads the same clock
    log = project / "predictions" / f"date={now:%Y-%m-%d}"
    log.mkdir(parents=True)
    with open(log / "part.jsonl", "w") as out:
        for i, r in enumerate(records):
            inputs = {
                "tenure_months": float(r["tenure_months"]),
                "monthly_charges": float(r["monthly_charges"]),
                "support_calls": float(r["support_calls"]),
                "contract": float(CONTRACTS.index(r["contract"])),
            }
            ts = (now - timedelta(seconds=10 * i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            out.write(
                json.dumps(
                    {
                        "ts": ts,
                        "request_id": f"r{i}",
                        "model_version": "1",
                        "row": 0,
                        "inputs": inputs,
                        "outputs": [[0.5, 0.5]],
                    }
                )
                + "\n"
            )
    return project / "predictions"


def test_init_example_runs_end_to_end_then_monitors(tmp_path: Path) -> None:
    assert run_cli("init", "--example", "churn", cwd=tmp_path).returncode == 0
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    run = subprocess.run(
        [sys.executable, "-m", "mlspec", "run", "mlops.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "champion is models:/churn@champion (version 1)" in run.stdout
    assert "\x1b[" not in run.stdout  # piped: no progress bar, no escape codes
    hints = run.stdout.split("next:\n", 1)[1]
    assert "mlflow ui --backend-store-uri sqlite:///.mlspec/mlflow.db" in hints
    assert "mlspec serve mlops.yaml" in hints and "mlspec compile mlops.yaml" in hints

    log = _log_predictions(tmp_path, 600)
    as_json = run_cli("monitor", "mlops.yaml", "--log", str(log), "--format", "json", cwd=tmp_path, env=env)
    assert as_json.returncode == 0, as_json.stderr
    result = json.loads(as_json.stdout)  # the whole stream is one JSON document
    assert result["rows"] == 600 and result["drifted_features"] == [] and result["trigger"] is None
    as_text = run_cli("monitor", "mlops.yaml", "--log", str(log), cwd=tmp_path, env=env)
    assert as_text.returncode == 0 and as_text.stdout.startswith("monitor churn: 600 predictions")
    assert "{" not in as_text.stdout


def test_runtime_imports_are_checked_before_the_first_step(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    # a Python where onnxruntime is not installed: refuse to import it, as a missing package would
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'onnxruntime':\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    pythonpath = os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", str(ROOT))])
    result = run_cli("run", str(CHURN), cwd=tmp_path, env={"PYTHONPATH": pythonpath})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "not installed: onnxruntime" in result.stderr and "pip install 'mlspec[runtime]'" in result.stderr
    assert not (tmp_path / ".mlspec").exists()  # nothing ran


def test_compile_writes_nothing_outside_out(tmp_path: Path) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    out = tmp_path / "out"
    result = run_cli("compile", str(CHURN), "--out", str(out), cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {p.name for p in (out / "churn").iterdir()} >= {"kubeflow", "airflow", "terraform", "kubernetes"}
    assert list(work.iterdir()) == []  # no cdktf.out/ or anything else in the working directory
