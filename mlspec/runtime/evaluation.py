"""Metrics (scikit-learn), business KPIs, gates and the champion comparison."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from mlspec.ir.model import IR, Gate
from mlspec.runtime import StepError

ALIASES = {"roc_auc": "auc", "rocauc": "auc", "logloss": "log_loss", "f1_score": "f1"}
LOWER_IS_BETTER = {"log_loss", "rmse", "mae", "mse"}


def canonical(name: str) -> str:
    return ALIASES.get(name.lower(), name.lower())


def classification_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    from sklearn import metrics as skm

    n_classes = proba.shape[1]
    pred = proba.argmax(axis=1)
    binary = n_classes == 2
    average = "binary" if binary else "macro"
    out: dict[str, Any] = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, average=average, zero_division=0),
        "recall": skm.recall_score(y, pred, average=average, zero_division=0),
        "f1": skm.f1_score(y, pred, average=average, zero_division=0),
        "log_loss": skm.log_loss(y, np.clip(proba, 1e-7, 1.0), labels=list(range(n_classes))),
    }
    if len(np.unique(y)) > 1:
        out["auc"] = (
            skm.roc_auc_score(y, proba[:, 1])
            if binary
            else skm.roc_auc_score(y, proba, multi_class="ovr", labels=list(range(n_classes)))
        )
    else:
        out["auc"] = float("nan")
    out = {k: float(v) for k, v in out.items()}
    out["confusion_matrix"] = skm.confusion_matrix(y, pred, labels=list(range(n_classes))).tolist()
    return out


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    from sklearn import metrics as skm

    mse = skm.mean_squared_error(y, pred)
    return {
        "rmse": float(math.sqrt(mse)),
        "mse": float(mse),
        "mae": float(skm.mean_absolute_error(y, pred)),
        "r2": float(skm.r2_score(y, pred)),
    }


def compute(task: str, y: np.ndarray, output: np.ndarray) -> dict[str, Any]:
    return classification_metrics(y, output) if task == "classification" else regression_metrics(y, output)


def custom_metrics(ir: IR, y: np.ndarray, output: np.ndarray, frame: pd.DataFrame) -> dict[str, float]:
    """Business KPIs: `module:function(y_true, y_pred, y_score, frame) -> float` for each spec entry."""
    from mlspec.runtime.training import load_entrypoint

    out = {}
    pred = output.argmax(axis=1) if ir.data.task == "classification" else output
    score = output[:, 1] if ir.data.task == "classification" and output.shape[1] == 2 else output
    for name, ref in ir.evaluation.custom_metrics.items():
        fn = load_entrypoint(ref)
        try:
            out[name] = float(fn(y, pred, score, frame))
        except Exception as exc:
            raise StepError(f"custom metric '{name}' ({ref}) failed: {type(exc).__name__}: {exc}") from exc
    return out


def check_gates(gates: list[Gate], metrics: dict[str, Any]) -> list[dict[str, Any]]:
    results = []
    for gate in gates:
        value = metrics.get(canonical(gate.metric), metrics.get(gate.metric))
        if value is None or (isinstance(value, float) and math.isnan(value)):
            passed, why = False, f"metric '{gate.metric}' was not computed"
        else:
            passed = value >= gate.threshold if gate.op == ">=" else value <= gate.threshold
            why = f"{gate.metric} = {value:.4f} {'meets' if passed else 'misses'} {gate.op} {gate.threshold}"
        results.append(
            {
                "metric": gate.metric,
                "op": gate.op,
                "threshold": gate.threshold,
                "value": value,
                "passed": bool(passed),
                "message": why,
            }
        )
    return results


def beats(ir: IR, challenger: float | None, champion: float | None) -> tuple[bool, str]:
    ev = ir.evaluation
    if ev.champion_metric is None:
        return True, "no champion comparison configured"
    if champion is None:
        return True, "no current champion"
    if challenger is None or math.isnan(challenger):
        return False, f"challenger has no {ev.champion_metric}"
    delta = challenger - champion if ev.champion_goal == "maximize" else champion - challenger
    ok = delta >= ev.champion_min_improvement
    return ok, (
        f"{ev.champion_metric}: challenger {challenger:.4f} vs champion {champion:.4f} "
        f"(improvement {delta:+.4f}, needs >= {ev.champion_min_improvement})"
    )
