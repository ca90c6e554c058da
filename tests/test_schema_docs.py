"""The spec's JSON Schema is worth hovering (every key described, snippets that validate), is published with a
SchemaStore catalog entry, and check-jsonschema (what editors and CI run) agrees with `mlspec lint`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from helpers_core import CHURN, INVALID, ROOT, SPECS, run_cli
from ruamel.yaml import YAML

from mlspec.schema import CATALOG_FILE, DRAFT, SNIPPETS, SPEC_SCHEMA_FILE
from mlspec.spec.models import Spec

SCHEMAS = ROOT / "schemas"
CHECK_JSONSCHEMA = str(Path(sys.executable).with_name("check-jsonschema"))

# Files lint rejects at the schema stage (MS1xx) that JSON Schema cannot reject: each is arithmetic on a
# value that no keyword of the 2020-12 vocabulary can do.
SEMANTIC_ONLY = {
    "network-cidr-host-bits.yaml": "host bits of a CIDR (10.0.0.1/16) need the address masked by its prefix",
    "network-cidr-too-small.yaml": "whether a range splits into two subnets per zone of at least a /28 "
    "depends on availability_zones: arithmetic across two keys",
}


def _spec_schema() -> dict:
    return json.loads((SCHEMAS / SPEC_SCHEMA_FILE).read_text(encoding="utf-8"))


def _declared_properties(node: object, path: str = "") -> list[tuple[str, dict]]:
    """Every (path, schema) declared under `properties`, not those inside an `if` or a `not` (conditions, not
    keys an editor offers: the tag test of a discriminated union, "not both entrypoint and builtin")."""
    found: list[tuple[str, dict]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("if", "not"):
                continue
            if key == "properties" and isinstance(value, dict):
                found += [(f"{path}.{name}", sub) for name, sub in value.items()]
            found += _declared_properties(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += _declared_properties(item, f"{path}/{i}")
    return found


def test_every_property_and_definition_is_described() -> None:
    schema = _spec_schema()
    properties = _declared_properties(schema)
    assert len(properties) > 200
    undescribed = [path for path, sub in properties if not sub.get("description", "").strip()]
    assert not undescribed, undescribed
    definitions = schema["$defs"]
    assert len(definitions) > 50
    assert not [name for name, sub in definitions.items() if not sub.get("description", "").strip()]
    # VS Code renders markdownDescription; the same text, on one line
    for path, sub in [*properties, *definitions.items()]:
        assert sub["markdownDescription"] == sub["description"], path
        assert "\n" not in sub["description"], path


def test_no_generated_titles_on_keys() -> None:
    titled = [path for path, sub in _declared_properties(_spec_schema()) if "title" in sub]
    assert not titled, titled  # "Latency P99 Ms" tells nothing the key does not


def _section_validator(schema: dict, section: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        {"$schema": DRAFT, "$defs": schema["$defs"], **schema["properties"][section]}
    )


@pytest.mark.parametrize("section", sorted(SNIPPETS))
def test_default_snippets_validate(section: str) -> None:
    schema = _spec_schema()
    (snippet,) = schema["properties"][section]["defaultSnippets"]
    _section_validator(schema, section).validate(snippet["body"])
    # and in a whole spec, for the models too (what lint validates with)
    spec = YAML(typ="safe", pure=True).load(CHURN.read_text(encoding="utf-8"))
    spec[section] = snippet["body"]
    jsonschema.Draft202012Validator(schema).validate(spec)
    Spec.model_validate(spec)


def test_every_top_level_section_has_a_snippet() -> None:
    sections = set(_spec_schema()["properties"]) - {"$schema", "apiVersion", "kind"}
    assert sections == set(SNIPPETS)


def test_catalog_entry_points_at_the_schema_id() -> None:
    catalog = json.loads((SCHEMAS / CATALOG_FILE).read_text(encoding="utf-8"))
    assert catalog["$schema"] == "https://json.schemastore.org/schema-catalog.json"
    assert catalog["version"] == 1.0
    (entry,) = catalog["schemas"]
    assert set(entry) == {"name", "description", "fileMatch", "url"}
    assert entry["url"] == _spec_schema()["$id"]
    assert {"mlops.yaml", "mlops.yml"} <= set(entry["fileMatch"])


# ------------------------------------------------------------------------------ check-jsonschema and lint


def _check_jsonschema(paths: list[Path]) -> dict[str, list[str]]:
    """File name -> check-jsonschema's error messages (empty when it accepts the file), one run for all."""
    result = subprocess.run(
        [CHECK_JSONSCHEMA, "--schemafile", str(SCHEMAS / SPEC_SCHEMA_FILE), "-o", "JSON", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(result.stdout)
    assert not report.get("parse_errors"), report["parse_errors"]
    errors: dict[str, list[str]] = {p.name: [] for p in paths}
    for error in report["errors"]:
        errors[Path(error["filename"]).name].append(error["message"])
    assert result.returncode == (1 if any(errors.values()) else 0), result.stderr
    return errors


def test_check_jsonschema_accepts_every_example_spec() -> None:
    paths = sorted(SPECS.glob("*.yaml"))
    assert paths
    assert _check_jsonschema(paths) == {p.name: [] for p in paths}
    lint = run_cli("lint", *map(str, paths), "--format", "json")
    assert not [d for d in json.loads(lint.stdout) if d["severity"] == "error"]


def test_check_jsonschema_rejects_what_lint_rejects_at_the_schema_stage() -> None:
    paths = sorted(INVALID.glob("*.yaml"))
    lint = run_cli("lint", *map(str, paths), "--format", "json")
    assert lint.returncode == 1
    schema_stage = {
        Path(d["location"]["path"]).name for d in json.loads(lint.stdout) if d["code"][:3] == "MS1"
    }
    assert len(schema_stage) > 30
    accepted = {name for name, errors in _check_jsonschema(paths).items() if not errors}
    assert accepted & schema_stage == set(SEMANTIC_ONLY)
