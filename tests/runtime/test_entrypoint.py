"""The step entry point: usage errors (exit 2), inline IR, --output/--result-file, clean failures, S3 run dirs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlspec import api
from mlspec.runtime.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
CHURN = ROOT / "data" / "churn"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """validate-data records a training run in the trigger state, by default under ./.mlspec: not this repo's."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def ir_text() -> str:
    ir = api.lower(api.load(ROOT / "specs" / "churn.yaml"))
    updates = {"tuning": None, "hyperparameters": {"epochs": 2, "lr": 0.01, "batch_size": 256}}
    return ir.model_copy(update={"training": ir.training.model_copy(update=updates)}).to_json()


def data_args(
    train: str = str(CHURN / "train.csv"), reference: str = str(CHURN / "reference.csv")
) -> list[str]:
    return ["--data", f"train={train}", "--data", f"reference={reference}"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "required"),
        (["validate-data", "--run-dir", "x"], "--ir"),
        (["deploy", "--ir", "IR", "--run-dir", "x"], "unknown STEP_ID 'deploy'"),
        (["validate-data", "--ir", "IR", "--run-dir", "x", "--data", "novalue"], "--data expects KEY=VALUE"),
        (["validate-data", "--ir", "/nonexistent/ir.json", "--run-dir", "x"], "no such file"),
        (["validate-data", "--ir", '{"ir_version": "2.0"}', "--run-dir", "x"], "not a valid mlspec IR"),
        (["validate-data", "--ir", '{"ir_version": "1"}', "--run-dir", "x"], "recompile the spec"),
        (["tune-trial", "--ir", "IR", "--run-dir", "x"], "tune-trial needs --trial N"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, ir_text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [ir_text if a == "IR" else str(tmp_path / a) if a == "x" else a for a in argv]
    ir = api.lower(api.load(ROOT / "specs" / "churn.yaml"))
    if "tune-trial" in argv:  # churn's IR (with tuning) has a tune-trial step
        argv[argv.index(ir_text)] = ir.to_json()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "usage:" in err and "Traceback" not in err


def test_inline_ir_outputs_and_result_file(ir_text: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    argv = [
        "validate-data",
        "--ir",
        ir_text,
        "--run-dir",
        str(run),
        *data_args(),
        "--output",
        f"rows={tmp_path / 'out' / 'rows'}",
        "--output",
        f"checks_passed={tmp_path / 'out' / 'ok'}",
        "--output",
        f"data={tmp_path / 'out' / 'data'}",
        "--result-file",
        str(tmp_path / "xcom" / "return.json"),
    ]
    assert main(argv) == 0
    assert (tmp_path / "out" / "rows").read_text() == "5000"
    assert (tmp_path / "out" / "ok").read_text() == "true"
    assert json.loads((tmp_path / "out" / "data").read_text())["train"]["uri"].endswith("train.csv")
    result = json.loads((run / "steps" / "validate-data" / "result.json").read_text())
    assert result == json.loads((tmp_path / "xcom" / "return.json").read_text())
    assert result["status"] == "succeeded" and result["train_rows"] + result["test_rows"] == 5000
    assert (run / "data" / "train.parquet").exists() and (run / "data" / "test.parquet").exists()
    # An output key the result lacks is an error, not a silent empty file.
    assert main([*argv[:-6], "--output", f"nope={tmp_path / 'nope'}"]) == 1


def test_missing_data_fails_with_the_step_and_cause_and_no_traceback(ir_text: str, tmp_path: Path) -> None:
    ir_path = tmp_path / "ir.json"
    ir_path.write_text(ir_text)
    run = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlspec.runtime",
            "validate-data",
            "--ir",
            str(ir_path),
            "--run-dir",
            str(run),
            *data_args(train=str(tmp_path / "missing.csv")),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    assert "step 'validate-data' failed" in proc.stderr and "missing.csv" in proc.stderr
    assert "Traceback" not in proc.stderr
    result = json.loads((run / "steps" / "validate-data" / "result.json").read_text())
    assert result["status"] == "failed" and "does not exist" in result["error"]


def test_gated_steps_refuse_when_gates_failed(ir_text: str, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    (run / "steps" / "evaluate").mkdir(parents=True)
    (run / "steps" / "evaluate" / "result.json").write_text(
        json.dumps(
            {
                "step": "evaluate",
                "status": "succeeded",
                "gates_passed": False,
                "beats_champion": True,
                "gates": [{"passed": False, "message": "auc = 0.6000 misses >= 0.75"}],
            }
        )
    )
    for step in ("export", "register", "promote"):
        assert main([step, "--ir", ir_text, "--run-dir", str(run)]) == 1
        err = capsys.readouterr().err
        assert f"refusing to {step}: the evaluation gates did not pass (auc = 0.6000 misses >= 0.75)" in err
        assert json.loads((run / "steps" / step / "result.json").read_text())["status"] == "failed"


def test_steps_out_of_order_name_what_is_missing(ir_text: str, tmp_path: Path, capsys) -> None:
    assert main(["train", "--ir", ir_text, "--run-dir", str(tmp_path / "run")]) == 1
    assert "train needs a successful 'validate-data' step" in capsys.readouterr().err


@pytest.mark.engine
def test_s3_run_dir_and_data_on_moto(
    ir_text: str, aws_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    s3 = boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")
    s3.create_bucket(Bucket="runs")
    # every training run records itself in the system's trigger state, for the retraining cooldown
    artifacts = json.loads(ir_text)["infrastructure"]["artifacts_bucket"]
    s3.create_bucket(Bucket=artifacts)
    for name in ("train", "reference"):
        s3.upload_file(str(CHURN / f"{name}.csv"), "runs", f"data/{name}.csv")
    s3.put_object(Bucket="runs", Key="ir.json", Body=ir_text.encode())
    run = "s3://runs/pipeline/run-1"
    data = data_args("s3://runs/data/train.csv", "s3://runs/data/reference.csv")
    assert main(["validate-data", "--ir", "s3://runs/ir.json", "--run-dir", run, *data]) == 0
    assert main(["train", "--ir", "s3://runs/ir.json", "--run-dir", run]) == 0
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="runs", Prefix="pipeline/run-1/")["Contents"]}
    assert {
        "pipeline/run-1/data/train.parquet",
        "pipeline/run-1/steps/validate-data/result.json",
        "pipeline/run-1/model/model.pt",
        "pipeline/run-1/steps/train/result.json",
    } <= keys
    validated = json.loads(
        s3.get_object(Bucket="runs", Key="pipeline/run-1/steps/validate-data/result.json")["Body"].read()
    )
    assert validated["data"]["train"]["uri"] == "s3://runs/data/train.csv"
    state = [o["Key"] for o in s3.list_objects_v2(Bucket=artifacts).get("Contents", [])]
    assert any(key.endswith("trigger-state.json") for key in state), state


def test_monitor_and_trigger_retrain_dispatch(tmp_path: Path, capsys) -> None:
    ir = api.lower(api.load(ROOT / "specs" / "churn.yaml")).to_json()
    run = tmp_path / "run"
    (tmp_path / "empty-log").mkdir()
    assert (
        main(
            ["monitor", "--ir", ir, "--run-dir", str(run), "--data", f"predictions={tmp_path / 'empty-log'}"]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "step 'monitor' failed" in err and "Traceback" not in err
    (run / "steps" / "monitor").mkdir(parents=True, exist_ok=True)
    (run / "steps" / "monitor" / "result.json").write_text(
        json.dumps({"step": "monitor", "status": "succeeded", "retrain": False, "fired_triggers": []})
    )
    out = tmp_path / "triggered"
    assert main(["trigger-retrain", "--ir", ir, "--run-dir", str(run), "--output", f"triggered={out}"]) == 0
    assert out.read_text() == "false"
