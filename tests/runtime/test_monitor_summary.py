"""Mergeable window summaries: a window fanned out over partitions reduces to exactly the single-process scores."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from functools import reduce
from pathlib import Path

import monitor_scenario as scenario
import numpy as np
import pandas as pd
import pytest

from mlspec.runtime import drift
from mlspec.runtime.monitor import window_plan
from mlspec.runtime.monitoring import quality, window
from mlspec.runtime.monitoring.performance import performance
from mlspec.runtime.monitoring.plan import Plan, build_plan
from mlspec.runtime.monitoring.reference import load_reference
from mlspec.runtime.monitoring.summary import Summary, empty, merge, summarize_batch


def _scores(ir, ref, plan: Plan, s: Summary) -> dict:
    out = {m: drift.score(ref.profile, s, m, 0.1) for m in drift.METHODS}
    out["correlation"] = drift.correlation_from_summary(ref.profile, s, plan.correlation)
    out["quality"] = quality.assess(plan, s, ref.profile)
    out["performance"] = performance(ir, s.labeled, ref.preprocessing, ref.metrics)
    return out


def _without_labeled(s: Summary) -> dict:
    return {k: v for k, v in s.to_json().items() if k != "labeled"}


def test_fanned_out_partitions_reduce_to_exactly_the_single_process_scores(tmp_path: Path) -> None:
    ir = scenario.churn_ir_with_data_quality(tmp_path)
    scenario.write_reference(tmp_path / "run", ir)
    frame = scenario.broken_window()
    ids = scenario.write_log(tmp_path / "log", frame)
    scenario.write_labels(tmp_path / "log", frame, ids)
    ref = load_reference(ir, str(tmp_path / "run"))
    start = scenario.NOW - pd.Timedelta(days=1)
    plan = window_plan(ir, ref, start, scenario.NOW)
    labels = window.read_labels(str(tmp_path / "log" / "labels"), ir.data.target)
    parts, _ = window.partitions(str(tmp_path / "log"), start, scenario.NOW)
    assert len(parts) == 24  # one per hour

    single = window.summarize_window(parts, plan, labels)

    # fan out: every partition in another process, summaries back as JSON, reduced as a tree in reverse order
    with ProcessPoolExecutor(max_workers=2) as pool:
        texts = list(pool.map(scenario.summarize_to_json, [(p, plan.to_json(), labels) for p in parts]))
    pieces = [Summary.from_json(json.loads(t)) for t in reversed(texts)]
    while len(pieces) > 1:
        pieces = [
            merge(*pieces[i : i + 2]) if i + 1 < len(pieces) else pieces[i] for i in range(0, len(pieces), 2)
        ]
    fanned = pieces[0]

    assert fanned.rows == single.rows == len(frame)
    assert _without_labeled(fanned) == _without_labeled(single)  # every count and exact sum, bit for bit
    assert _scores(ir, ref, plan, fanned) == _scores(ir, ref, plan, single)  # == on floats: exactly equal


def _batches(seed: int, n: int) -> list[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "ts": pd.date_range("2025-07-01", periods=n, freq="s", tz="UTC"),
            "x": rng.normal(1e6, 3.0, n),  # a large mean: exact sums keep the variance exact
            "y": rng.gamma(2.0, 1.5, n),
            "c": rng.choice(["a", "b", "zz", None], n),
        }
    )
    frame.loc[rng.random(n) < 0.1, "x"] = np.nan
    return [frame.iloc[i : i + n // 5] for i in range(0, n, n // 5)]


def test_merge_is_exact_associative_and_commutative() -> None:
    ref = pd.DataFrame(
        {"x": np.linspace(1e6 - 9, 1e6 + 9, 500), "y": np.linspace(0, 9, 500), "c": ["a", "b"] * 250}
    )
    cols = [{"name": "x", "type": "float"}, {"name": "y", "type": "float"}, {"name": "c", "type": "category"}]
    profile = drift.reference_profile(ref, ["x", "y", "c"], cols)
    plan = build_plan(profile, columns=cols)
    a, b, c, d, e = (summarize_batch(batch, plan) for batch in _batches(0, 5000))
    left = merge(merge(merge(a, b), merge(c, d)), e)
    right = merge(e, merge(d, merge(c, merge(b, a))))
    assert left.to_json() == right.to_json()
    assert reduce(merge, [a, b, c, d, e], empty(plan)).to_json() == left.to_json()
    whole = summarize_batch(pd.concat(_batches(0, 5000)), plan)
    for name in ("x", "y"):  # counts do not depend on batching at all
        got, want = left.features[name], whole.features[name]
        assert (got.le.tolist(), got.lt.tolist(), got.nulls, got.finite, got.min, got.max) == (
            want.le.tolist(),
            want.lt.tolist(),
            want.nulls,
            want.finite,
            want.min,
            want.max,
        )
    got_c, want_c = left.features["c"], whole.features["c"]
    assert (got_c.counts, got_c.unseen, got_c.nulls, got_c.examples) == (
        want_c.counts,
        want_c.unseen,
        want_c.nulls,
        want_c.examples,
    )
    corr = drift.current_correlation(left)
    complete = pd.concat(_batches(0, 5000))[["x", "y"]].dropna()
    assert corr is not None and corr[0, 1] == pytest.approx(
        np.corrcoef(complete["x"], complete["y"])[0, 1], abs=1e-12
    )


def _leaves(obj) -> int:
    if isinstance(obj, dict):
        return sum(_leaves(v) for v in obj.values())
    if isinstance(obj, list):
        return sum(_leaves(v) for v in obj)
    return 1


def test_a_summary_does_not_grow_with_rows() -> None:
    ref = pd.DataFrame({"x": np.random.default_rng(1).normal(size=20_000), "c": ["a", "b"] * 10_000})
    cols = [{"name": "x", "type": "float"}, {"name": "c", "type": "category"}]
    profile = drift.reference_profile(ref, ["x", "c"], cols)
    plan = build_plan(profile, columns=cols)
    sizes = []
    for n in (1_000, 200_000):
        rng = np.random.default_rng(n)
        cur = pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice([f"v{i}" for i in range(500)], n)})
        sizes.append(_leaves(summarize_batch(cur, plan).to_json()))
    assert sizes[0] == sizes[1] > 4000  # 200x the rows, 500 distinct unseen values: as many numbers
