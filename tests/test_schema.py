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
