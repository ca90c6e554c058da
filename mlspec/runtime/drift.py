"""Distribution drift per feature against a reference profile: PSI, KL, Jensen-Shannon, Wasserstein, KS.

The reference is a JSON-serializable profile saved with the model, not the raw training data:

- numeric features: quantile bin edges from the reference and the reference fraction per bin (PSI, KL, JS),
  plus a sketch of the reference distribution (its unique values with weights when it has at most
  `SKETCH_POINTS` of them, else `SKETCH_POINTS` mid-point quantiles) for KS and Wasserstein;
- categorical features: category frequencies;
- both: the fraction of missing values, which is its own bin, so a rise in NaNs is drift too;
- the Pearson correlation matrix of the numeric features.

The current data is never scored row by row: `score(profile, summary, ...)` works on a mergeable window
Summary (mlspec.runtime.monitoring.summary) that counts the current values at the profile's edges (the decile
edges and every sketch point). `compute_drift(profile, frame, ...)` is score() on the summary of one frame.

Definitions (c = current fractions, r = reference fractions, both smoothed with `EPSILON` in empty bins):
  psi = sum((c - r) * ln(c / r));  kl = sum(c * ln(c / r)) = KL(current || reference);
  js  = Jensen-Shannon distance, natural log (scipy.spatial.distance.jensenshannon);
  ks  = sup|F_ref - F_cur| on non-missing values: exact from the counts (the supremum sits at the edges);
  wasserstein = W1(reference, current) / std(reference) on non-missing values (scale-free, like Evidently):
        exact in the tails and for values on the edges, current values spread evenly between two edges.
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
    codes, uniques = pd.factorize(series, use_na_sentinel=True)  # hash once, then count integers
    per_value = np.bincount(codes[codes >= 0], minlength=len(uniques))
    counts: dict[str, int] = {}
    for value, n in zip(uniques.tolist(), per_value.tolist(), strict=True):
        counts[str(value)] = counts.get(str(value), 0) + n  # 1 and "1" are one category
    if not counts:
        raise ValueError("has no non-missing values in the reference")
    categories = sorted(counts)  # deterministic order
    return {
        "kind": "categorical",
        "categories": categories,
        "fractions": [counts[c] / n_total for c in categories],
        "nan_fraction": float((codes < 0).sum() / n_total),
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
    numeric = [name for name in features if _is_numeric(name, df[name], columns_ir)]

    def one(name: str) -> dict[str, Any]:
        try:
            if name in numeric:
                return _numeric_profile(_as_float(df[name]), bins)
            return _categorical_profile(df[name])
        except ValueError as exc:
            raise ValueError(f"feature {name!r} {exc}") from exc

    from concurrent.futures import ThreadPoolExecutor

    from mlspec.runtime.monitoring.summary import threads

    with ThreadPoolExecutor(max_workers=max(1, min(len(features), threads()))) as pool:  # numpy sorts: no GIL
        out = dict(zip(features, pool.map(one, features), strict=True))
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


def _correlation(df: pd.DataFrame, columns: list[str]) -> np.ndarray:
    if len(columns) < 2:
        return np.eye(len(columns))
    x = np.empty((len(columns), len(df)))  # one contiguous row per feature: no wide temporaries
    for j, c in enumerate(columns):
        x[j] = _as_float(df[c])
    x = x[:, ~np.isnan(x).any(axis=0)]
    if x.shape[1] < 3:
        return np.full((len(columns), len(columns)), np.nan)
    x -= x.mean(axis=1, keepdims=True)
    cov = x @ x.T
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    return np.nan_to_num(corr, nan=0.0)


# ----------------------------------------------------------------------------------------------- scores from counts


def ks_from_counts(
    edges: np.ndarray, le: np.ndarray, lt: np.ndarray, n: int, ref_values: np.ndarray, ref_cum: np.ndarray
) -> float:
    """sup|F_ref - F_cur| from the current counts at the edges, which include every reference point.

    On [e_k, e_k+1) F_ref is constant and F_cur rises from le_k / n to lt_k+1 / n, so the supremum is at one of
    those two values (both are attained by current points); below e_0 F_ref is 0, from e_last on it is 1.
    """
    r = _ref_cdf_at(edges, ref_values, ref_cum)
    at = le / n  # F_cur(e_k)
    before_next = lt[1:] / n  # F_cur(e_k+1 -)
    inner = max(np.abs(r - at).max(), np.abs(r[:-1] - before_next).max(initial=0.0))
    return float(max(inner, lt[0] / n, 1.0 - le[-1] / n))


def wasserstein_from_counts(
    edges: np.ndarray,
    le: np.ndarray,
    lt: np.ndarray,
    n: int,
    ref_values: np.ndarray,
    ref_cum: np.ndarray,
    below_sum: float,
    above_sum: float,
) -> float:
    """W1 = integral of |F_ref - F_cur| from the current counts at the edges (which include the reference points).

    Exact in the tails (below the first and above the last edge: the sums of the values there) and for values
    that sit on edges (integer data); between two edges the current values are taken as evenly spread, which is
    off by at most (edge gap) x (share of current values strictly inside the gap) per gap.
    """
    r = _ref_cdf_at(edges, ref_values, ref_cum)[:-1]
    a = le[:-1] / n  # F_cur(e_k)
    b = lt[1:] / n  # F_cur(e_k+1 -)
    width = np.diff(edges)
    mid = 0.5 * (a + b)
    span = b - a
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = ((r - a) ** 2 + (b - r) ** 2) / (2 * span)
    mean_gap = np.where((r > a) & (r < b), crossing, np.abs(r - mid))
    inner = float(np.sum(width * mean_gap))
    left = (lt[0] * edges[0] - below_sum) / n  # integral of F_cur below e_0
    right = (above_sum - (n - le[-1]) * edges[-1]) / n  # integral of 1 - F_cur above e_last
    return inner + max(left, 0.0) + max(right, 0.0)


def _ref_cdf_at(edges: np.ndarray, ref_values: np.ndarray, ref_cum: np.ndarray) -> np.ndarray:
    """F_ref at each edge: the reference weight at or below it."""
    idx = np.searchsorted(ref_values, edges, side="right")
    return np.where(idx > 0, ref_cum[np.maximum(idx - 1, 0)], 0.0)


def _score_numeric(prof: dict[str, Any], s: Any, method: str) -> dict[str, Any]:
    from mlspec.runtime.monitoring.plan import numeric_edges
    from mlspec.runtime.monitoring.summary import inexact

    n_total = s.rows
    missing = (n_total - s.finite) / n_total
    out: dict[str, Any] = {
        "kind": "numeric",
        "nan_fraction_reference": prof["nan_fraction"],
        "nan_fraction_current": float(missing),
    }
    edges = np.asarray(numeric_edges(prof), dtype=np.float64)
    le = np.asarray(s.le, dtype=np.int64)
    if method in ("psi", "kl", "js"):
        deciles = np.asarray(prof["edges"], dtype=np.float64)
        at = le[np.searchsorted(edges, deciles)]
        counts = np.diff(np.concatenate(([0], at, [s.finite])))
        ref = np.append(prof["fractions"], prof["nan_fraction"])
        cur = np.append(counts / n_total, missing)
        out["score"] = {"psi": psi, "kl": kl, "js": js}[method](ref, cur)
        return out
    if s.finite == 0:
        out.update(score=None, note="the current data has no non-missing values")
        return out
    lt = np.asarray(s.lt, dtype=np.int64)
    ref_values = np.asarray(prof["sketch_values"], dtype=np.float64)
    ref_cum = np.cumsum(np.asarray(prof["sketch_weights"], dtype=np.float64))
    ref_cum /= ref_cum[-1]
    if method == "ks":
        out["score"] = ks_from_counts(edges, le, lt, s.finite, ref_values, ref_cum)
    else:
        distance = wasserstein_from_counts(
            edges, le, lt, s.finite, ref_values, ref_cum, inexact(s.sums[2]), inexact(s.sums[3])
        )
        out["wasserstein"] = distance
        out["score"] = distance / prof["std"] if prof["std"] > 0 else distance
    return out


def _score_categorical(prof: dict[str, Any], s: Any, method: str) -> dict[str, Any]:
    n_total = s.rows
    counts = np.asarray([s.counts.get(c, 0) for c in prof["categories"]], dtype=np.float64)
    unseen = n_total - s.nulls - counts.sum()  # not a reference category: unseen for drift
    ref = np.concatenate((prof["fractions"], [prof["nan_fraction"], 0.0]))
    cur = np.concatenate((counts, [s.nulls, unseen])) / n_total
    fn = {"psi": psi, "kl": kl, "js": js, "ks": tvd, "wasserstein": tvd}[method]
    return {
        "kind": "categorical",
        "score": fn(ref, cur),
        "nan_fraction_reference": prof["nan_fraction"],
        "nan_fraction_current": s.nulls / n_total,
        "unseen_fraction": float(unseen / n_total),
    }


def _checked(profile: dict[str, Any], method: str, rows: int, features: list[str] | str | None) -> list[str]:
    """The features to score; a clear ValueError for an unknown method or feature, or no rows."""
    if method not in METHODS:
        raise ValueError(f"unknown drift method {method!r}; use one of {', '.join(METHODS)}")
    if rows == 0:
        raise ValueError("cannot compute drift on an empty window (0 rows)")
    names = list(profile["features"]) if features in (None, "all") else list(features)
    unknown = [f for f in names if f not in profile["features"]]
    if unknown:
        raise ValueError(f"features {unknown} are not in the reference profile")
    return names


def score(
    profile: dict[str, Any],
    summary: Any,
    method: str,
    threshold: float,
    features: list[str] | str | None = None,
) -> dict[str, Any]:
    """Drift per feature of a window Summary against `profile`; a feature drifts when score > threshold."""
    names = _checked(profile, method, summary.rows, features)
    per: dict[str, Any] = {}
    for name in names:
        prof = profile["features"][name]
        part = summary.features[name]
        res = (_score_numeric if prof["kind"] == "numeric" else _score_categorical)(prof, part, method)
        res["drifted"] = bool(res["score"] is None or res["score"] > threshold)
        per[name] = res
    drifted = [n for n, r in per.items() if r["drifted"]]
    scores = [r["score"] for r in per.values() if r["score"] is not None]
    return {
        "method": method,
        "threshold": threshold,
        "rows": summary.rows,
        "features": per,
        "drifted_features": drifted,
        "n_drifted": len(drifted),
        "share_drifted": len(drifted) / len(names) if names else 0.0,
        "max_score": max(scores) if scores else None,
    }


def current_correlation(summary: Any) -> np.ndarray | None:
    """The Pearson correlation matrix of the summary's tracked columns, from exact sums; None under 3 rows."""
    c = summary.correlation
    if c is None or c.n < 3:
        return None
    k = len(c.sums)
    unit = 1 << 1074  # the sums are in units of 2**-1074, their products in units of 2**-2148
    cov = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            # n * sum(xy) - sum(x) * sum(y), exactly: no cancellation, whatever the scale
            cov[i, j] = (c.n * c.cross[i * k + j] * unit - c.sums[i] * c.sums[j]) / (unit * unit)
    std = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(std, std)
    return np.nan_to_num(corr, nan=0.0)


def correlation_from_summary(profile: dict[str, Any], summary: Any, columns: list[str]) -> float:
    """Largest absolute change of a pairwise Pearson correlation between numeric features (0 to 2)."""
    if len(columns) < 2:
        return 0.0
    cur = current_correlation(summary)
    if cur is None:
        return 0.0
    all_cols = profile["correlation"]["columns"]
    idx = [all_cols.index(c) for c in columns]
    ref = np.asarray(profile["correlation"]["matrix"], dtype=np.float64)[np.ix_(idx, idx)]
    return float(np.nanmax(np.abs(cur - ref)))


# ----------------------------------------------------------------------------------------------- data frames


def compute_drift(
    profile: dict[str, Any],
    current_df: pd.DataFrame,
    method: str,
    threshold: float,
    features: list[str] | str | None = None,
) -> dict[str, Any]:
    """score() on the summary of a DataFrame (data checks, tests, benchmarks)."""
    from mlspec.runtime.monitoring.plan import build_plan
    from mlspec.runtime.monitoring.summary import summarize_batch

    names = _checked(profile, method, len(current_df), features)
    missing = [f for f in names if f not in current_df.columns]
    if missing:
        raise ValueError(f"the current data lacks feature columns {missing}")
    plan = build_plan(profile, names, correlation=False)
    return score(profile, summarize_batch(current_df, plan), method, threshold, names)


def correlation_change(profile: dict[str, Any], current_df: pd.DataFrame) -> float:
    """Largest absolute change of a pairwise Pearson correlation between numeric features (0 to 2)."""
    from mlspec.runtime.monitoring.plan import build_plan
    from mlspec.runtime.monitoring.summary import summarize_batch

    cols = [c for c in profile["correlation"]["columns"] if c in current_df.columns]
    if len(cols) < 2:
        return 0.0
    plan = build_plan(profile, cols)
    return correlation_from_summary(profile, summarize_batch(current_df, plan), plan.correlation)
