"""Distribution drift per feature against a reference profile: PSI, KL, Jensen-Shannon, Wasserstein, KS.

The reference is a JSON-serializable profile saved with the model, not the raw training data:

- numeric features: quantile bin edges from the reference and the reference fraction per bin (PSI, KL, JS),
  plus a sketch of the reference distribution (its unique values with weights when it has at most
  `SKETCH_POINTS` of them, else `SKETCH_POINTS` mid-point quantiles) for KS and Wasserstein;
- categorical features: category frequencies;
- both: the fraction of missing values, which is its own bin, so a rise in NaNs is drift too;
- the Pearson correlation matrix of the numeric features.

Everything is vectorized: each current column is sorted once, then bin counts, the ECDF and the quantile
function come from `searchsorted` on the sorted array. No per-row Python loops.

Definitions (c = current fractions, r = reference fractions, both smoothed with `EPSILON` in empty bins):
  psi = sum((c - r) * ln(c / r));  kl = sum(c * ln(c / r)) = KL(current || reference);
  js  = Jensen-Shannon distance, natural log (scipy.spatial.distance.jensenshannon);
  ks  = two-sample Kolmogorov-Smirnov statistic sup|F_ref - F_cur| on non-missing values;
  wasserstein = W1(reference, current) / std(reference) on non-missing values (scale-free, like Evidently).
For categorical features KS and Wasserstein become the total variation distance 0.5 * sum|c - r|: the
supremum over all sets of categories, and W1 under the 0/1 metric, which is the same number.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

METHODS = ("psi", "kl", "js", "wasserstein", "ks")
EPSILON = 1e-4
DEFAULT_BINS = 10
SKETCH_POINTS = 2000
NUMERIC_TYPES = ("int", "float", "bool")
UNSEEN = "__unseen__"


# ----------------------------------------------------------------------------------------------- profile


def _is_numeric(name: str, series: pd.Series, columns_ir: Any) -> bool:
    col = next((c for c in columns_ir or [] if _get(c, "name") == name), None)
    if col is not None:
        return _get(col, "type") in NUMERIC_TYPES
    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def _get(obj: Any, key: str) -> Any:
    return obj[key] if isinstance(obj, dict) else getattr(obj, key)


def _as_float(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _sorted_quantiles(sorted_values: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """np.quantile's default (linear) method on an already sorted array, without re-partitioning it."""
    pos = probs * (sorted_values.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, sorted_values.size - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _numeric_profile(values: np.ndarray, bins: int) -> dict[str, Any]:
    n_total = values.size
    finite = np.sort(values[~np.isnan(values)])
    if finite.size == 0:
        raise ValueError("has no non-missing values in the reference")
    edges = np.unique(_sorted_quantiles(finite, np.arange(1, bins) / bins))
    counts = _bin_counts(finite, edges)
    starts = np.flatnonzero(np.concatenate(([True], finite[1:] != finite[:-1])))
    if starts.size <= SKETCH_POINTS:
        sketch = finite[starts]
        weights = np.diff(np.append(starts, finite.size)) / finite.size
    else:
        q = _sorted_quantiles(finite, (np.arange(SKETCH_POINTS) + 0.5) / SKETCH_POINTS)
        sketch, inverse = np.unique(q, return_inverse=True)
        weights = np.bincount(inverse, minlength=sketch.size) / SKETCH_POINTS
    return {
        "kind": "numeric",
        "edges": edges.tolist(),
        "fractions": (counts / n_total).tolist(),
        "nan_fraction": float((n_total - finite.size) / n_total),
        "sketch_values": sketch.tolist(),
        "sketch_weights": weights.tolist(),
        "mean": float(finite.mean()),
        "std": float(finite.std()),
        "count": int(n_total),
    }


def _categorical_profile(series: pd.Series) -> dict[str, Any]:
    n_total = len(series)
    counts = series.value_counts(
        dropna=True, sort=False
    )  # hash counts first, strings only for the categories
    counts.index = counts.index.astype(str)
    counts = counts.groupby(level=0).sum().sort_index()  # 1 and "1" are one category; deterministic order
    if counts.empty:
        raise ValueError("has no non-missing values in the reference")
    return {
        "kind": "categorical",
        "categories": counts.index.tolist(),
        "fractions": (counts.to_numpy() / n_total).tolist(),
        "nan_fraction": float(series.isna().sum() / n_total),
        "count": int(n_total),
    }


def reference_profile(
    df: pd.DataFrame, features: list[str], columns_ir: Any = None, bins: int = DEFAULT_BINS
) -> dict[str, Any]:
    """The JSON-serializable reference profile of `features` in `df` (see the module docstring)."""
    if len(df) == 0:
        raise ValueError("cannot profile an empty reference data set")
    missing = [f for f in features if f not in df.columns]
    if missing:
        raise ValueError(f"reference data lacks feature columns {missing}")
    out: dict[str, Any] = {}
    numeric: list[str] = []
    for name in features:
        try:
            if _is_numeric(name, df[name], columns_ir):
                out[name] = _numeric_profile(_as_float(df[name]), bins)
                numeric.append(name)
            else:
                out[name] = _categorical_profile(df[name])
        except ValueError as exc:
            raise ValueError(f"feature {name!r} {exc}") from exc
    return {
        "version": 1,
        "bins": bins,
        "epsilon": EPSILON,
        "rows": len(df),
        "features": out,
        "correlation": {"columns": numeric, "matrix": _correlation(df, numeric).tolist()},
    }


# ----------------------------------------------------------------------------------------------- primitives


def _bin_counts(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in (-inf, e0], (e0, e1], ..., (e_last, inf) of an already sorted array."""
    cum = np.searchsorted(sorted_values, edges, side="right")
    return np.diff(np.concatenate(([0], cum, [sorted_values.size])))


def smooth(fractions: np.ndarray, eps: float = EPSILON) -> np.ndarray:
    """Replace empty bins by eps and renormalize, so logs stay finite."""
    p = np.maximum(np.asarray(fractions, dtype=np.float64), eps)
    return p / p.sum()


def psi(ref: np.ndarray, cur: np.ndarray, eps: float = EPSILON) -> float:
    r, c = smooth(ref, eps), smooth(cur, eps)
    return float(np.sum((c - r) * np.log(c / r)))


def kl(ref: np.ndarray, cur: np.ndarray, eps: float = EPSILON) -> float:
    r, c = smooth(ref, eps), smooth(cur, eps)
    return float(np.sum(c * np.log(c / r)))


def js(ref: np.ndarray, cur: np.ndarray) -> float:
    from scipy.special import rel_entr

    r = np.asarray(ref, dtype=np.float64) / np.sum(ref)
    c = np.asarray(cur, dtype=np.float64) / np.sum(cur)
    m = 0.5 * (r + c)
    return float(math.sqrt(max(0.5 * np.sum(rel_entr(r, m)) + 0.5 * np.sum(rel_entr(c, m)), 0.0)))


def tvd(ref: np.ndarray, cur: np.ndarray) -> float:
    r = np.asarray(ref, dtype=np.float64) / np.sum(ref)
    c = np.asarray(cur, dtype=np.float64) / np.sum(cur)
    return float(0.5 * np.abs(r - c).sum())


def ks_statistic(ref_values: np.ndarray, ref_weights: np.ndarray, cur_sorted: np.ndarray) -> float:
    """sup|F_ref - F_cur| for a weighted reference (sorted unique values) and a sorted current sample.

    F_ref is constant on [r_k, r_k+1), F_cur is monotone there, so the supremum sits at the ends of these
    intervals: m look-ups into the current sample give the exact statistic.
    """
    n = cur_sorted.size
    f_ref = np.cumsum(ref_weights)
    f_ref /= f_ref[-1]
    at = np.searchsorted(cur_sorted, ref_values, side="right") / n  # F_cur(r_k)
    before = np.searchsorted(cur_sorted, ref_values, side="left") / n  # F_cur(r_k-)
    prev_ref = np.concatenate(([0.0], f_ref[:-1]))  # F_ref(r_k-)
    return float(max(np.abs(f_ref - at).max(), np.abs(prev_ref - before).max()))


def wasserstein(ref_values: np.ndarray, ref_weights: np.ndarray, cur_sorted: np.ndarray) -> float:
    """W1 = integral over p of |Q_ref(p) - Q_cur(p)|, merging both step quantile functions in O(n + m)."""
    n = cur_sorted.size
    ref_cum = np.cumsum(ref_weights)
    ref_cum /= ref_cum[-1]
    cur_cum = np.arange(1, n + 1) / n
    pos = np.searchsorted(cur_cum, ref_cum, side="left")
    merged = np.insert(cur_cum, pos, ref_cum)
    is_ref = np.insert(np.zeros(n, dtype=bool), pos, True)
    ref_idx = np.cumsum(is_ref) - is_ref
    cur_idx = np.cumsum(~is_ref) - ~is_ref
    widths = np.diff(np.concatenate(([0.0], merged)))
    ref_q = ref_values[np.minimum(ref_idx, ref_values.size - 1)]
    cur_q = cur_sorted[np.minimum(cur_idx, n - 1)]
    return float(np.sum(widths * np.abs(ref_q - cur_q)))


def _correlation(df: pd.DataFrame, columns: list[str]) -> np.ndarray:
    if len(columns) < 2:
        return np.eye(len(columns))
    x = np.column_stack([_as_float(df[c]) for c in columns])
    x = x[~np.isnan(x).any(axis=1)]
    if x.shape[0] < 3:
        return np.full((len(columns), len(columns)), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(x, rowvar=False)
    return np.nan_to_num(corr, nan=0.0)


# ----------------------------------------------------------------------------------------------- current data


def _score_numeric(prof: dict[str, Any], values: np.ndarray, method: str) -> dict[str, Any]:
    n_total = values.size
    finite = np.sort(values[~np.isnan(values)])
    nan_frac = (n_total - finite.size) / n_total
    out: dict[str, Any] = {
        "kind": "numeric",
        "nan_fraction_reference": prof["nan_fraction"],
        "nan_fraction_current": float(nan_frac),
    }
    if method in ("psi", "kl", "js"):
        edges = np.asarray(prof["edges"], dtype=np.float64)
        ref = np.append(prof["fractions"], prof["nan_fraction"])
        cur = np.append(_bin_counts(finite, edges) / n_total, nan_frac)
        out["score"] = {"psi": psi, "kl": kl, "js": js}[method](ref, cur)
        return out
    if finite.size == 0:
        out.update(score=None, note="the current data has no non-missing values")
        return out
    ref_values = np.asarray(prof["sketch_values"], dtype=np.float64)
    ref_weights = np.asarray(prof["sketch_weights"], dtype=np.float64)
    if method == "ks":
        out["score"] = ks_statistic(ref_values, ref_weights, finite)
    else:
        distance = wasserstein(ref_values, ref_weights, finite)
        out["wasserstein"] = distance
        out["score"] = distance / prof["std"] if prof["std"] > 0 else distance
    return out


def _score_categorical(prof: dict[str, Any], series: pd.Series, method: str) -> dict[str, Any]:
    n_total = len(series)
    cats = prof["categories"]
    isna = series.isna().to_numpy()
    codes = pd.Categorical(series.astype("string"), categories=cats).codes  # -1: NaN or unseen
    counts = np.bincount(codes[codes >= 0], minlength=len(cats))
    nan_count = int(isna.sum())
    unseen = int((codes < 0).sum()) - nan_count
    ref = np.concatenate((prof["fractions"], [prof["nan_fraction"], 0.0]))
    cur = np.concatenate((counts, [nan_count, unseen])) / n_total
    fn = {"psi": psi, "kl": kl, "js": js, "ks": tvd, "wasserstein": tvd}[method]
    return {
        "kind": "categorical",
        "score": fn(ref, cur),
        "nan_fraction_reference": prof["nan_fraction"],
        "nan_fraction_current": nan_count / n_total,
        "unseen_fraction": unseen / n_total,
    }


def compute_drift(
    profile: dict[str, Any],
    current_df: pd.DataFrame,
    method: str,
    threshold: float,
    features: list[str] | str | None = None,
) -> dict[str, Any]:
    """Drift score per feature of `current_df` against `profile`; a feature drifts when score > threshold."""
    if method not in METHODS:
        raise ValueError(f"unknown drift method {method!r}; use one of {', '.join(METHODS)}")
    if len(current_df) == 0:
        raise ValueError("cannot compute drift on an empty window (0 rows)")
    names = list(profile["features"]) if features in (None, "all") else list(features)
    unknown = [f for f in names if f not in profile["features"]]
    if unknown:
        raise ValueError(f"features {unknown} are not in the reference profile")
    missing = [f for f in names if f not in current_df.columns]
    if missing:
        raise ValueError(f"the current data lacks feature columns {missing}")
    per: dict[str, Any] = {}
    for name in names:
        prof = profile["features"][name]
        if prof["kind"] == "numeric":
            res = _score_numeric(prof, _as_float(current_df[name]), method)
        else:
            res = _score_categorical(prof, current_df[name], method)
        score = res["score"]
        res["drifted"] = bool(score is None or score > threshold)
        per[name] = res
    drifted = [n for n, r in per.items() if r["drifted"]]
    scores = [r["score"] for r in per.values() if r["score"] is not None]
    return {
        "method": method,
        "threshold": threshold,
        "rows": len(current_df),
        "features": per,
        "drifted_features": drifted,
        "n_drifted": len(drifted),
        "share_drifted": len(drifted) / len(names) if names else 0.0,
        "max_score": max(scores) if scores else None,
    }


def correlation_change(profile: dict[str, Any], current_df: pd.DataFrame) -> float:
    """Largest absolute change of a pairwise Pearson correlation between numeric features (0 to 2)."""
    cols = [c for c in profile["correlation"]["columns"] if c in current_df.columns]
    if len(cols) < 2:
        return 0.0
    all_cols = profile["correlation"]["columns"]
    idx = [all_cols.index(c) for c in cols]
    ref = np.asarray(profile["correlation"]["matrix"], dtype=np.float64)[np.ix_(idx, idx)]
    cur = _correlation(current_df, cols)
    if np.isnan(cur).all():
        return 0.0
    return float(np.nanmax(np.abs(cur - ref)))
