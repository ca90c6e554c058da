"""Live model performance on the window's labeled predictions (a Summary keeps the rows that found a label).

Classification: accuracy, precision, recall, F1, ROC AUC and log loss, the confusion matrix and its change
against the one saved at export; regression: RMSE, MAE, R2. Then the spec's `monitoring.performance` metric
against its bounds, and the business KPIs of `evaluation.custom_metrics` on the same rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def _outputs(labeled: pd.DataFrame) -> np.ndarray:
    columns = sorted((c for c in labeled.columns if c.startswith("__out_")), key=lambda c: int(c[6:]))
    return labeled[columns].to_numpy(dtype=np.float64)


def _find(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for value in obj.values():
            if (found := _find(value, key)) is not None:
                return found
    return None


def confusion_change(reference: np.ndarray, current: np.ndarray) -> float:
    """Largest change of a row-normalized confusion-matrix cell (per true class rates), 0 to 1."""

    def rates(cm: np.ndarray) -> np.ndarray:
        totals = cm.sum(axis=1, keepdims=True).astype(float)
        return np.divide(cm, totals, out=np.zeros(cm.shape, dtype=float), where=totals > 0)

    return float(np.abs(rates(reference) - rates(current)).max())


def _classes(ir: Any, y_raw: pd.Series, preprocessing: dict | None) -> list[Any]:
    classes = (preprocessing or {}).get("classes") or next(
        (c.values for c in ir.data.columns if c.name == ir.data.target and c.values), None
    )
    return list(classes) if classes is not None else sorted(y_raw.dropna().unique().tolist(), key=str)


def performance(
    ir: Any, labeled: pd.DataFrame, preprocessing: dict | None, reference_metrics: dict | None
) -> dict[str, Any]:
    from sklearn import metrics as skm

    # one canonical order, so that merging partitions in any order gives the same floats
    labeled = labeled.sort_values(
        [c for c in ("request_id", "row") if c in labeled.columns], kind="stable"
    ).reset_index(drop=True)
    perf_cfg = ir.monitoring.performance
    y_raw = labeled["__label__"]
    output = _outputs(labeled)
    out: dict[str, Any] = {"labeled_rows": len(labeled)}
    if ir.data.task == "regression":
        pred = output[:, 0]
        y = pd.to_numeric(y_raw, errors="coerce").to_numpy(dtype=float)
        out["metrics"] = {
            "rmse": float(np.sqrt(skm.mean_squared_error(y, pred))),
            "mae": float(skm.mean_absolute_error(y, pred)),
            "r2": float(skm.r2_score(y, pred)),
        }
        kpi_y, kpi_out, kpi_frame = y, output[:, 0], labeled
    else:
        classes = _classes(ir, y_raw, preprocessing)
        out["classes"] = [str(c) for c in classes]
        lookup = {str(c): i for i, c in enumerate(classes)}
        y_codes = y_raw.astype(str).map(lookup)
        keep = y_codes.notna().to_numpy()
        y = y_codes[keep].to_numpy(dtype=int)
        proba = output[keep]
        if proba.shape[1] == 1 and len(classes) == 2:
            proba = np.column_stack([1 - proba[:, 0], proba[:, 0]])
        pred = proba.argmax(axis=1)
        labels = list(range(len(classes)))
        binary = len(classes) == 2
        avg = "binary" if binary else "macro"
        m: dict[str, Any] = {
            "accuracy": float(skm.accuracy_score(y, pred)),
            "precision": float(skm.precision_score(y, pred, average=avg, zero_division=0)),
            "recall": float(skm.recall_score(y, pred, average=avg, zero_division=0)),
            "f1": float(skm.f1_score(y, pred, average=avg, zero_division=0)),
        }
        if len(np.unique(y)) == len(classes):
            m["auc"] = float(
                skm.roc_auc_score(y, proba[:, 1])
                if binary
                else skm.roc_auc_score(y, proba, multi_class="ovr", labels=labels)
            )
            clipped = np.clip(proba, 1e-7, 1)  # logged as float32: renormalize the rounding away
            m["log_loss"] = float(
                skm.log_loss(y, clipped / clipped.sum(axis=1, keepdims=True), labels=labels)
            )
        out["metrics"] = m
        cm = skm.confusion_matrix(y, pred, labels=labels)
        out["confusion_matrix"] = cm.tolist()
        ref_cm = _find(reference_metrics, "confusion_matrix")
        if ref_cm is not None and np.asarray(ref_cm).shape == cm.shape:
            out["confusion_matrix_reference"] = np.asarray(ref_cm).tolist()
            out["confusion_matrix_change"] = confusion_change(np.asarray(ref_cm), cm)
        kpi_y, kpi_out, kpi_frame = y, proba, labeled.loc[keep].reset_index(drop=True)
    if perf_cfg is not None:
        value = out["metrics"].get(perf_cfg.metric)
        out["metric"], out["value"] = perf_cfg.metric, value
        out["bounds"] = {"min": perf_cfg.min, "max": perf_cfg.max}
        ok = (
            value is not None
            and (perf_cfg.min is None or value >= perf_cfg.min)
            and (perf_cfg.max is None or value <= perf_cfg.max)
        )
        out["degraded"] = value is not None and not ok
    if ir.evaluation.custom_metrics:
        from mlspec.runtime import StepError, evaluation

        features = kpi_frame[[c for c in ir.data.features if c in kpi_frame.columns]]
        try:
            out["kpis"] = evaluation.custom_metrics(ir, kpi_y, kpi_out, features)
        except StepError as exc:  # a failing KPI is reported; the rest of the monitor still runs
            out["kpi_error"] = str(exc)
    return out
