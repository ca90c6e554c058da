"""Data checks: each passes on the committed churn data and fails on bad data with columns and counts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlspec.runtime import checks

DATA = Path(__file__).resolve().parents[2] / "data" / "churn"


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return pd.read_csv(DATA / "train.csv")


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return pd.read_csv(DATA / "reference.csv")


def _by_name(report: dict) -> dict[str, dict]:
    return {c["check"]: c for c in report["checks"]}


def _with(ir, **data_updates):
    return ir.model_copy(update={"data": ir.data.model_copy(update=data_updates)})


def test_committed_churn_data_passes_every_check(churn_ir, train, reference) -> None:
    report = checks.run_checks(churn_ir, train, {"train": train, "reference": reference})
    assert report["passed"], report["summary"]
    names = set(_by_name(report))
    assert {
        "types",
        "nulls",
        "ranges",
        "allowed_values",
        "uniqueness",
        "not_null",
        "row_count",
        "freshness",
        "no_pii_in_features",
        "drift",
        "leakage",
    } <= names
    json.dumps(report)  # the report is JSON
    assert "0 failed" in report["summary"]


def test_schema_failures_via_pandera_name_columns_and_counts(churn_ir, train, reference) -> None:
    bad = train.copy()
    bad["monthly_charges"] = bad["monthly_charges"].astype(object)
    bad.loc[:3, "tenure_months"] = -1  # 4 below min 0
    bad.loc[5, "tenure_months"] = 700  # above max 600
    bad.loc[[6, 7], "contract"] = "weekly"  # not an allowed value
    bad.loc[8, "monthly_charges"] = "abc"  # not a float
    bad.loc[[9, 10], "customer_id"] = "C9999999"  # duplicate id
    bad = bad.drop(columns=["email"])  # missing declared column
    got = _by_name(checks.run_checks(churn_ir, bad, {"reference": reference}))
    assert got["ranges"]["columns"] == ["tenure_months"] and got["ranges"]["count"] == 5
    assert got["allowed_values"]["columns"] == ["contract"] and got["allowed_values"]["count"] == 2
    assert got["types"]["columns"] == ["monthly_charges"] and got["types"]["count"] == 1
    assert got["uniqueness"]["columns"] == ["customer_id"] and got["uniqueness"]["count"] == 2
    assert got["columns_present"]["columns"] == ["email"]
    assert not got["ranges"]["passed"] and "tenure_months (5)" in got["ranges"]["message"]


def test_nulls_not_null_and_nan_only_columns(churn_ir, train, reference) -> None:
    bad = train.copy()
    bad.loc[:9, "tenure_months"] = np.nan
    bad["support_calls"] = np.nan
    strict = [
        c.model_copy(update={"nullable": False}) if c.name == "tenure_months" else c
        for c in churn_ir.data.columns
    ]
    ir = _with(churn_ir, columns=strict)
    got = _by_name(checks.run_checks(ir, bad, {"reference": reference}))
    assert got["not_null"]["columns"] == ["tenure_months"] and got["not_null"]["count"] == 10
    assert got["nulls"]["columns"] == ["tenure_months"] and got["nulls"]["count"] == 10
    assert got["empty_columns"]["columns"] == ["support_calls"]


def test_unique_and_row_count(churn_ir, train) -> None:
    ir = _with(
        churn_ir,
        checks=[
            {"check": "unique", "columns": ["customer_id"]},
            {"check": "row_count", "min": 10, "max": 100},
        ],
    )
    bad = train.head(200).copy()
    bad.loc[[1, 2, 3], "customer_id"] = "C0000001"
    got = _by_name(checks.run_checks(ir, bad, {}))
    assert (
        not got["unique"]["passed"]
        and got["unique"]["count"] == 4
        and got["unique"]["columns"] == ["customer_id"]
    )
    assert not got["row_count"]["passed"] and got["row_count"]["count"] == 200
    assert _by_name(checks.run_checks(ir, train.head(50), {}))["row_count"]["passed"]


@pytest.mark.clock
def test_freshness(churn_ir, train) -> None:
    spec = {"check": "freshness", "column": "event_time", "max_age": "30d"}
    now = pd.Timestamp("2025-07-10T00:00:00Z")
    assert checks.check_freshness(spec, train, now)["passed"]
    stale = checks.check_freshness(spec, train, pd.Timestamp("2026-01-01T00:00:00Z"))
    assert not stale["passed"] and stale["columns"] == ["event_time"] and stale["count"] == len(train)
    garbage = train.assign(event_time="not a time")
    assert not checks.check_freshness(spec, garbage, now)["passed"]


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("jane.doe@example.org", "email"),
        ("call (415) 555-0134", "phone"),
        ("+44 20 7946 0958", "phone"),
        ("4111 1111 1111 1111", "card_number"),
        ("SSN 219-09-9999", "ssn"),
        ("192.168.10.4", "ipv4"),
        ("2001:db8:85a3::8a2e:370:7334", "ipv6"),
    ],
)
def test_pii_in_a_feature_column(churn_ir, train, value: str, kind: str) -> None:
    cols = [
        *churn_ir.data.columns,
        churn_ir.data.columns[0].model_copy(
            update={"name": "note", "type": "string", "pii": False, "unique": False, "role": "feature"}
        ),
    ]
    ir = _with(
        churn_ir,
        columns=cols,
        features=[*churn_ir.data.features, "note"],
        checks=[{"check": "no_pii_in_features", "sample_rows": 10_000}],
    )
    df = train.assign(note="plain text 42")
    assert _by_name(checks.run_checks(ir, df, {}))["no_pii_in_features"]["passed"]
    df.loc[:6, "note"] = value  # 7 rows
    res = _by_name(checks.run_checks(ir, df, {}))["no_pii_in_features"]
    assert not res["passed"]
    assert res["columns"] == ["note"]
    assert res["found"]["note"][kind] == 7
    assert res["count"] >= 7


def test_luhn_rejects_invalid_card_and_numeric_card_columns(churn_ir, train) -> None:
    from mlspec.runtime import pii

    assert pii.scan_text(pd.Series(["4111 1111 1111 1112"]))["card_number"] == 0
    assert pii.scan_text(pd.Series(["666-12-3456"]))["ssn"] == 0  # invalid area
    cards = pd.Series([4111111111111111, 5500005555555559, 378282246310005] * 10)
    assert pii.scan_numeric(cards) == {"card_number": 30}
    assert (
        pii.scan_numeric(pd.Series(np.arange(1_700_000_000, 1_700_000_030))) == {}
    )  # timestamps are not cards


def test_leakage_feature_and_overlap(churn_ir, train) -> None:
    spec = {"check": "leakage", "max_target_correlation": 0.95, "train_test_overlap": 0}
    assert checks.check_leakage(churn_ir, spec, train)["passed"]
    leaky = train.copy()
    rng = np.random.default_rng(0)
    leaky["monthly_charges"] = leaky["churned"] * 50 + rng.normal(0, 1, len(leaky))  # the target in disguise
    res = checks.check_leakage(churn_ir, spec, leaky)
    assert not res["passed"] and res["columns"] == ["monthly_charges"]
    assert res["association"]["monthly_charges"] > 0.99
    dup = pd.concat([train, train.head(400)], ignore_index=True)  # 400 rows twice
    res = checks.check_leakage(churn_ir, spec, dup)
    assert not res["passed"] and res["train_test_overlap"] > 0 and res["count"] == res["train_test_overlap"]
    assert "test rows also in train" in res["message"]


def test_drift_check(churn_ir, train, reference) -> None:
    spec = {"check": "drift", "against": "reference", "method": "psi", "threshold": 0.2, "features": "all"}
    assert checks.check_drift(churn_ir, spec, train, {"reference": reference})["passed"]
    shifted = train.assign(monthly_charges=train["monthly_charges"] + 40, contract="two-year")
    res = checks.check_drift(churn_ir, spec, shifted, {"reference": reference})
    assert not res["passed"]
    assert res["columns"] == ["monthly_charges", "contract"] and res["count"] == 2
    assert res["scores"]["tenure_months"] < 0.2


def test_split_is_seeded_and_stratified(churn_ir, train) -> None:
    a_train, a_test = checks.split(churn_ir, train)
    _, b_test = checks.split(churn_ir, train)
    pd.testing.assert_frame_equal(a_test, b_test)
    assert len(a_test) == 1000 and len(a_train) == 4000
    assert abs(a_test["churned"].mean() - train["churned"].mean()) < 0.002
    with pytest.raises(ValueError, match="stratify"):
        checks.split(churn_ir, train.assign(churned=np.nan))
