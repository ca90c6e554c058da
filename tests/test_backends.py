"""The backend seam: protocol, entry-point discovery, capability tables and the unsupported() path."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint, entry_points

import pytest
from click.testing import CliRunner
from helpers_core import CHURN, run_cli

import mlspec
from mlspec import backends
from mlspec.backends import (
    ENTRY_POINT_GROUP,
    FEATURES,
    KNOWN_BACKENDS,
    Backend,
    IRBackend,
    Support,
    available_backends,
    load_backend,
)
from mlspec.cli import cli
from mlspec.diagnostics import MlspecError, Severity


@pytest.fixture()
def fake_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register tests/fake_backend.py under the real entry-point group, as an installed plugin would."""
    real = entry_points

    def patched(**kwargs):
        found = list(real(**kwargs))
        if kwargs.get("group") == ENTRY_POINT_GROUP:
            found += [
                EntryPoint("fake", "fake_backend:FakeBackend", ENTRY_POINT_GROUP),
                EntryPoint("broken", "fake_backend:BrokenBackend", ENTRY_POINT_GROUP),
            ]
        return found

    monkeypatch.setattr(backends, "entry_points", patched)


def test_ir_backend_in_core(churn_ir) -> None:
    backend = load_backend("ir")
    assert isinstance(backend, Backend) and isinstance(backend, IRBackend)
    assert backend.capabilities == dict.fromkeys(FEATURES, Support.FULL)
    (artifact,) = backend.emit(churn_ir, backends.EmitContext())
    assert artifact.path == "ir.json" and json.loads(artifact.content) == churn_ir.model_dump(mode="json")


def test_installed_entry_points_are_discovered() -> None:
    names = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert "ir" in names
    assert names <= set(available_backends())


def test_entry_point_discovery_is_lazy(fake_entry_points) -> None:
    found = available_backends()
    assert isinstance(found["fake"], EntryPoint)  # nothing imported until the backend is used
    backend = load_backend("fake")
    assert backend.name == "fake" and backend.version == "0.0.1"


def test_unknown_backend_did_you_mean(fake_entry_points) -> None:
    with pytest.raises(MlspecError) as info:
        load_backend("fak")
    (d,) = info.value.diagnostics
    assert d.code == "MS302" and d.hint == "did you mean 'fake'?"


def test_unsupported_feature_is_an_error(fake_entry_points) -> None:
    with pytest.raises(MlspecError) as info:
        mlspec.compile(mlspec.load(CHURN), ["fake"])
    unsupported = [d for d in info.value.diagnostics if d.code == "MS301"]
    assert {d.severity for d in unsupported} == {Severity.ERROR}
    messages = " ".join(d.message for d in unsupported)
    assert "fake cannot express serving.cache: not built yet" in messages
    assert "fake cannot express rollout.canary: the engine cannot" in messages
    # located at the spec lines that use them, as lint would report them
    assert {(d.location.line, d.key_path) for d in unsupported} == {
        (75, ("serving", "rollout", "strategy")),
        (79, ("serving", "cache")),
    }
    assert all(d.hint and "--allow-unsupported" in d.hint for d in unsupported)


def test_allow_unsupported_downgrades_to_warnings(fake_entry_points) -> None:
    result = mlspec.compile(mlspec.load(CHURN), ["fake"], allow_unsupported=True)
    assert {d.severity for d in result.diagnostics} == {Severity.WARNING}
    assert [a.path for a in result.artifacts["fake"]] == ["nested/pipeline.yaml", "steps.txt"]


def test_cli_unsupported_exit_codes(fake_entry_points, tmp_path) -> None:
    runner = CliRunner()
    args = ["compile", str(CHURN), "--target", "fake", "--out", str(tmp_path)]
    refused = runner.invoke(cli, args)
    assert refused.exit_code == 1 and "MS301" in refused.output
    assert not (tmp_path / "churn").exists()
    allowed = runner.invoke(cli, [*args, "--allow-unsupported"])
    assert allowed.exit_code == 0, allowed.output
    assert (tmp_path / "churn" / "fake" / "steps.txt").is_file()


def test_targets_lists_capabilities(fake_entry_points) -> None:
    result = CliRunner().invoke(cli, ["targets", "--json"])
    rows = json.loads(result.output)
    assert rows["ir"]["version"] == "2" and set(rows["ir"]["states"].values()) == {"full"}
    assert rows["fake"]["capabilities"]["serving.cache"] is False
    assert rows["fake"]["states"]["serving.cache"] == "not_yet"
    assert rows["fake"]["states"]["rollout.canary"] == "impossible"
    text = CliRunner().invoke(cli, ["targets"]).output
    assert f"ir 2: {len(FEATURES)}/{len(FEATURES)} features" in text


def test_every_shipped_backend_states_every_feature() -> None:
    for name in KNOWN_BACKENDS:
        backend = load_backend(name)
        assert set(backend.capabilities) == set(FEATURES), name
        assert all(isinstance(state, Support) for state in backend.capabilities.values()), name


def test_targets_cli_subprocess() -> None:
    result = run_cli("targets")
    assert result.returncode == 0 and result.stdout.startswith(("airflow", "ir", "kube", "terraform"))
