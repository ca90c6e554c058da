"""Reference and current distributions per feature, for the report (its charts read these numbers).

Numeric features: BINS equal-width bins over the reference's range (stretched by at most half of it to show
where current values went; values beyond fall in the outer bins), plus the missing share. The reference
distribution comes from its sketch, the current one from the counts at the profile's edges, spread evenly
between two edges as the Wasserstein score does. Categorical features: the reference categories (the TOP most
frequent, the rest as "(other)"), then "(unseen)" and "(missing)".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlspec.runtime.monitoring.plan import numeric_edges
from mlspec.runtime.monitoring.summary import CategoricalSummary, NumericSummary

BINS = 24
TOP = 12


def _current_cdf(x: np.ndarray, edges: np.ndarray, s: NumericSummary) -> np.ndarray:
    """F_cur at x (share of the finite values <= x), piecewise linear between the edges."""
    n = s.finite
    le = np.asarray(s.le, dtype=np.float64) / n
    lt = np.asarray(s.lt, dtype=np.float64) / n
    low = s.min if s.min is not None and s.min < edges[0] else edges[0]
    high = s.max if s.max is not None and s.max > edges[-1] else edges[-1]
    # knots: (min, 0), then each edge's left limit and value, then (max, 1)
    xs = np.concatenate(([low], np.repeat(edges, 2), [high]))
    ys = np.concatenate(([0.0], np.column_stack((lt, le)).ravel(), [1.0]))
    return np.interp(x, xs, ys, left=0.0, right=1.0)


def _reference_cdf(x: np.ndarray, prof: dict[str, Any]) -> np.ndarray:
    values = np.asarray(prof["sketch_values"], dtype=np.float64)
    cum = np.cumsum(np.asarray(prof["sketch_weights"], dtype=np.float64))
    cum /= cum[-1]
    if values.size == 1:
        return (x >= values[0]).astype(np.float64)
    return np.interp(x, values, cum, left=0.0, right=1.0)


def numeric(prof: dict[str, Any], s: NumericSummary) -> dict[str, Any]:
    values = np.asarray(prof["sketch_values"], dtype=np.float64)
    lo, hi = float(values[0]), float(values[-1])
    span = hi - lo or max(abs(lo), 1.0)
    if s.min is not None:
        lo = max(min(lo, s.min), lo - 0.5 * span)
    if s.max is not None:
        hi = min(max(hi, s.max), hi + 0.5 * span)
    if hi <= lo:
        hi = lo + 1.0
    bounds = np.linspace(lo, hi, BINS + 1)
    ref_cdf = _reference_cdf(bounds, prof)
    ref_cdf[0], ref_cdf[-1] = 0.0, 1.0  # the outer bins take everything beyond them
    ref = np.diff(ref_cdf) * (1 - prof["nan_fraction"])
    cur = np.zeros(BINS)
    missing = 1.0
    if s.rows:
        missing = (s.rows - s.finite) / s.rows
    if s.finite:
        cur_cdf = _current_cdf(bounds, np.asarray(numeric_edges(prof), dtype=np.float64), s)
        cur_cdf[0], cur_cdf[-1] = 0.0, 1.0
        cur = np.diff(cur_cdf) * (1 - missing)
    return {
        "kind": "numeric",
        "bins": [float(b) for b in bounds],
        "reference": [float(v) for v in ref],
        "current": [float(v) for v in cur],
        "missing_reference": float(prof["nan_fraction"]),
        "missing_current": float(missing),
    }


def categorical(prof: dict[str, Any], s: CategoricalSummary) -> dict[str, Any]:
    fractions = dict(zip(prof["categories"], prof["fractions"], strict=True))
    n = s.rows or 1
    current = {c: s.counts.get(c, 0) / n for c in prof["categories"]}
    ranked = sorted(prof["categories"], key=lambda c: (-max(fractions[c], current[c]), c))
    shown, rest = ranked[:TOP], ranked[TOP:]
    known = sum(s.counts.get(c, 0) for c in prof["categories"])
    labels = [*shown, *(["(other)"] if rest else []), "(unseen)", "(missing)"]
    ref = [fractions[c] for c in shown] + ([sum(fractions[c] for c in rest)] if rest else [])
    cur = [current[c] for c in shown] + ([sum(current[c] for c in rest)] if rest else [])
    ref += [0.0, prof["nan_fraction"]]
    cur += [(s.rows - s.nulls - known) / n, s.nulls / n]
    return {
        "kind": "categorical",
        "categories": labels,
        "reference": [float(v) for v in ref],
        "current": [float(v) for v in cur],
    }


def distributions(profile: dict[str, Any], summary: Any) -> dict[str, Any]:
    out = {}
    for name, part in summary.features.items():
        prof = profile["features"][name]
        out[name] = numeric(prof, part) if isinstance(part, NumericSummary) else categorical(prof, part)
    return out
