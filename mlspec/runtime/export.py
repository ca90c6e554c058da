"""ONNX export with an onnxruntime-vs-torch parity check, and the bundle a server and the monitor need.

The bundle (RUN_DIR/export/, registered as the model version's artifacts):
  model.onnx              input "input" float32 [batch, F] (encoded per preprocessing.json),
                          output "output": class probabilities [batch, C] or predictions [batch]
  preprocessing.json      how to encode raw rows (mlspec.runtime.preprocessing), classes, task
  reference_profile.json  mlspec.runtime.drift.reference_profile of the training data's features
  model.pt                the torch module (training.Predictor) the ONNX graph was exported from
  metrics.json            the evaluation result (metrics, gates, champion comparison)
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlspec import contracts
from mlspec.runtime import StepError

INPUT, OUTPUT = "input", "output"


def to_onnx(model: torch.nn.Module, sample: np.ndarray, path: Path, opset: int) -> None:
    x = torch.from_numpy(np.ascontiguousarray(sample[: max(2, min(len(sample), 8))], dtype=np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                model,
                (x,),
                str(path),
                input_names=[INPUT],
                output_names=[OUTPUT],
                opset_version=opset,
                dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
                dynamo=False,
            )
        except Exception as exc:
            raise StepError(f"ONNX export failed: {type(exc).__name__}: {exc}") from exc


def add_metadata(path: Path, spec: dict[str, Any]) -> None:
    """Name the input columns in the graph (servers read mlspec.features) and carry the encoding spec."""
    import onnx

    model = onnx.load(str(path))
    for key, value in {
        "mlspec.features": json.dumps([f["name"] for f in spec["features"]]),
        "mlspec.preprocessing": json.dumps(spec, sort_keys=True),
    }.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def onnx_predict(path: Path, X: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return session.run([OUTPUT], {INPUT: np.ascontiguousarray(X, dtype=np.float32)})[0]


def parity(model: torch.nn.Module, onnx_path: Path, X: np.ndarray, tolerance: float) -> float:
    """Max |onnxruntime - torch| over the holdout; raises StepError above the tolerance."""
    from mlspec.runtime.training import predict

    expected = predict(model, X)
    got = onnx_predict(onnx_path, X)
    if got.shape != expected.shape:
        raise StepError(
            f"ONNX parity check failed: output shape {got.shape} differs from torch's {expected.shape}"
        )
    diff = float(np.nanmax(np.abs(got.astype(np.float64) - expected.astype(np.float64)))) if got.size else 0.0
    if np.isnan(got).sum() != np.isnan(expected).sum():
        diff = float("inf")
    if not diff <= tolerance:
        raise StepError(
            f"ONNX parity check failed: max |onnxruntime - torch| = {diff:.3g} on {len(X)} holdout rows "
            f"exceeds the tolerance {tolerance:g}"
        )
    return diff


def write_bundle(
    out: Path,
    model: torch.nn.Module,
    spec: dict[str, Any],
    X_test: np.ndarray,
    train_frame,
    ir,
    evaluation: dict[str, Any],
    test_frame=None,
) -> dict[str, Any]:
    from mlspec.runtime import drift, training

    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / contracts.MODEL_FILE
    to_onnx(model, X_test, onnx_path, ir.training.opset)
    add_metadata(onnx_path, spec)
    diff = parity(model, onnx_path, X_test, ir.training.parity_tolerance)
    from mlspec.runtime.preprocessing import transform_parity

    transforms_diff = (
        transform_parity(spec, test_frame, ir.training.parity_tolerance) if test_frame is not None else 0.0
    )
    try:
        profile = drift.reference_profile(train_frame, list(ir.data.features), list(ir.data.columns))
    except ValueError as exc:
        raise StepError(f"cannot build the reference profile: {exc}") from exc
    (out / contracts.PROFILE_FILE).write_text(json.dumps(profile, indent=2, sort_keys=True) + "\n")
    training.save(model, spec, out)
    (out / contracts.METRICS_FILE).write_text(
        json.dumps(evaluation, indent=2, sort_keys=True, default=str) + "\n"
    )
    return {
        "onnx_path": str(onnx_path),
        "parity_max_abs_diff": diff,
        "parity_rows": len(X_test),
        "transforms_max_abs_diff": transforms_diff,
    }
