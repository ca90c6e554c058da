"""The spec models: the invalid corpus is rejected with its expected code; diagnostics are located and hinted."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_core import CHURN, INVALID, MINIMAL, expected_code, run_cli

import mlspec
from mlspec.diagnostics import MlspecError

CORPUS = sorted(INVALID.glob("*.yaml"))


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_corpus_rejected_by_models(path: Path) -> None:
    with pytest.raises(MlspecError) as info:
        mlspec.load(path)
    diagnostics = info.value.diagnostics
    assert expected_code(path) in {d.code for d in diagnostics}
    text = path.read_text().splitlines()
    for d in diagnostics:
        assert d.location.path.endswith(path.name)
        assert 4 <= d.location.line <= len(text), d  # below the three header comments, inside the file
        assert d.location.col >= 1


def test_minimal_and_churn_validate() -> None:
    assert mlspec.loads(MINIMAL).spec.metadata.name == "demo"
    assert mlspec.load(CHURN).spec.serving is not None


def test_unknown_key_points_at_the_key_with_did_you_mean() -> None:
    text = MINIMAL + "serving:\n  replcas: {min: 1}\n"
    with pytest.raises(MlspecError) as info:
        mlspec.loads(text, "spec.yaml")
    (d,) = info.value.diagnostics
    assert d.code == "MS104" and (d.location.line, d.location.col) == (13, 3)
    assert d.hint == "did you mean 'replicas'?"


def test_enum_value_did_you_mean() -> None:
    text = MINIMAL + "serving:\n  rollout: {strategy: canery}\n"
    with pytest.raises(MlspecError) as info:
        mlspec.loads(text, "spec.yaml")
    (d,) = info.value.diagnostics
    assert d.code == "MS103" and d.hint == "did you mean 'canary'?"
    assert (d.location.line, d.location.col) == (13, 23)


def test_unknown_union_member_key_lists_members() -> None:
    text = MINIMAL + "training:\n  tuning:\n    metric: {name: auc}\n    space: {lr: {normal: [0, 1]}}\n"
    with pytest.raises(MlspecError) as info:
        mlspec.loads(text)
    (d,) = info.value.diagnostics
    assert d.code == "MS104" and "'normal'" in d.message


def test_several_errors_reported_together() -> None:
    text = MINIMAL.replace("kind: MLSystem", "kind: MLSys") + "servng: {}\n"
    with pytest.raises(MlspecError) as info:
        mlspec.loads(text)
    assert {d.code for d in info.value.diagnostics} == {"MS103", "MS104"}


@pytest.mark.parametrize("path", CORPUS[:6], ids=lambda p: p.stem)
def test_corpus_cli_exit_1_without_traceback(path: Path) -> None:
    result = run_cli("lint", str(path))
    assert result.returncode == 1
    assert expected_code(path) in result.stdout and "Traceback" not in result.stderr
