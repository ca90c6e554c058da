"""Drift methods against scipy's reference implementations, plus NaN, unseen-category and profile behaviour."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mlspec.runtime import drift

COLUMNS = [{"name": "x", "type": "float"}, {"name": "c", "type": "category"}]


def _scores(a: np.ndarray, b: np.ndarray) -> tuple[float, float, dict]:
    """KS and W1 (unnormalized) of current `b` against the profile of `a`, through the window summary."""
    prof = drift.reference_profile(pd.DataFrame({"x": a}), ["x"], [{"name": "x", "type": "float"}])
    cur = pd.DataFrame({"x": b})
    ks = drift.compute_drift(prof, cur, "ks", 0.1)["features"]["x"]["score"]
    w1 = drift.compute_drift(prof, cur, "wasserstein", 0.1)["features"]["x"]["wasserstein"]
    return ks, w1, prof


@pytest.mark.parametrize("seed", range(25))
def test_ks_and_wasserstein_equal_scipy_on_small_samples(seed: int) -> None:
    rng = np.random.default_rng(seed)
    if seed % 2:  # ties: integer data, every current value on a reference point or outside the range
        a = rng.integers(0, 6, rng.integers(1, 50)).astype(float)
        b = rng.integers(1, 8, rng.integers(1, 50)).astype(float)
    else:
        a = rng.normal(0, 1, rng.integers(1, 50))
        b = rng.normal(0.4, 1.7, rng.integers(1, 50))
    ks, w1, prof = _scores(a, b)
    assert ks == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)  # KS is exact from the counts
    expected = stats.wasserstein_distance(a, b)
    if seed % 2:
        assert w1 == pytest.approx(expected, abs=1e-9)  # values on the edges and in the tails: exact
    else:
        # between two edges the current values are spread evenly: off by at most gap x share inside it
        edges = np.unique(np.concatenate((prof["features"]["x"]["edges"], np.sort(a))))
        inside = np.histogram(b[(b > edges[0]) & (b < edges[-1])], edges)[0] / len(b)
        assert abs(w1 - expected) <= np.sum(np.diff(edges) * inside) + 1e-9


def test_binned_methods_equal_scipy() -> None:
    rng = np.random.default_rng(3)
    r = rng.random(7)
    c = rng.random(7)
    r, c = r / r.sum(), c / c.sum()
    assert drift.js(r, c) == pytest.approx(jensenshannon(r, c), abs=1e-12)
    assert drift.kl(r, c) == pytest.approx(stats.entropy(c, r), abs=1e-12)  # KL(current || reference)
    assert drift.psi(r, c) == pytest.approx(stats.entropy(c, r) + stats.entropy(r, c), abs=1e-12)
    # empty bins are smoothed with epsilon, so scores stay finite
    assert np.isfinite(drift.psi(np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5])))
    assert np.isfinite(drift.kl(np.array([1.0, 0.0]), np.array([0.0, 1.0])))


def test_psi_from_profile_matches_a_hand_computation() -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 20_000), "c": rng.choice(["a", "b"], 20_000)})
    cur = pd.DataFrame({"x": rng.normal(0.5, 1, 5_000), "c": rng.choice(["a", "b"], 5_000)})
    prof = drift.reference_profile(ref, ["x", "c"], COLUMNS)
    edges = np.quantile(ref["x"], np.arange(1, 10) / 10)
    r = np.histogram(ref["x"], np.concatenate(([-np.inf], edges, [np.inf])))[0] / len(ref)
    c = np.histogram(cur["x"], np.concatenate(([-np.inf], edges, [np.inf])))[0] / len(cur)
    expected = drift.psi(np.append(r, 0), np.append(c, 0))
    got = drift.compute_drift(prof, cur, "psi", 0.2)["features"]["x"]["score"]
    assert got == pytest.approx(expected, rel=1e-3)
    assert got > 0.2


@pytest.mark.parametrize("method", drift.METHODS)
def test_every_method_flags_the_shifted_feature_only(method: str) -> None:
    rng = np.random.default_rng(1)
    n = 20_000
    ref = pd.DataFrame(
        {"x": rng.normal(0, 1, n), "y": rng.exponential(2, n), "c": rng.choice(["a", "b", "c"], n)}
    )
    cur = pd.DataFrame(
        {
            "x": rng.normal(1.0, 1, n),
            "y": rng.exponential(2, n),
            "c": rng.choice(["a", "b", "c"], n, p=[0.7, 0.2, 0.1]),
        }
    )
    cols = [*COLUMNS, {"name": "y", "type": "float"}]
    prof = drift.reference_profile(ref, ["x", "y", "c"], cols)
    json.loads(json.dumps(prof))  # JSON-serializable
    threshold = {"psi": 0.2, "kl": 0.1, "js": 0.1, "wasserstein": 0.1, "ks": 0.1}[method]
    res = drift.compute_drift(prof, cur, method, threshold)
    assert res["drifted_features"] == ["x", "c"], res["features"]
    same = drift.compute_drift(prof, ref.sample(5000, random_state=0), method, threshold)
    assert same["drifted_features"] == []


def test_wasserstein_score_is_normalized_by_reference_std() -> None:
    rng = np.random.default_rng(2)
    ref = pd.DataFrame({"x": rng.normal(0, 10, 1500)})
    cur = pd.DataFrame({"x": rng.normal(5, 10, 1500)})
    prof = drift.reference_profile(ref, ["x"], [{"name": "x", "type": "float"}])  # <= 2000 points: exact
    res = drift.compute_drift(prof, cur, "wasserstein", 0.1)["features"]["x"]
    # 1500 reference points as edges: the even spread between two of them costs a few parts in 1e5
    assert res["wasserstein"] == pytest.approx(stats.wasserstein_distance(ref["x"], cur["x"]), rel=1e-4)
    assert res["score"] == pytest.approx(res["wasserstein"] / ref["x"].std(ddof=0), rel=1e-9)


def test_nan_and_unseen_categories() -> None:
    ref = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0] * 250, "c": ["a", "b"] * 500})
    prof = drift.reference_profile(ref, ["x", "c"], COLUMNS)
    cur = pd.DataFrame({"x": [1.0, np.nan, np.nan, 4.0] * 250, "c": ["a", "zzz", None, "b"] * 250})
    res = drift.compute_drift(prof, cur, "psi", 0.2)["features"]
    assert res["x"]["nan_fraction_current"] == 0.5 and res["x"]["drifted"]  # missing values are a bin
    assert res["c"]["unseen_fraction"] == 0.25 and res["c"]["nan_fraction_current"] == 0.25
    assert res["c"]["drifted"]
    tv = drift.compute_drift(prof, cur, "ks", 0.1)["features"]["c"]["score"]
    assert tv == pytest.approx(0.5)  # total variation: half the mass moved to unseen/missing
    all_nan = drift.compute_drift(prof, pd.DataFrame({"x": [np.nan] * 10, "c": ["a"] * 10}), "ks", 0.1)
    assert all_nan["features"]["x"]["score"] is None and all_nan["features"]["x"]["drifted"]
    with pytest.raises(ValueError, match="empty window"):
        drift.compute_drift(prof, cur.head(0), "psi", 0.2)
    with pytest.raises(ValueError, match="no non-missing values"):
        drift.reference_profile(pd.DataFrame({"x": [np.nan] * 3, "c": ["a"] * 3}), ["x"], COLUMNS)


def test_correlation_change() -> None:
    rng = np.random.default_rng(4)
    a = rng.normal(size=5000)
    ref = pd.DataFrame({"a": a, "b": a + rng.normal(0, 0.5, 5000), "c": rng.normal(size=5000)})
    cols = [{"name": n, "type": "float"} for n in "abc"]
    prof = drift.reference_profile(ref, ["a", "b", "c"], cols)
    assert drift.correlation_change(prof, ref) == pytest.approx(0.0, abs=1e-12)
    broken = ref.assign(b=rng.normal(size=5000))
    expected = abs(np.corrcoef(ref["a"], ref["b"])[0, 1] - np.corrcoef(broken["a"], broken["b"])[0, 1])
    assert drift.correlation_change(prof, broken) == pytest.approx(expected, abs=0.02)
