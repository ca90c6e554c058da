"""Data checks of the validate-data step: the schema via pandera, plus the IR's data.checks.

`run_checks` returns a JSON report {"passed", "checks": [{"check", "passed", "columns", "count", "message",
...}], "summary"}; every failing check names its offending columns and counts. `split` is the one train/test
split every step uses (validate-data for the overlap check, train and evaluate for fitting and the holdout).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from mlspec.runtime import drift, pii

# pandera's own check names -> the report's check names
_SCHEMA_CATEGORY = {
    "column_in_dataframe": "columns_present",
    "not_nullable": "nulls",
    "field_uniqueness": "uniqueness",
    "type": "types",
    "range": "ranges",
    "allowed_values": "allowed_values",
}
_SCHEMA_CHECKS = ("columns_present", "types", "nulls", "ranges", "allowed_values", "uniqueness")
_TRUE_FALSE = {"true", "false", "1", "0", "yes", "no", "t", "f", "1.0", "0.0"}


def _result(
    check: str, passed: bool, message: str, columns: list[str] | None = None, count: int = 0, **extra: Any
) -> dict[str, Any]:
    return {
        "check": check,
        "passed": bool(passed),
        "columns": columns or [],
        "count": int(count),
        "message": message,
        **extra,
    }


# ----------------------------------------------------------------------------------------------- schema


def _type_check(col_type: str):
    import pandera.pandas as pa

    def is_numeric(s: pd.Series) -> pd.Series:
        return pd.to_numeric(s, errors="coerce").notna()

    def is_integer(s: pd.Series) -> pd.Series:
        v = pd.to_numeric(s, errors="coerce")
        return v.notna() & (v == np.floor(v))

    def is_boolean(s: pd.Series) -> pd.Series:
        if pd.api.types.is_bool_dtype(s):
            return pd.Series(True, index=s.index)
        return s.astype(str).str.lower().isin(_TRUE_FALSE)

    def is_datetime(s: pd.Series) -> pd.Series:
        if pd.api.types.is_datetime64_any_dtype(s):
            return pd.Series(True, index=s.index)
        return pd.Series(pd.to_datetime(s, errors="coerce", utc=True, format="mixed").notna(), index=s.index)

    fn = {"int": is_integer, "float": is_numeric, "bool": is_boolean, "datetime": is_datetime}.get(col_type)
    return None if fn is None else pa.Check(fn, name="type", description=f"values are {col_type}")


def build_schema(ir_columns, unique: bool = True):
    """A pandera DataFrameSchema from IR columns (types, nullable, unique, min/max, allowed values)."""
    import pandera.pandas as pa

    columns = {}
    for col in ir_columns:
        checks = []
        type_check = _type_check(col.type)
        if type_check is not None:
            checks.append(type_check)
        if col.min is not None or col.max is not None:
            lo = -np.inf if col.min is None else col.min
            hi = np.inf if col.max is None else col.max

            def within_bounds(s: pd.Series, lo: float = lo, hi: float = hi) -> pd.Series:
                v = pd.to_numeric(s, errors="coerce")
                return v.isna() | ((v >= lo) & (v <= hi))  # non-numbers are the type check's business

            checks.append(pa.Check(within_bounds, name="range", description=f"values in [{lo}, {hi}]"))
        if col.values is not None:
            allowed = list(col.values)
            allowed_text = {str(v) for v in allowed}

            def among_allowed(
                s: pd.Series, allowed: list = allowed, allowed_text: set = allowed_text
            ) -> pd.Series:
                if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
                    nums = [v for v in allowed if isinstance(v, int | float) and not isinstance(v, bool)]
                    return s.isin(nums)
                return s.astype(str).isin(allowed_text)

            checks.append(pa.Check(among_allowed, name="allowed_values", description=f"values in {allowed}"))
        columns[col.name] = pa.Column(
            checks=checks, nullable=col.nullable, unique=unique and col.unique, required=True, coerce=False
        )
    return pa.DataFrameSchema(columns, strict=False)


def schema_checks(ir_columns, df: pd.DataFrame, unique: bool = True) -> list[dict[str, Any]]:
    """One result per schema aspect (columns present, types, nulls, ranges, allowed values, uniqueness).

    `unique=False` leaves uniqueness out: a preparation step's output is checked for its structure, and
    uniqueness is a check of the prepared data (a dedupe step may come later).
    """
    import pandera.pandas as pa

    failures = pd.DataFrame(columns=["column", "check", "failure_case"])
    try:
        build_schema(ir_columns, unique).validate(df, lazy=True)
    except pa.errors.SchemaErrors as err:
        failures = err.failure_cases
    by_category: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in _SCHEMA_CHECKS}
    for row in failures.itertuples(index=False):  # one row per failure case, not per data row
        category = _SCHEMA_CATEGORY.get(str(row.check), "types")
        column = str(row.failure_case) if category == "columns_present" else str(row.column)
        entry = by_category[category].setdefault(column, {"count": 0, "examples": []})
        entry["count"] += 1
        if len(entry["examples"]) < 5:
            value = row.failure_case
            entry["examples"].append(None if pd.isna(value) else str(value))
    results = []
    for category in _SCHEMA_CHECKS if unique else _SCHEMA_CHECKS[:-1]:
        found = by_category[category]
        if not found:
            results.append(_result(category, True, f"{category.replace('_', ' ')}: ok"))
            continue
        detail = ", ".join(f"{c} ({v['count']})" for c, v in sorted(found.items()))
        results.append(
            _result(
                category,
                False,
                f"{category.replace('_', ' ')} failed in {detail}",
                sorted(found),
                sum(v["count"] for v in found.values()),
                details={c: v for c, v in sorted(found.items())},
            )
        )
    return results


def empty_columns_check(ir, df: pd.DataFrame) -> dict[str, Any]:
    """Feature and target columns that hold no value at all (NaN-only) cannot be trained on."""
    needed = [*ir.data.features, ir.data.target]
    empty = [c for c in needed if c in df.columns and df[c].isna().all()]
    if empty:
        return _result(
            "empty_columns", False, f"columns with only missing values: {', '.join(empty)}", empty, len(empty)
        )
    return _result("empty_columns", True, "every feature and the target have values")


# ----------------------------------------------------------------------------------------------- IR checks


def _missing_columns(check: str, columns: list[str], df: pd.DataFrame) -> dict[str, Any] | None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        return _result(check, False, f"columns not in the data: {', '.join(missing)}", missing, len(missing))
    return None


def check_not_null(spec: dict, df: pd.DataFrame) -> dict[str, Any]:
    cols = list(spec["columns"])
    if (bad := _missing_columns("not_null", cols, df)) is not None:
        return bad
    nulls = df[cols].isna().sum()
    offending = nulls[nulls > 0]
    if offending.empty:
        return _result("not_null", True, f"no nulls in {', '.join(cols)}")
    detail = ", ".join(f"{c} ({n})" for c, n in offending.items())
    return _result(
        "not_null",
        False,
        f"null values in {detail}",
        list(offending.index),
        int(offending.sum()),
        counts={c: int(n) for c, n in offending.items()},
    )


def check_unique(spec: dict, df: pd.DataFrame) -> dict[str, Any]:
    """Rows whose value (or combination of values, for several columns) occurs more than once."""
    cols = list(spec["columns"])
    if (bad := _missing_columns("unique", cols, df)) is not None:
        return bad
    dup = int(df.duplicated(subset=cols, keep=False).sum())
    if dup == 0:
        return _result("unique", True, f"{' + '.join(cols)} unique")
    return _result("unique", False, f"{dup} rows share a value of {' + '.join(cols)}", cols, dup)


def check_row_count(spec: dict, df: pd.DataFrame) -> dict[str, Any]:
    n, lo, hi = len(df), spec.get("min"), spec.get("max")
    if lo is not None and n < lo:
        return _result("row_count", False, f"{n} rows, fewer than the minimum {lo}", count=n)
    if hi is not None and n > hi:
        return _result("row_count", False, f"{n} rows, more than the maximum {hi}", count=n)
    return _result("row_count", True, f"{n} rows", count=n)


def parse_timestamps(series: pd.Series) -> pd.Series:
    """UTC timestamps; naive values are taken as UTC, unparseable ones become NaT."""
    if pd.api.types.is_numeric_dtype(series):
        return pd.to_datetime(series, unit="s", utc=True, errors="coerce")
    return pd.to_datetime(series, utc=True, errors="coerce", format="mixed")


def check_freshness(spec: dict, df: pd.DataFrame, now: pd.Timestamp | None = None) -> dict[str, Any]:
    from mlspec.units import duration_seconds

    col = spec["column"]
    if (bad := _missing_columns("freshness", [col], df)) is not None:
        return bad
    max_age = duration_seconds(spec["max_age"])
    ts = parse_timestamps(df[col])
    if ts.notna().sum() == 0:
        return _result("freshness", False, f"{col} has no parseable timestamps", [col], len(df))
    if now is None:
        from mlspec.runtime import now as runtime_now

        now = runtime_now()
    newest = ts.max()
    age = (now - newest).total_seconds()
    message = f"newest {col} is {newest.isoformat()}, {age / 86400:.1f} days old (max {spec['max_age']})"
    stale = age > max_age
    return _result(
        "freshness",
        not stale,
        ("stale: " if stale else "") + message,
        [col] if stale else [],
        int((ts < now - pd.Timedelta(seconds=max_age)).sum()) if stale else 0,
        newest=newest.isoformat(),
        age_seconds=age,
    )


def check_pii(ir, spec: dict, df: pd.DataFrame) -> dict[str, Any]:
    features = [f for f in ir.data.features if f in df.columns]
    declared = [c.name for c in ir.data.columns if c.pii and c.name in ir.data.features]
    found = pii.scan_frame(df, features, int(spec.get("sample_rows", 10_000)))
    for name in declared:
        found.setdefault(name, {})["declared_pii"] = 1
    if not found:
        return _result("no_pii_in_features", True, f"no PII found in {len(features)} feature columns")
    detail = "; ".join(
        f"{c}: " + ", ".join(f"{k} ({n})" for k, n in kinds.items()) for c, kinds in found.items()
    )
    return _result(
        "no_pii_in_features",
        False,
        f"PII in feature columns: {detail}",
        sorted(found),
        sum(sum(k.values()) for k in found.values()),
        found=found,
    )


def check_drift(ir, spec: dict, df: pd.DataFrame, sources: dict[str, pd.DataFrame]) -> dict[str, Any]:
    against = spec["against"]
    if against not in sources:
        return _result("drift", False, f"drift reference source {against!r} was not loaded")
    features = ir.data.features if spec.get("features", "all") == "all" else list(spec["features"])
    # Columns a preparation step adds exist in the reference only if a step also writes it there.
    absent = [f for f in features if f not in sources[against].columns]
    features = [f for f in features if f not in absent]
    profile = drift.reference_profile(sources[against], features, ir.data.columns)
    report = drift.compute_drift(profile, df, spec.get("method", "psi"), float(spec["threshold"]), features)
    scores = {f: r["score"] for f, r in report["features"].items()}
    drifted = report["drifted_features"]
    note = f"; not in {against}, not compared: {', '.join(absent)}" if absent else ""
    if not drifted:
        return _result(
            "drift",
            True,
            f"no drift against {against} ({report['method']} <= {report['threshold']}){note}",
            scores=scores,
            not_compared=absent,
        )
    detail = ", ".join(
        f"{f} ({report['features'][f]['score']:.3g})"
        if report["features"][f]["score"] is not None
        else f"{f} (no values)"
        for f in drifted
    )
    return _result(
        "drift",
        False,
        f"{len(drifted)} features drifted against {against} "
        f"({report['method']} > {report['threshold']}): {detail}{note}",
        drifted,
        len(drifted),
        scores=scores,
        not_compared=absent,
    )


def target_association(
    train: pd.DataFrame, test: pd.DataFrame, feature: str, target: str, task: str, numeric: bool
) -> float:
    """How well one feature alone predicts the target, 0 to 1.

    Binary classification: the single-feature ROC AUC, folded to max(auc, 1 - auc). Otherwise the absolute
    Pearson correlation (numeric feature) or the correlation ratio (categorical feature or target).
    Categories are scored by their mean target on the train part and evaluated on the test part, so an
    id-like column does not look predictive by memorizing rows.
    """
    if numeric:
        data = pd.concat([train, test])[[feature, target]]
        data = data.assign(**{feature: pd.to_numeric(data[feature], errors="coerce")}).dropna()
        fit, x, y = data, data[feature].astype(float), data[target]
    else:
        fit = train[[feature, target]].dropna()
        data = test[[feature, target]].dropna()
        x, y = data[feature].astype(str), data[target]
    if len(data) < 3 or y.nunique() < 2 or fit[target].nunique() < 2:
        return 0.0
    binary = task == "classification" and fit[target].nunique() == 2
    if binary:
        positive = sorted(fit[target].unique(), key=str)[1]
        y_num = (y == positive).astype(float)
        fit_y = (fit[target] == positive).astype(float)
    else:
        y_num = pd.to_numeric(y, errors="coerce")
        fit_y = pd.to_numeric(fit[target], errors="coerce")
    if not numeric:  # encode each category by its train mean target
        means = fit_y.groupby(fit[feature].astype(str)).mean()
        x = x.map(means).fillna(fit_y.mean()).astype(float)
    if binary:
        from sklearn.metrics import roc_auc_score

        if y_num.nunique() < 2:
            return 0.0
        auc = roc_auc_score(y_num, x)
        return float(max(auc, 1 - auc))
    if y_num.isna().all():  # multi-class target: correlation ratio of the feature grouped by class
        values, groups = x, y.astype(str)
        if values.var() == 0:
            return 0.0
        group_means = values.groupby(groups).transform("mean")
        return float(
            np.sqrt(((group_means - values.mean()) ** 2).sum() / ((values - values.mean()) ** 2).sum())
        )
    mask = y_num.notna()
    if mask.sum() < 3 or x[mask].var() == 0 or y_num[mask].var() == 0:
        return 0.0
    return float(abs(np.corrcoef(x[mask], y_num[mask])[0, 1]))


def row_overlap(train: pd.DataFrame, test: pd.DataFrame, columns: list[str]) -> int:
    """Test rows identical (on `columns`) to some train row."""
    h_train = pd.util.hash_pandas_object(train[columns], index=False)
    h_test = pd.util.hash_pandas_object(test[columns], index=False)
    return int(h_test.isin(h_train).sum())


def check_leakage(ir, spec: dict, df: pd.DataFrame) -> dict[str, Any]:
    target, limit = ir.data.target, float(spec.get("max_target_correlation", 0.95))
    if target not in df.columns:
        return _result("leakage", False, f"target column {target!r} is not in the data", [target], 1)
    features = [f for f in ir.data.features if f in df.columns]
    types = {c.name: c.type for c in ir.data.columns}
    train, test = split(ir, df)
    assoc = {
        f: target_association(train, test, f, target, ir.data.task, types.get(f) in drift.NUMERIC_TYPES)
        for f in features
    }
    leaky = sorted(f for f, a in assoc.items() if a > limit)
    overlap = row_overlap(train, test, [*features, target])
    allowed = int(spec.get("train_test_overlap", 0))
    problems = []
    if leaky:
        problems.append(
            "features predicting the target almost perfectly: "
            + ", ".join(f"{f} ({assoc[f]:.3f} > {limit})" for f in leaky)
        )
    if overlap > allowed:
        problems.append(f"{overlap} test rows also in train (allowed {allowed})")
    extra: dict[str, Any] = {"association": assoc, "train_test_overlap": overlap}
    if problems:
        count = len(leaky) + (overlap if overlap > allowed else 0)
        return _result("leakage", False, "; ".join(problems), leaky, count, **extra)
    return _result(
        "leakage",
        True,
        f"max target association {max(assoc.values(), default=0):.3f} <= {limit}; {overlap} shared rows",
        **extra,
    )


# ----------------------------------------------------------------------------------------------- entry points


def split(ir, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) from ir.data.split: test fraction, seed, optional stratify column. Indexes are reset."""
    from sklearn.model_selection import train_test_split

    cfg = ir.data.split
    stratify_col = cfg.get("stratify")
    stratify = None
    if stratify_col:
        if stratify_col not in df.columns:
            raise ValueError(f"split.stratify column {stratify_col!r} is not in the data")
        if df[stratify_col].isna().any():
            raise ValueError(
                f"split.stratify column {stratify_col!r} has {int(df[stratify_col].isna().sum())} "
                "missing values"
            )
        stratify = df[stratify_col]
    try:
        train, test = train_test_split(
            df, test_size=float(cfg.get("test", 0.2)), random_state=int(cfg.get("seed", 0)), stratify=stratify
        )
    except ValueError as exc:
        raise ValueError(
            f"cannot split {len(df)} rows (test={cfg.get('test')}, stratify={stratify_col}): {exc}"
        ) from exc
    return train.reset_index(drop=True), test.reset_index(drop=True)


def run_checks(
    ir,
    train_df: pd.DataFrame,
    sources: dict[str, pd.DataFrame],
    now: pd.Timestamp | None = None,
    *,
    raw: bool = False,
) -> dict[str, Any]:
    """The schema and data.checks on the prepared train data, or (raw=True) data.raw_checks alone on the raw
    train source; the report is JSON-serializable."""
    started = time.perf_counter()
    results = [] if raw else [*schema_checks(ir.data.columns, train_df), empty_columns_check(ir, train_df)]
    for spec in ir.data.raw_checks if raw else ir.data.checks:
        kind = spec["check"]
        try:
            if kind == "not_null":
                res = check_not_null(spec, train_df)
            elif kind == "unique":
                res = check_unique(spec, train_df)
            elif kind == "row_count":
                res = check_row_count(spec, train_df)
            elif kind == "freshness":
                res = check_freshness(spec, train_df, now)
            elif kind == "no_pii_in_features":
                res = check_pii(ir, spec, train_df)
            elif kind == "drift":
                res = check_drift(ir, spec, train_df, sources)
            elif kind == "leakage":
                res = check_leakage(ir, spec, train_df)
            else:
                res = _result(kind, False, f"unknown check {kind!r}")
        except Exception as exc:  # a check that cannot run is a failed check, with its cause
            res = _result(kind, False, f"could not run: {type(exc).__name__}: {exc}")
        results.append(res)
    passed = all(r["passed"] for r in results)
    return {
        "passed": passed,
        "rows": len(train_df),
        "checks": results,
        "summary": summarize(results),
        "seconds": round(time.perf_counter() - started, 3),
    }


def summarize(results: list[dict[str, Any]]) -> str:
    failed = [r for r in results if not r["passed"]]
    head = f"{len(results)} data checks: {len(results) - len(failed)} passed, {len(failed)} failed"
    lines = [head]
    for r in results:
        mark = "ok  " if r["passed"] else "FAIL"
        lines.append(f"  {mark} {r['check']:<20} {r['message']}")
    return "\n".join(lines)
