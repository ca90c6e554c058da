"""Training: CPU reproducibility, a user entrypoint through the step contract, ONNX parity failures, DDP."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mlspec import api
from mlspec.runtime import StepError, evaluation, export, preprocessing, training
from mlspec.runtime.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
CHURN = ROOT / "data" / "churn"


def fast_ir(**training_updates):
    ir = api.lower(api.load(ROOT / "specs" / "churn.yaml"))
    updates = {
        "tuning": None,
        "hyperparameters": {"epochs": 3, "lr": 0.01, "batch_size": 256},
        **training_updates,
    }
    return ir.model_copy(update={"training": ir.training.model_copy(update=updates)})


def step_args(step: str, ir_path: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        step,
        "--ir",
        str(ir_path),
        "--run-dir",
        str(run_dir),
        "--data",
        f"train={CHURN / 'train.csv'}",
        "--data",
        f"reference={CHURN / 'reference.csv'}",
        *extra,
    ]


@pytest.fixture()
def local_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return uri


def test_builtin_mlp_is_reproducible_on_cpu(tmp_path: Path) -> None:
    ir = fast_ir()
    frame = pd.read_csv(CHURN / "train.csv").head(1500)
    train, test = frame.iloc[:1200], frame.iloc[1200:]
    runs = []
    for i in range(2):
        model, spec, history = training.train_model(
            ir, train, training.hyperparameters(ir), 7, tmp_path / str(i)
        )
        runs.append((training.predict(model, preprocessing.encode(test, spec)), history))
    (p1, h1), (p2, h2) = runs
    assert h1["train_loss"] == h2["train_loss"] and len(h1["train_loss"]) == 3
    np.testing.assert_array_equal(p1, p2)
    assert p1.shape == (300, 2) and np.allclose(p1.sum(axis=1), 1.0, atol=1e-5)
    other, spec, _ = training.train_model(ir, train, training.hyperparameters(ir), 8, tmp_path / "other")
    assert not np.array_equal(
        training.predict(other, preprocessing.encode(test, spec)), p1
    )  # the seed matters


def test_preprocessing_is_in_the_graph_nan_and_unknown_categories(tmp_path: Path) -> None:
    ir = fast_ir()
    frame = pd.read_csv(CHURN / "train.csv").head(600)
    model, spec, _ = training.train_model(ir, frame, training.hyperparameters(ir), 0, tmp_path)
    odd = frame.head(3).copy()
    odd.loc[odd.index[0], "tenure_months"] = np.nan
    odd.loc[odd.index[1], "contract"] = "lifetime"  # unseen category -> all-zero one-hot, not an error
    X = preprocessing.encode(odd, spec)
    assert np.isnan(X[0, 0]) and X[1, 3] == -1
    out = training.predict(model, X)
    assert np.isfinite(out).all()
    onnx_path = tmp_path / "m.onnx"
    export.to_onnx(model, X, onnx_path, 17)
    assert export.parity(model, onnx_path, X, 1e-4) <= 1e-4


class _DivergesInExport(torch.nn.Module):
    """Stands in for an exporter bug: the traced graph computes something else than eager torch."""

    def __init__(self, width: int):
        super().__init__()
        self.linear = torch.nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(torch.nan_to_num(x))
        return out * 3.0 if torch.onnx.is_in_onnx_export() else out


def test_parity_check_fails_beyond_tolerance(tmp_path: Path) -> None:
    model = training.Predictor(_DivergesInExport(4), "classification").eval()
    X = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    path = tmp_path / "bad.onnx"
    export.to_onnx(model, X, path, 17)
    with pytest.raises(
        StepError, match=r"ONNX parity check failed: max \|onnxruntime - torch\| = .* exceeds"
    ):
        export.parity(model, path, X, 1e-4)


USER_MODULE = textwrap.dedent("""
    import torch
    from torch import nn


    class Shifted(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            out = self.inner(x)
            return out * 3.0 if torch.onnx.is_in_onnx_export() else out


    def build(ctx):
        assert ctx.X.shape[0] == len(ctx.train) and ctx.device.type in ("cpu", "cuda")
        model = nn.Sequential(ctx.preprocess(), nn.Linear(ctx.n_inputs, 8), nn.ReLU(), nn.Linear(8, ctx.n_outputs))
        model = ctx.fit(model)
        ctx.log_metric("custom_score", 0.5)
        (ctx.checkpoint_dir / "done.txt").write_text("ok")
        return Shifted(model) if ctx.hyperparameters.get("diverge") else model
""")


def test_user_entrypoint_through_the_step_contract_and_parity_failure(
    tmp_path: Path, local_registry: str
) -> None:
    (tmp_path / "user_model.py").write_text(USER_MODULE)
    ir = fast_ir(entrypoint="user_model:build", builtin=None)
    ir = ir.model_copy(update={"evaluation": ir.evaluation.model_copy(update={"gates": []})})
    ir_path = tmp_path / "ir.json"
    ir_path.write_text(ir.to_json())
    run = tmp_path / "run"
    for step in ("validate-data", "train", "evaluate", "export"):
        assert main(step_args(step, ir_path, run)) == 0, step
    trained = json.loads((run / "steps" / "train" / "result.json").read_text())
    assert trained["entrypoint"] == "user_model:build" and trained["final_custom_score"] == 0.5
    assert (run / "model" / "checkpoints" / "done.txt").read_text() == "ok"
    assert (run / "export" / "model.onnx").exists() and (run / "export" / "reference_profile.json").exists()

    bad = tmp_path / "bad"
    for step in ("validate-data", "evaluate"):
        if step == "evaluate":
            assert main(step_args("train", ir_path, bad, "--hparam", "diverge=true")) == 0
        assert main(step_args(step, ir_path, bad)) == 0
    assert main(step_args("export", ir_path, bad)) == 1
    result = json.loads((bad / "steps" / "export" / "result.json").read_text())
    assert result["status"] == "failed" and "ONNX parity check failed" in result["error"]


def _spread_ir(workers: int):
    """churn's IR with `workers` training workers on its one-GPU pool: two span two nodes (the job launcher)."""
    text = (ROOT / "specs" / "churn.yaml").read_text()
    text = text.replace("  retries: 2\n", f"  distributed: {{workers: {workers}}}\n  retries: 2\n", 1)
    ir = api.lower(api.loads(text, "specs/churn.yaml"))
    training_ = ir.training.model_copy(
        update={"tuning": None, "hyperparameters": {"epochs": 2, "lr": 0.01, "batch_size": 256}}
    )
    return ir.model_copy(update={"training": training_})


def test_ddp_over_two_gloo_processes_trains_the_model_one_process_does(
    tmp_path: Path, local_registry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    monkeypatch.setenv("MLSPEC_LAUNCH", "local")  # even in a CI pod: the job's processes on this machine
    models = {}
    for workers in (1, 2):
        ir = _spread_ir(workers)
        spread = ir.training.distribution
        assert (spread.launcher, spread.nodes, spread.world_size) == (
            ("none", 1, 1) if workers == 1 else ("job", 2, 2)
        )
        ir_path = tmp_path / f"ir{workers}.json"
        ir_path.write_text(ir.to_json())
        run = tmp_path / f"run{workers}"
        if workers == 1:
            assert main(step_args("validate-data", ir_path, run)) == 0
        else:  # the same split: the comparison is about training alone
            shutil.copytree(tmp_path / "run1" / "data", run / "data")
            shutil.copytree(tmp_path / "run1" / "steps" / "validate-data", run / "steps" / "validate-data")
        # not in a pod: the job's two processes run on this machine, with gloo (no GPU here)
        assert main(step_args("train", ir_path, run)) == 0
        result = json.loads((run / "steps" / "train" / "result.json").read_text())
        assert result["status"] == "succeeded" and result["workers"] == workers and result["device"] == "cpu"
        models[workers] = torch.load(run / "model" / "model.pt", weights_only=False).state_dict()
    one, two = models[1], models[2]
    assert one.keys() == two.keys()
    # the same global batch, gradients averaged over the ranks: the same model up to summation order
    assert max(float((one[k].float() - two[k].float()).abs().max()) for k in one) < 1e-5


def test_regression_trains_in_target_units_and_exports(tmp_path: Path) -> None:
    ir = fast_ir()
    data = ir.data.model_copy(
        update={
            "task": "regression",
            "target": "monthly_charges",
            "features": ["tenure_months", "support_calls", "contract"],
        }
    )
    ir = ir.model_copy(update={"data": data})
    frame = pd.read_csv(CHURN / "train.csv")
    train, test = frame.iloc[:4000], frame.iloc[4000:]
    model, spec, _ = training.train_model(
        ir, train, {**training.hyperparameters(ir), "epochs": 20}, 0, tmp_path
    )
    X = preprocessing.encode(test, spec)
    pred = training.predict(model, X)
    metrics = evaluation.compute("regression", preprocessing.encode_target(test, spec), pred)
    assert pred.shape == (1000,) and abs(float(pred.mean()) - float(test["monthly_charges"].mean())) < 10
    assert metrics["r2"] > 0 and metrics["rmse"] < float(test["monthly_charges"].std())
    export.to_onnx(model, X, tmp_path / "r.onnx", 17)
    assert export.parity(model, tmp_path / "r.onnx", X, 1e-3) <= 1e-3


def test_grid_trials_with_cross_validation_then_select(tmp_path: Path, local_registry: str) -> None:
    ir = fast_ir(hyperparameters={"epochs": 1, "lr": 0.01, "batch_size": 512}, cv_folds=2)
    tuning = api.lower(api.load(ROOT / "specs" / "churn.yaml")).training.tuning
    assert tuning is not None
    ir = ir.model_copy(
        update={
            "training": ir.training.model_copy(
                update={"tuning": tuning.model_copy(update={"method": "grid", "trials": 3})}
            )
        }
    )
    ir_path = tmp_path / "ir.json"
    ir_path.write_text(ir.to_json())
    run = tmp_path / "run"
    assert main(step_args("validate-data", ir_path, run)) == 0
    for i in range(3):
        assert main(step_args("tune-trial", ir_path, run, "--trial", str(i))) == 0
    assert main(step_args("tune-select", ir_path, run)) == 0
    trials = [
        json.loads((run / "steps" / "tune-trial" / str(i) / "result.json").read_text()) for i in range(3)
    ]
    assert [t["params"]["lr"] for t in trials] == pytest.approx([0.001, 0.0054772, 0.03], rel=1e-4)
    assert all(t["params"]["hidden"] == [32, 16] and len(t["fold_values"]) == 2 for t in trials)
    best = json.loads((run / "steps" / "tune-select" / "result.json").read_text())
    assert best["best_value"] == max(t["value"] for t in trials) and best["trials_completed"] == 3
    assert main(step_args("tune-trial", ir_path, run, "--trial", "3")) == 1  # outside the fan-out
