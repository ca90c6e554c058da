"""JSON Schemas: generated from the models, committed, checked for staleness, agreeing with the models."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from helpers_core import INVALID, ROOT, SPECS, run_cli, schema_verdict
from ruamel.yaml import YAML

import mlspec
from mlspec.schema import IR_SCHEMA_FILE, SPEC_SCHEMA_FILE, schema_files

SCHEMAS = ROOT / "schemas"
MODELINE = "# yaml-language-server: $schema="


def _yaml(path: Path):
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    return jsonschema.Draft202012Validator(schema)


def test_committed_schemas_are_current() -> None:
    for name, text in schema_files().items():
        assert (SCHEMAS / name).read_text(encoding="utf-8") == text, f"{name} is stale: run `mlspec schema`"
    result = run_cli("schema", "--check")
    assert result.returncode == 0, result.stderr


def test_schema_check_detects_stale(tmp_path: Path) -> None:
    assert run_cli("schema", "--out-dir", str(tmp_path)).returncode == 0
    assert run_cli("schema", "--check", "--out-dir", str(tmp_path)).returncode == 0
    spec_schema = tmp_path / SPEC_SCHEMA_FILE
    spec_schema.write_text(spec_schema.read_text().replace('"replicas"', '"replicaz"', 1))
    before = spec_schema.read_bytes()
    result = run_cli("schema", "--check", "--out-dir", str(tmp_path))
    assert result.returncode == 1 and SPEC_SCHEMA_FILE in result.stderr
    assert spec_schema.read_bytes() == before  # --check writes nothing


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.stem)
def test_example_specs_validate_under_schema_and_models(path: Path) -> None:
    assert path.read_text().startswith(MODELINE)
    _validator(SPEC_SCHEMA_FILE).validate(_yaml(path))
    mlspec.load(path)


@pytest.mark.parametrize("path", sorted(INVALID.glob("*.yaml")), ids=lambda p: p.stem)
def test_invalid_corpus_against_schema(path: Path) -> None:
    errors = list(_validator(SPEC_SCHEMA_FILE).iter_errors(_yaml(path)))
    if schema_verdict(path) == "reject":
        assert errors, f"{path.name} should be rejected by the JSON Schema"
    else:  # a cross-field rule JSON Schema does not express; the models still reject it (test_validate)
        assert not errors, [e.message for e in errors]


def test_ir_output_validates_against_ir_schema() -> None:
    result = run_cli("ir", "specs/churn.yaml")
    assert result.returncode == 0, result.stderr
    _validator(IR_SCHEMA_FILE).validate(json.loads(result.stdout))
    staging = run_cli("ir", "specs/churn.yaml", "--env", "staging")
    _validator(IR_SCHEMA_FILE).validate(json.loads(staging.stdout))


def test_init_output_has_modeline_and_validates(tmp_path: Path) -> None:
    out = tmp_path / "mlops.yaml"
    assert run_cli("init", "fraud", "--out", str(out)).returncode == 0
    assert out.read_text().startswith(MODELINE)
    _validator(SPEC_SCHEMA_FILE).validate(_yaml(out))


# ------------------------------------------------------------------------------------------------ agreement
# The editor's JSON Schema and the models (what `mlspec lint` validates with) must give the same verdict on
# every value. The only exceptions are cross-field rules JSON Schema cannot state (a model_validator's
# `value_error`, e.g. "a gate needs 'min' or 'max'"), which the invalid corpus marks `schema: accept`.
def _verdicts(data: dict) -> tuple[bool, bool, bool]:
    """(schema accepts, models accept, models refused only with cross-field value errors)."""
    from pydantic import ValidationError

    from mlspec.spec.models import Spec

    schema_ok = not list(_validator(SPEC_SCHEMA_FILE).iter_errors(data))
    try:
        Spec.model_validate(data)
    except ValidationError as exc:
        return schema_ok, False, all(e["type"] == "value_error" for e in exc.errors())
    return schema_ok, True, False


@pytest.mark.parametrize(
    ("path", "value", "accepted"),
    [
        (("infrastructure", "node_pools", "gpu", "spot"), "yes", False),  # YAML 1.2: a string, not a bool
        (("infrastructure", "node_pools", "gpu", "spot"), True, True),
        (("training", "tuning", "trials"), "3", False),
        (("training", "tuning", "trials"), 3, True),
        (("serving", "replicas", "min"), 1.5, False),
        (("serving", "slo", "latency_p99_ms"), 150, True),  # an integer is a number
        (("training", "timeout"), "2 hours", False),
        (("training", "tuning", "space", "lr"), {"log_uniform": [1e-3, 3e-2, 1]}, False),
        (("training", "tuning", "space", "lr"), {"unifrom": [0.1, 0.2]}, False),
        (("targets",), ["kubeflo"], False),
        (("serving",), None, True),  # an explicit null section is no section
        (("serving", "rollout", "strategy"), "canery", False),
    ],
)
def test_schema_and_models_agree_on_values(path: tuple, value: object, accepted: bool) -> None:
    data = _yaml(SPECS / "churn.yaml")
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    schema_ok, models_ok, _ = _verdicts(data)
    assert (schema_ok, models_ok) == (accepted, accepted)


def test_interpolated_strings_are_judged_after_substitution_by_both(tmp_path: Path) -> None:
    text = (SPECS / "churn.yaml").read_text().replace("  timeout: 2h\n", "  timeout: ${TRAIN_TIMEOUT:-2h}\n")
    raw = YAML(typ="safe", pure=True).load(text)
    assert not list(_validator(SPEC_SCHEMA_FILE).iter_errors(raw))  # the editor cannot know the variable
    assert mlspec.loads(text, env={"TRAIN_TIMEOUT": "3h"}).spec.training.timeout == "3h"


def test_a_wrong_check_kind_is_reported_at_the_check_key() -> None:
    data = _yaml(SPECS / "churn.yaml")
    data["data"]["checks"][0] = {"check": "uniq", "columns": ["customer_id"]}
    (error,) = _validator(SPEC_SCHEMA_FILE).iter_errors(data)
    assert list(error.absolute_path) == ["data", "checks", 0, "check"]
    assert "'uniq' is not one of" in error.message


def test_an_error_inside_an_optional_section_names_its_key() -> None:
    data = _yaml(SPECS / "churn.yaml")
    data["serving"]["replicas"]["min"] = "two"
    errors = list(_validator(SPEC_SCHEMA_FILE).iter_errors(data))
    assert [list(e.absolute_path) for e in errors] == [["serving", "replicas", "min"]]
    assert "is not of type 'null'" not in errors[0].message


def _mutations() -> object:
    from hypothesis import strategies as st

    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 10**6),
        st.floats(-10, 10**6, allow_nan=False),
        st.sampled_from(
            ["yes", "3", "2h", "16Gi", "0 3 * * 1", "nvidia-a10g", "canary", "", "x" * 70, "a-b"]
        ),
        st.lists(st.integers(0, 100), max_size=3),
    )
    return leaves


def test_schema_and_models_agree_on_mutated_specs() -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    base = _yaml(SPECS / "churn.yaml")

    def leaf_paths(node: object, prefix: tuple = ()) -> list[tuple]:
        if isinstance(node, dict):
            return [p for k, v in node.items() for p in leaf_paths(v, (*prefix, k))] or [prefix]
        if isinstance(node, list):
            return [p for i, v in enumerate(node) for p in leaf_paths(v, (*prefix, i))] or [prefix]
        return [prefix]

    all_paths = [p for p in leaf_paths(base) if p and p[0] != "environments"]

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(st.sampled_from(all_paths), _mutations()), min_size=1, max_size=3))
    def check(changes: list) -> None:
        import copy

        data = copy.deepcopy(base)
        for path, value in changes:
            parent = data
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]] = value
        schema_ok, models_ok, cross_field_only = _verdicts(data)
        assert schema_ok == models_ok or (schema_ok and cross_field_only), changes

    check()
