"""Every lint rule has a stable code, a docs/rules.md entry and a spec that triggers it; churn is clean."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers_core import CHURN, LINT, MINIMAL, ROOT, expected_code

import mlspec
from mlspec.lint.engine import RULES
from mlspec.lint.rules import RULE_DOCS  # noqa: F401  (registers the rules)

LINT_SPECS = sorted(LINT.glob("*.yaml"))


def test_at_least_15_rules() -> None:
    assert len(RULES) >= 15
    # MS2xx are lint's own rules; MS301 is the backends' "cannot express", which lint predicts
    assert all(re.fullmatch(r"MS2\d\d", code) for code in set(RULES) - {"MS301"})


# MS219 needs a target whose backend is not installed: test_a_target_not_installed_is_a_warning
NEEDS_A_MISSING_BACKEND = {"MS219"}


def test_every_rule_has_a_trigger_spec() -> None:
    assert {expected_code(p) for p in LINT_SPECS} == set(RULES) - NEEDS_A_MISSING_BACKEND


def test_a_target_not_installed_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlspec import backends

    monkeypatch.setattr(backends, "available_backends", lambda: {"ir": backends.IRBackend})
    (d,) = mlspec.lint(mlspec.loads(MINIMAL + "targets: [airflow]\n"))
    assert (d.code, str(d.severity)) == ("MS219", "warning")
    assert d.hint == "pip install 'mlspec[airflow]' (from a checkout: pip install -e backends/airflow)"


@pytest.mark.parametrize("path", LINT_SPECS, ids=lambda p: p.stem)
def test_rule_fires_alone(path: Path) -> None:
    diagnostics = mlspec.lint(mlspec.load(path))
    assert {d.code for d in diagnostics} == {expected_code(path)}
    lines = path.read_text().splitlines()
    for d in diagnostics:
        assert 1 <= d.location.line <= len(lines) and d.location.col >= 1


def test_churn_and_minimal_are_clean() -> None:
    assert mlspec.lint(mlspec.load(CHURN)) == []
    assert mlspec.lint(mlspec.loads(MINIMAL)) == []


def test_every_code_documented_with_bad_and_good_example() -> None:
    docs = (ROOT / "docs" / "rules.md").read_text()
    codes = set(RULES) | {f"MS00{i}" for i in range(1, 10)} | {"MS101", "MS102", "MS103", "MS104", "MS110"}
    codes |= {"MS301", "MS302"}
    for code in sorted(codes):
        match = re.search(rf"^## {code}\b(.*?)(?=^## |\Z)", docs, re.S | re.M)
        assert match, f"{code} missing from docs/rules.md"
        section = match.group(1)
        assert "Bad" in section and "Good" in section and section.count("```") >= 4, code


def lint_text(text: str) -> set[str]:
    env = {"DB_PASSWORD": "hunter2"}  # pragma: allowlist secret
    return {d.code for d in mlspec.lint(mlspec.loads(text, env=env))}


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ("monitoring: {schedule: '0 3 * * mon-fri'}\n", None),
        ("monitoring: {schedule: '@daily'}\n", None),
        ("monitoring: {schedule: '*/0 * * * *'}\n", "MS204"),
        ("monitoring: {schedule: '0 3 * *'}\n", "MS204"),
        ("images: {runtime: 'localhost:5000/demo'}\n", "MS211"),
        ("images: {runtime: 'localhost:5000/demo:1.2'}\n", None),
        ("images: {runtime: 'ghcr.io/acme/demo@sha256:" + "a" * 64 + "'}\n", None),
        ("serving: {resources: {cpu: 500m, memory: 512m}}\n", "MS212"),
        ("serving: {resources: {cpu: 0.5, memory: 512Mi}}\n", None),
        ("serving: {rollout: {strategy: canary, steps: [10, 50], step_duration: 5m}}\n", "MS207"),
        ("serving: {rollout: {strategy: a-b}}\n", "MS207"),
        # the split ends with the analysis CronJob's verdict after experiment_duration
        ("serving: {rollout: {strategy: a-b, traffic_split: 20, experiment_duration: 7d}}\n", None),
        (
            "registry: {mlflow: {tracking_uri: 'postgresql://ml:hunter2@db:5432/mlflow'}}\n",  # pragma: allowlist secret
            "MS210",
        ),
        # interpolated secrets are refused too: they would land in generated/ through the IR
        ("registry: {mlflow: {tracking_uri: 'postgresql://ml:${DB_PASSWORD}@db:5432/mlflow'}}\n", "MS210"),
        ("registry: {mlflow: {tracking_uri: 'http://mlflow.mlflow.svc:5000'}}\n", None),
        # a 6h window touches at most 7 hourly partitions; only Kubeflow and Airflow fan the window out
        ("monitoring: {window: 6h, shards: 7}\ntargets: [kubeflow]\n", None),
        ("monitoring: {window: 6h, shards: 8}\ntargets: [kubeflow]\n", "MS253"),
        ("monitoring: {window: 6h, shards: 2}\ntargets: [kubernetes]\n", "MS253"),
    ],
)
def test_rule_edges(extra: str, code: str | None) -> None:
    base = (
        MINIMAL
        if not extra.startswith("images")
        else MINIMAL.replace("images: {runtime: ghcr.io/acme/demo:1.0.0}\n", "")
    )
    codes = lint_text(base + extra)
    assert codes == ({code} if code else set())


def test_cycle_in_long_chain_does_not_recurse() -> None:
    steps = "".join(f"  - {{name: s{i}, command: [run], after: s{(i + 1) % 2000}}}\n" for i in range(2000))
    assert "MS214" in lint_text(MINIMAL + "steps:\n" + steps)


def test_environment_overlay_hint() -> None:
    text = MINIMAL + "environments:\n  staging:\n    serving: {replcas: 2}\n"
    (d,) = mlspec.lint(mlspec.loads(text, "spec.yaml"))
    assert d.code == "MS215" and (d.location.line, d.location.col) == (14, 15)
    assert d.hint == "did you mean 'replicas'?"


@pytest.mark.parametrize("path", sorted((ROOT / "specs").glob("*.yaml")), ids=lambda p: p.stem)
def test_example_specs_lint_clean(path: Path) -> None:
    assert mlspec.lint(mlspec.load(path)) == []
