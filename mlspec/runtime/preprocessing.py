"""Feature encoding shared by training, evaluation, export and serving.

Rows become a float32 matrix with one column per IR feature, in IR order: numeric features as floats (NaN
kept), categorical features as the index of their value in the spec's (or training data's) value list, -1
for unknown or missing. Imputation, standardization and one-hot encoding happen INSIDE the model
(`Preprocess`), so the exported ONNX graph carries them and a server needs only this small spec.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlspec.ir.model import IR
from mlspec.runtime import StepError

CATEGORICAL_TYPES = ("category", "string", "bool")


def _column(ir: IR, name: str):
    return next((c for c in ir.data.columns if c.name == name), None)


def fit(ir: IR, train: pd.DataFrame) -> dict[str, Any]:
    """The preprocessing spec (JSON-serializable) learned from the training frame."""
    missing = [f for f in [*ir.data.features, ir.data.target] if f not in train.columns]
    if missing:
        raise StepError(f"training data lacks column(s) {', '.join(missing)}")
    features: list[dict[str, Any]] = []
    for name in ir.data.features:
        col = _column(ir, name)
        series = train[name]
        if col is not None and col.type in CATEGORICAL_TYPES:
            values = (
                [str(v) for v in col.values] if col.values else sorted(series.dropna().astype(str).unique())
            )
            features.append({"name": name, "kind": "category", "values": values})
        else:
            numeric = pd.to_numeric(series, errors="coerce").astype("float64")
            if numeric.notna().sum() == 0:
                raise StepError(f"feature '{name}' has no numeric values in the training data")
            mean = float(numeric.mean())
            std = float(numeric.std(ddof=0)) or 1.0
            features.append({"name": name, "kind": "numeric", "mean": mean, "std": std})
    spec: dict[str, Any] = {
        "version": 1,
        "task": ir.data.task,
        "target": ir.data.target,
        "features": features,
    }
    if ir.data.transforms:  # what a server repeats on request rows before encoding them
        spec["transforms"] = [t.model_dump(mode="json") for t in ir.data.transforms]
    target = train[ir.data.target]
    if ir.data.task == "classification":
        tcol = _column(ir, ir.data.target)
        classes = (
            tcol.values if tcol is not None and tcol.values else sorted(target.dropna().unique().tolist())
        )
        spec["classes"] = [c.item() if hasattr(c, "item") else c for c in classes]
        if len(spec["classes"]) < 2:
            raise StepError(f"target '{ir.data.target}' has fewer than two classes in the training data")
    else:
        y = pd.to_numeric(target, errors="coerce")
        spec["target_mean"] = float(y.mean())
        spec["target_std"] = float(y.std(ddof=0)) or 1.0
    return spec


def encode(frame: pd.DataFrame, spec: dict[str, Any]) -> np.ndarray:
    """The model input matrix for a frame (vectorized; unknown categories become -1)."""
    out = np.empty((len(frame), len(spec["features"])), dtype=np.float32)
    for j, feat in enumerate(spec["features"]):
        if feat["name"] not in frame.columns:
            raise StepError(f"data lacks feature column '{feat['name']}'")
        series = frame[feat["name"]]
        if feat["kind"] == "category":
            as_text = series.where(series.isna(), series.astype(str))
            out[:, j] = pd.Categorical(as_text, categories=feat["values"]).codes
        else:
            out[:, j] = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    return out


def encode_target(frame: pd.DataFrame, spec: dict[str, Any]) -> np.ndarray:
    y = frame[spec["target"]]
    if spec["task"] == "classification":
        lookup = {str(c): i for i, c in enumerate(spec["classes"])}
        codes = y.astype(str).map(lookup)
        if codes.isna().any():
            bad = sorted(y[codes.isna()].astype(str).unique())[:5]
            raise StepError(f"target '{spec['target']}' has values outside its classes: {', '.join(bad)}")
        return codes.to_numpy(dtype=np.int64)
    return pd.to_numeric(y, errors="coerce").to_numpy(dtype=np.float32)


def input_width(spec: dict[str, Any]) -> int:
    return sum(len(f["values"]) if f["kind"] == "category" else 1 for f in spec["features"])


def n_outputs(spec: dict[str, Any]) -> int:
    return len(spec["classes"]) if spec["task"] == "classification" else 1


def derived_columns(spec: dict[str, Any]) -> list[str]:
    return [c for t in spec.get("transforms", []) for c in t["adds"]]


def apply_transforms(frame: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    """The preparation steps' row-wise transforms, in pipeline order: what raw request rows need before
    encoding (the server), and what export checks against the prepared data."""
    from mlspec.runtime.userstep import load_function

    for t in spec.get("transforms", []):
        out = load_function(t["function"])(frame)
        if not isinstance(out, pd.DataFrame):
            raise StepError(f"transform {t['function']} returned {type(out).__name__}, not a DataFrame")
        missing = [c for c in t["adds"] if c not in out.columns]
        if missing:
            raise StepError(f"transform {t['function']} did not add {', '.join(missing)}")
        frame = out
    return frame


def transform_parity(spec: dict[str, Any], prepared: pd.DataFrame, tolerance: float) -> float:
    """Max difference between the columns the transforms compute from raw rows and the prepared data's.

    The server gets raw rows and runs the transforms; training saw what the preparation steps wrote. They must
    agree, or the model would serve on features it was never trained on. Raises StepError past `tolerance`.
    """
    derived = [c for c in derived_columns(spec) if c in prepared.columns]
    if not derived:
        return 0.0
    recomputed = apply_transforms(prepared.drop(columns=derived), spec)
    worst = 0.0
    for col in derived:
        want, got = prepared[col], recomputed[col]
        if len(got) != len(want):
            raise StepError(
                f"transform for '{col}' returned {len(got)} rows for {len(want)}: it must be row-wise"
            )
        if pd.api.types.is_numeric_dtype(want) and pd.api.types.is_numeric_dtype(got):
            a = want.to_numpy(dtype=np.float64)
            b = got.to_numpy(dtype=np.float64)
            both_nan = np.isnan(a) & np.isnan(b)
            diff = np.where(both_nan, 0.0, np.abs(a - b))
            value = float(np.nanmax(diff, initial=0.0)) if not np.isnan(diff).any() else float("inf")
        else:
            value = float((want.astype(str).to_numpy() != got.astype(str).to_numpy()).sum())
        worst = max(worst, value)
        if not value <= tolerance:
            raise StepError(
                f"serving transform parity failed: column '{col}' recomputed from raw rows differs from the "
                f"prepared data by {value:.3g} (tolerance {tolerance:g}); the server would see other features"
            )
    return worst
