"""Live data quality per feature, from a window Summary and the spec's schema.

  null rate          missing values (NaN, null) / rows
  out-of-range rate  (values below the schema's min + above its max + invalid values) / rows, invalid being
                     a value that is not of the column's type: text in a numeric column, +-inf, 2.5 in an
                     int column, a value outside an int/float column's `values`
  unseen rate        categorical values outside the schema's `values` (or, without them, the categories of
                     the reference data) / rows; a category the server logged as "unknown to the model" (-1)
                     counts as unseen
A column with `nullable: false` flags any missing value. The data_quality retraining trigger compares these
rates with its bounds.
"""

from __future__ import annotations

from typing import Any

from mlspec.runtime.monitoring.plan import Plan
from mlspec.runtime.monitoring.summary import CategoricalSummary, NumericSummary, Summary, moments


def _numeric(fp: Any, s: NumericSummary) -> dict[str, Any]:
    out_of_range = s.below_min + s.above_max + s.invalid
    mean, std = moments(s)
    issues = []
    if s.below_min:
        issues.append(f"{s.below_min} below min {fp.min:g}")
    if s.above_max:
        issues.append(f"{s.above_max} above max {fp.max:g}")
    if s.invalid:
        issues.append(f"{s.invalid} not a valid {fp.type}")
    return {
        "out_of_range": out_of_range,
        "out_of_range_rate": out_of_range / s.rows,
        "below_min": s.below_min,
        "above_max": s.above_max,
        "invalid": s.invalid,
        "unseen": None,
        "unseen_rate": None,
        "min": s.min,
        "max": s.max,
        "mean": mean,
        "std": std,
        "issues": issues,
    }


def _categorical(fp: Any, s: CategoricalSummary, reference_categories: list[str]) -> dict[str, Any]:
    known = set(fp.allowed or reference_categories)
    unseen = s.unseen + sum(n for c, n in s.counts.items() if c not in known)
    examples = {c: n for c, n in s.counts.items() if c not in known}
    examples.update(s.examples)
    issues = [f"{unseen} unseen values" + (f" (e.g. {', '.join(sorted(examples)[:3])})" if examples else "")]
    return {
        "out_of_range": None,
        "out_of_range_rate": None,
        "unseen": unseen,
        "unseen_rate": unseen / s.rows,
        "unseen_examples": dict(sorted(examples.items())[:20]),
        "issues": issues if unseen else [],
    }


def assess(plan: Plan, summary: Summary, profile: dict[str, Any]) -> dict[str, Any]:
    """{"features": {name: {rows, nulls, null_rate, out_of_range_rate, unseen_rate, ..., issues}}}."""
    features: dict[str, Any] = {}
    if summary.rows == 0:
        return {"features": features}
    for fp in plan.features:
        s = summary.features[fp.name]
        if isinstance(s, NumericSummary):
            row = _numeric(fp, s)
        else:
            row = _categorical(fp, s, profile["features"][fp.name].get("categories", []))
        if s.nulls and not fp.nullable:
            row["issues"].insert(0, f"{s.nulls} missing in a column that is not nullable")
        features[fp.name] = {
            "kind": fp.kind,
            "type": fp.type,
            "rows": s.rows,
            "nulls": s.nulls,
            "null_rate": s.nulls / s.rows,
            "null_rate_reference": profile["features"][fp.name].get("nan_fraction"),
            "nullable": fp.nullable,
            "bounds": {"min": fp.min, "max": fp.max, "values": fp.allowed},
            **row,
        }
    return {"features": features}


def violations(quality: dict[str, Any], trigger: Any) -> list[str]:
    """Features whose rates exceed a data_quality trigger's bounds, as 'feature: rate > bound' lines."""
    out = []
    checks = (
        ("null_rate", trigger.max_null_rate, "null rate"),
        ("out_of_range_rate", trigger.max_out_of_range_rate, "out-of-range rate"),
        ("unseen_rate", trigger.max_unseen_rate, "unseen rate"),
    )
    for name, row in quality.get("features", {}).items():
        for key, bound, label in checks:
            value = row.get(key)
            if bound is not None and value is not None and value > bound:
                out.append(f"{name}: {label} {value:.4f} > {bound:g}")
    return out
