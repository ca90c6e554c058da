"""Mergeable summaries of logged predictions: memory that depends on the plan, never on the number of rows.

    summarize_batch(batch, plan, labels=None) -> Summary   one DataFrame or pyarrow RecordBatch
    merge(a, b) -> Summary                                  exact, associative and commutative

Per numeric feature: how many values are <= and < each bin edge of the plan (cumulative counts, so PSI's deciles,
KS at the reference points and the Wasserstein integral all come from them), the missing and invalid counts,
values outside the schema's bounds, min and max, and the sums below the first and above the last edge (for
Wasserstein's tails). Per categorical feature: counts of the tracked categories, unseen values (with the
`EXAMPLES` alphabetically first, exactly counted), missing values. Across features: the cross products of the
standardized numeric features on complete rows (correlation). For the window: rows, timestamps, rows per hour,
model version, traffic source and variant, rows newer than the volume cutoff. And the labeled predictions,
whose count is bounded by the labels, which are read whole.

Counts are integers. Float sums are kept exactly, as integers in units of 2**-1074 (every finite float64 is a
whole number of those), so merging in any order or grouping gives bit-identical results: a window fanned out
over partitions reduces to exactly what one process computes.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlspec.runtime.monitoring.plan import FeaturePlan, Plan

EXAMPLES = 20  # unseen category values kept per feature, with their exact counts
_UNIT = 1 << 1074  # float64 values are integer multiples of 2**-1074


def exact(values: Any) -> list[int]:
    """Finite floats as exact integers in units of 2**-1074."""
    out = []
    for value in np.ravel(np.asarray(values, dtype=np.float64)).tolist():
        num, den = float(value).as_integer_ratio()
        out.append(num * (_UNIT // den))
    return out


def inexact(value: int) -> float:
    """The float nearest to an exact sum (int / int is correctly rounded in Python)."""
    return value / _UNIT


def _add(a: list[int], b: list[int]) -> list[int]:
    return [x + y for x, y in zip(a, b, strict=True)]


def _add_counts(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    out = dict(a)
    for key, value in b.items():
        out[key] = out.get(key, 0) + value
    return out


# ----------------------------------------------------------------------------------------------- the parts


@dataclass
class NumericSummary:
    rows: int = 0
    nulls: int = 0  # missing: NaN or null
    invalid: int = 0  # present but not a valid value of the schema type (text, +-inf, 2.5 in an int column)
    below_min: int = 0
    above_max: int = 0
    le: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # finite values <= each edge
    lt: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # finite values < each edge
    finite: int = 0
    min: float | None = None
    max: float | None = None
    sums: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # exact: sum, sum of squares, below, above

    def merge(self, other: NumericSummary) -> NumericSummary:
        return NumericSummary(
            rows=self.rows + other.rows,
            nulls=self.nulls + other.nulls,
            invalid=self.invalid + other.invalid,
            below_min=self.below_min + other.below_min,
            above_max=self.above_max + other.above_max,
            le=self.le + other.le,
            lt=self.lt + other.lt,
            finite=self.finite + other.finite,
            min=_pick(min, self.min, other.min),
            max=_pick(max, self.max, other.max),
            sums=_add(self.sums, other.sums),
        )


@dataclass
class CategoricalSummary:
    rows: int = 0
    nulls: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # tracked categories (the plan's) with rows
    unseen: int = 0  # rows with any other value
    examples: dict[str, int] = field(default_factory=dict)  # the EXAMPLES first unseen values, exact counts

    def merge(self, other: CategoricalSummary) -> CategoricalSummary:
        # The EXAMPLES smallest keys of a union are among the EXAMPLES smallest of each part, and every part
        # holding such a key kept it: the merged examples and their counts are exact.
        examples = _add_counts(self.examples, other.examples)
        keep = sorted(examples)[:EXAMPLES]
        return CategoricalSummary(
            rows=self.rows + other.rows,
            nulls=self.nulls + other.nulls,
            counts=_add_counts(self.counts, other.counts),
            unseen=self.unseen + other.unseen,
            examples={k: examples[k] for k in keep},
        )


@dataclass
class CorrelationSummary:
    n: int = 0  # complete rows
    sums: list[int] = field(default_factory=list)  # exact sum of each standardized column
    cross: list[int] = field(default_factory=list)  # exact sum of products, row-major c x c

    def merge(self, other: CorrelationSummary) -> CorrelationSummary:
        return CorrelationSummary(
            self.n + other.n, _add(self.sums, other.sums), _add(self.cross, other.cross)
        )


@dataclass
class Summary:
    plan_id: str
    rows: int = 0
    ts_min_ns: int | None = None
    ts_max_ns: int | None = None
    new_rows: int = 0  # after plan.volume_cutoff_ns
    hours: dict[str, int] = field(default_factory=dict)  # "YYYY-MM-DDTHH" -> rows
    versions: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    variants: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, int] = field(
        default_factory=dict
    )  # "source=loadtest" / "variant=shadow" -> rows skipped
    features: dict[str, NumericSummary | CategoricalSummary] = field(default_factory=dict)
    correlation: CorrelationSummary | None = None
    # the labeled predictions, one frame per batch that had any (concatenated only when read: merging stays
    # cheap): request_id, row, __label__, outputs as __out_<k>, the features
    labeled_parts: list[pd.DataFrame] = field(default_factory=list)

    @property
    def labeled(self) -> pd.DataFrame | None:
        if not self.labeled_parts:
            return None
        return (
            pd.concat(self.labeled_parts, ignore_index=True)
            if len(self.labeled_parts) > 1
            else self.labeled_parts[0]
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: v for k, v in self.__dict__.items() if k not in ("features", "labeled_parts")
        }
        out["features"] = {
            name: {
                "kind": "numeric" if isinstance(s, NumericSummary) else "categorical",
                **{k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in s.__dict__.items()},
            }
            for name, s in self.features.items()
        }
        out["correlation"] = None if self.correlation is None else self.correlation.__dict__
        labeled = self.labeled
        out["labeled"] = None if labeled is None else labeled.to_dict(orient="split")
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Summary:
        obj = dict(obj)
        features: dict[str, NumericSummary | CategoricalSummary] = {}
        for name, raw in obj.pop("features").items():
            raw = dict(raw)
            kind = raw.pop("kind")
            if kind == "numeric":
                raw["le"], raw["lt"] = np.asarray(raw["le"], np.int64), np.asarray(raw["lt"], np.int64)
                features[name] = NumericSummary(**raw)
            else:
                features[name] = CategoricalSummary(**raw)
        corr = obj.pop("correlation")
        labeled = obj.pop("labeled")
        return cls(
            **obj,
            features=features,
            correlation=None if corr is None else CorrelationSummary(**corr),
            labeled_parts=[] if labeled is None else [pd.DataFrame(**labeled)],
        )


def empty(plan: Plan) -> Summary:
    """The summary of no rows: merge's identity."""
    features: dict[str, NumericSummary | CategoricalSummary] = {}
    for fp in plan.features:
        if fp.kind == "numeric":
            zeros = np.zeros(len(fp.edges), dtype=np.int64)
            features[fp.name] = NumericSummary(le=zeros, lt=zeros.copy())
        else:
            features[fp.name] = CategoricalSummary()
    c = len(plan.correlation)
    corr = CorrelationSummary(0, [0] * c, [0] * (c * c)) if c >= 2 else None
    return Summary(plan_id=plan.id, features=features, correlation=corr)


def merge(a: Summary, b: Summary) -> Summary:
    if a.plan_id != b.plan_id:
        raise ValueError(f"cannot merge summaries of different plans ({a.plan_id} and {b.plan_id})")
    features: dict[str, NumericSummary | CategoricalSummary] = {}
    for name, part in a.features.items():
        features[name] = part.merge(b.features[name])  # type: ignore[arg-type]
    correlation = None
    if a.correlation is not None and b.correlation is not None:
        correlation = a.correlation.merge(b.correlation)
    return Summary(
        plan_id=a.plan_id,
        rows=a.rows + b.rows,
        ts_min_ns=_pick(min, a.ts_min_ns, b.ts_min_ns),
        ts_max_ns=_pick(max, a.ts_max_ns, b.ts_max_ns),
        new_rows=a.new_rows + b.new_rows,
        hours=_add_counts(a.hours, b.hours),
        versions=_add_counts(a.versions, b.versions),
        sources=_add_counts(a.sources, b.sources),
        variants=_add_counts(a.variants, b.variants),
        excluded=_add_counts(a.excluded, b.excluded),
        features=features,
        correlation=correlation,
        labeled_parts=[*a.labeled_parts, *b.labeled_parts],
    )


def _pick(fn: Any, a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else fn(a, b)


# ----------------------------------------------------------------------------------------------- columns

# A batch is a pandas DataFrame (JSONL logs, frames in memory) or a pyarrow RecordBatch (Parquet logs); the
# helpers below read a column of either without converting the whole batch.


def _has(batch: Any, name: str) -> bool:
    return name in (batch.columns if isinstance(batch, pd.DataFrame) else batch.schema.names)


def _column(batch: Any, name: str) -> Any:
    return batch[name] if isinstance(batch, pd.DataFrame) else batch.column(name)


def _length(batch: Any) -> int:
    return len(batch) if isinstance(batch, pd.DataFrame) else batch.num_rows


def timestamps_ns(column: Any) -> np.ndarray:
    """Epoch nanoseconds (int64), NaT as the int64 minimum: ISO strings, datetimes, or epoch seconds."""
    import pyarrow as pa

    if isinstance(column, pa.Array | pa.ChunkedArray) and pa.types.is_timestamp(column.type):
        unit = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[column.type.unit]
        values = column.cast(pa.int64()).to_numpy(zero_copy_only=False)
        ints = np.nan_to_num(values, nan=np.iinfo(np.int64).min).astype(np.int64)
        return np.where(ints == np.iinfo(np.int64).min, ints, ints * unit)
    series = column if isinstance(column, pd.Series) else column.to_pandas()
    if pd.api.types.is_numeric_dtype(series):
        parsed = pd.to_datetime(series, unit="s", utc=True, errors="coerce")
    else:
        parsed = pd.to_datetime(series, utc=True, errors="coerce", format="mixed")
    return parsed.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _numeric_values(column: Any) -> tuple[np.ndarray, int]:
    """(float64 values, NaN where missing or unreadable; how many were present but unreadable, e.g. text)."""
    import pyarrow as pa

    if isinstance(column, pa.Array | pa.ChunkedArray):
        if (
            pa.types.is_floating(column.type)
            or pa.types.is_integer(column.type)
            or pa.types.is_boolean(column.type)
        ):
            return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64), 0
        column = column.to_pandas()
    series = column
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan), 0
    missing = series.isna().to_numpy()
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return values, int((np.isnan(values) & ~missing).sum())


def _category_counts(column: Any, fp: FeaturePlan) -> tuple[dict[str, int], int, int]:
    """(rows per value as text, missing rows, rows with an unknown model index)."""
    import pyarrow as pa

    if fp.codes is not None and _is_numeric_column(column):
        codes = _numeric_values(column)[0]
        nan = np.isnan(codes)
        nulls = int(nan.sum())
        finite = codes[~nan]
        valid = (finite >= 0) & (finite < len(fp.codes)) & (finite == np.floor(finite))
        per_code = np.bincount(finite[valid].astype(np.int64), minlength=len(fp.codes))
        counts = {fp.codes[i]: int(n) for i, n in enumerate(per_code) if n}
        return counts, nulls, int((~valid).sum())
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if isinstance(column, pa.Array):
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        counted = column.value_counts()
        values = counted.field("values").to_pylist()
        tallies = counted.field("counts").to_pylist()
        nulls = sum(n for v, n in zip(values, tallies, strict=True) if v is None)
        return _as_text({v: n for v, n in zip(values, tallies, strict=True) if v is not None}), nulls, 0
    codes, uniques = pd.factorize(column, use_na_sentinel=True)  # one hashing pass, then integer counting
    per_value = np.bincount(codes[codes >= 0], minlength=len(uniques))
    nulls = int((codes < 0).sum())
    return _as_text(dict(zip(uniques.tolist(), per_value.tolist(), strict=True))), nulls, 0


def _as_text(counts: dict[Any, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for value, n in counts.items():
        key = str(value)
        out[key] = out.get(key, 0) + int(n)  # 1 and "1" are one category
    return out


def _is_numeric_column(column: Any) -> bool:
    import pyarrow as pa

    if isinstance(column, pa.Array | pa.ChunkedArray):
        return pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


# ----------------------------------------------------------------------------------------------- one batch


def _numeric(column: Any, fp: FeaturePlan) -> NumericSummary:
    values, unreadable = _numeric_values(column)
    ordered = np.sort(values)  # -inf first; +inf, then NaN last
    lo = int(np.searchsorted(ordered, -np.inf, side="right"))
    hi = int(np.searchsorted(ordered, np.inf, side="left"))
    nan_from = int(np.searchsorted(ordered, np.nan, side="left"))
    finite = ordered[lo:hi]
    nulls = values.size - nan_from - unreadable
    invalid = unreadable + lo + (nan_from - hi)  # text, -inf, +inf
    if fp.type == "int":
        invalid += int(np.count_nonzero(finite != np.floor(finite)))
    elif fp.type == "bool":
        invalid += int(np.count_nonzero((finite != 0) & (finite != 1)))
    if fp.allowed and fp.type in ("int", "float"):
        allowed = np.asarray([float(v) for v in fp.allowed])
        invalid += int(np.count_nonzero(~np.isin(finite, allowed)))
    edges = np.asarray(fp.edges, dtype=np.float64)
    le = np.searchsorted(finite, edges, side="right")
    lt = np.searchsorted(finite, edges, side="left")
    below = int(np.searchsorted(finite, fp.min, side="left")) if fp.min is not None else 0
    above = finite.size - int(np.searchsorted(finite, fp.max, side="right")) if fp.max is not None else 0
    first_lt = int(lt[0]) if edges.size else 0
    last_le = int(le[-1]) if edges.size else finite.size
    return NumericSummary(
        rows=values.size,
        nulls=nulls,
        invalid=invalid,
        below_min=below,
        above_max=above,
        le=le.astype(np.int64),
        lt=lt.astype(np.int64),
        finite=finite.size,
        min=float(finite[0]) if finite.size else None,
        max=float(finite[-1]) if finite.size else None,
        sums=exact(
            [
                finite.sum(),
                np.einsum("i,i->", finite, finite),  # not BLAS: its threads contend with ours
                finite[:first_lt].sum(),
                finite[last_le:].sum(),
            ]
        ),
    )


def _categorical(column: Any, fp: FeaturePlan, rows: int) -> CategoricalSummary:
    counts, nulls, unknown_index = _category_counts(column, fp)
    tracked = set(fp.categories)
    seen = {k: v for k, v in counts.items() if k in tracked}
    others = {k: v for k, v in counts.items() if k not in tracked}
    return CategoricalSummary(
        rows=rows,
        nulls=nulls,
        counts=seen,
        unseen=unknown_index + sum(others.values()),
        examples={k: others[k] for k in sorted(others)[:EXAMPLES]},
    )


def _correlation(batch: Any, plan: Plan) -> CorrelationSummary:
    matrix = np.empty((len(plan.correlation), _length(batch)), dtype=np.float64)  # one contiguous row each
    for j, name in enumerate(plan.correlation):
        matrix[j] = _numeric_values(_column(batch, name))[0]
    matrix -= np.asarray(plan.center)[:, None]
    matrix /= np.asarray(plan.scale)[:, None]
    matrix = matrix[:, np.isfinite(matrix).all(axis=0)].T
    return CorrelationSummary(
        n=matrix.shape[0], sums=exact(matrix.sum(axis=0)), cross=exact(matrix.T @ matrix)
    )


def _tally(column: Any) -> dict[str, int]:
    import pyarrow as pa

    if isinstance(column, pa.Array | pa.ChunkedArray):
        return _category_counts(column, FeaturePlan("", "categorical", "string"))[0]
    return _as_text(column.value_counts(dropna=True, sort=False).to_dict())


def _filter(batch: Any, mask: np.ndarray) -> Any:
    if isinstance(batch, pd.DataFrame):
        return batch.loc[mask].reset_index(drop=True)
    import pyarrow as pa

    return batch.filter(pa.array(mask))


def threads() -> int:
    """MLSPEC_MONITOR_THREADS, else the CPUs this process may use."""
    if value := os.environ.get("MLSPEC_MONITOR_THREADS"):
        return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def summarize_batch(batch: Any, plan: Plan, labels: pd.DataFrame | None = None) -> Summary:
    """The summary of one batch's rows inside the plan's window.

    `labels` (request_id, optionally row, __label__) are joined to the rows; the labeled rows are kept.
    """
    ts = None
    if plan.start_ns is not None or plan.end_ns is not None or plan.volume_cutoff_ns is not None:
        if not _has(batch, "ts"):
            raise ValueError("the prediction log has no 'ts' column")
        ts = timestamps_ns(_column(batch, "ts"))
        nat = np.iinfo(np.int64).min
        keep = ts != nat
        if plan.start_ns is not None:
            keep &= ts > plan.start_ns
        if plan.end_ns is not None:
            keep &= ts <= plan.end_ns
        if not keep.all():
            batch = _filter(batch, keep)
            ts = ts[keep]
    elif _has(batch, "ts"):
        ts = timestamps_ns(_column(batch, "ts"))
        ts = ts[ts != np.iinfo(np.int64).min]
    out = empty(plan)
    batch, ts, out.excluded = _exclude(batch, plan, ts)
    rows = _length(batch)
    if rows == 0:
        return out
    missing = [f.name for f in plan.features if not _has(batch, f.name)]
    if missing:
        raise ValueError(f"the prediction log lacks feature columns {missing}")
    out.rows = rows
    if ts is not None and ts.size:
        out.ts_min_ns, out.ts_max_ns = int(ts.min()), int(ts.max())
        if plan.volume_cutoff_ns is not None:
            out.new_rows = int((ts > plan.volume_cutoff_ns).sum())
        else:
            out.new_rows = int(ts.size)
        hours, per_hour = np.unique(ts // (3600 * 10**9), return_counts=True)
        out.hours = {
            pd.Timestamp(int(h) * 3600, unit="s").strftime("%Y-%m-%dT%H"): int(n)
            for h, n in zip(hours, per_hour, strict=True)
        }
    else:
        out.new_rows = rows
    for key, attr in (("model_version", "versions"), ("source", "sources"), ("variant", "variants")):
        if _has(batch, key):
            setattr(out, attr, _tally(_column(batch, key)))

    def one(fp: FeaturePlan) -> NumericSummary | CategoricalSummary:
        column = _column(batch, fp.name)
        return _numeric(column, fp) if fp.kind == "numeric" else _categorical(column, fp, rows)

    # numpy sorts and searches without the GIL: one thread per core over the features (and the correlation)
    with ThreadPoolExecutor(max_workers=max(1, min(len(plan.features), threads()))) as pool:
        corr = pool.submit(_correlation, batch, plan) if out.correlation is not None else None
        out.features.update(zip((f.name for f in plan.features), pool.map(one, plan.features), strict=True))
        if corr is not None:
            out.correlation = corr.result()
    if labels is not None and len(labels) and _has(batch, "request_id"):
        joined = _join_labels(batch, plan, labels)
        if joined is not None and len(joined):
            out.labeled_parts = [joined]
    return out


def _exclude(batch: Any, plan: Plan, ts: np.ndarray | None) -> tuple[Any, np.ndarray | None, dict[str, int]]:
    """Drop the rows of excluded traffic sources (the load test's) and variants (mirrored copies)."""
    skipped: dict[str, int] = {}
    keep = None
    for key, values in (("source", plan.excluded_sources), ("variant", plan.excluded_variants)):
        if not values or not _has(batch, key) or _length(batch) == 0:
            continue
        column = _column(batch, key)
        text = column if isinstance(column, pd.Series) else column.to_pandas()
        hit = text.astype("string").isin(values).to_numpy(dtype=bool, na_value=False)
        if hit.any():
            for value, count in _as_text(text[hit].value_counts(sort=False).to_dict()).items():
                skipped[f"{key}={value}"] = skipped.get(f"{key}={value}", 0) + int(count)
            keep = ~hit if keep is None else keep & ~hit
    if keep is None or keep.all():
        return batch, ts, skipped
    return _filter(batch, keep), (ts[keep] if ts is not None else None), skipped


def _join_labels(batch: Any, plan: Plan, labels: pd.DataFrame) -> pd.DataFrame | None:
    keys = ["request_id", "row"] if "row" in labels.columns and _has(batch, "row") else ["request_id"]
    wanted = ["request_id", *(["row"] if _has(batch, "row") else []), *(f.name for f in plan.features)]
    if isinstance(batch, pd.DataFrame):
        frame = batch[[c for c in wanted if c in batch.columns]].copy()
        outputs = batch["outputs"] if "outputs" in batch.columns else None
    else:
        frame = batch.select([c for c in wanted if c in batch.schema.names]).to_pandas()
        outputs = batch.column("outputs").to_pandas() if "outputs" in batch.schema.names else None
    if outputs is None:
        return None
    frame["request_id"] = frame["request_id"].astype(str)
    matched = frame["request_id"].isin(labels["request_id"]).to_numpy()
    if not matched.any():
        return None
    frame = frame.loc[matched]
    out_matrix = pd.DataFrame(
        [list(o) for o in outputs.to_numpy()[matched]], index=frame.index, dtype=np.float64
    )
    frame = frame.join(out_matrix.add_prefix("__out_"))
    return frame.merge(labels, on=keys, how="inner")


def moments(s: NumericSummary) -> tuple[float | None, float | None]:
    """Mean and (population) standard deviation of the finite values, from the exact sums."""
    if s.finite == 0:
        return None, None
    total, squares = s.sums[0], s.sums[1]
    variance = (s.finite * squares * _UNIT - total * total) / (_UNIT * _UNIT) / (s.finite * s.finite)
    return inexact(total) / s.finite, max(variance, 0.0) ** 0.5
