"""JSON Schemas generated from the models: the spec (for editors) and the IR (for other tools)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPEC_SCHEMA_FILE = "mlspec.v1.schema.json"
IR_SCHEMA_FILE = "mlspec-ir.v2.schema.json"
CATALOG_FILE = "catalog.json"
SCHEMA_URL = "https://mlspec.dev/schemas/"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
# Files the spec schema applies to (the SchemaStore catalog entry); `mlspec lint .` finds the first two.
FILE_MATCH = ["mlops.yaml", "mlops.yml", "*.mlops.yaml", "*.mlops.yml"]
# A string that takes (part of) its value from ${VAR}: the loader substitutes it before validation, so the
# schema cannot judge its pattern or enum, exactly as lint judges the substituted value instead.
INTERPOLATION = r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"


def spec_schema() -> dict:
    from mlspec.spec.models import Spec

    schema = Spec.model_json_schema(by_alias=True, mode="validation")
    schema = _hover_text(_keyed_unions(_for_editors(schema), schema["$defs"]))
    for section, snippet in SNIPPETS.items():
        schema["properties"][section]["defaultSnippets"] = [snippet]
    return {
        "$schema": DRAFT,
        "$id": f"{SCHEMA_URL}{SPEC_SCHEMA_FILE}",
        "title": "mlspec MLSystem (mlops.yaml)",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def ir_schema() -> dict:
    from mlspec.ir.model import IR

    schema = IR.model_json_schema(mode="serialization")
    return {
        "$schema": DRAFT,
        "$id": f"{SCHEMA_URL}{IR_SCHEMA_FILE}",
        "title": "mlspec intermediate representation v2",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def catalog() -> dict:
    """The SchemaStore catalog entry of the spec schema (https://github.com/SchemaStore/schemastore)."""
    return {
        "$schema": "https://json.schemastore.org/schema-catalog.json",
        "version": 1.0,
        "schemas": [
            {
                "name": "mlspec",
                "description": "mlspec ML system spec (mlops.yaml): data checks, training, evaluation gates, "
                "serving SLOs, monitoring, retraining and infrastructure",
                "fileMatch": FILE_MATCH,
                "url": f"{SCHEMA_URL}{SPEC_SCHEMA_FILE}",
            }
        ],
    }


# A small valid body per top-level section, offered by editors (VS Code's `defaultSnippets`) when the
# section's key is completed. tests/test_schema_docs.py validates each against its section.
SNIPPETS: dict[str, dict[str, Any]] = {
    "metadata": {"label": "metadata", "body": {"name": "my-model", "owner": "ml-team"}},
    "images": {"label": "images", "body": {"runtime": "registry.example.com/my-model:0.1.0"}},
    "data": {
        "label": "data",
        "body": {
            "sources": {"train": {"uri": "data/train.parquet"}},
            "schema": {
                "target": "label",
                "columns": {"feature": {"type": "float"}, "label": {"type": "bool", "role": "target"}},
            },
            "checks": [{"check": "not_null", "columns": ["label"]}],
        },
    },
    "steps": {
        "label": "steps",
        "body": [
            {
                "name": "prepare",
                "command": ["python", "-m", "my_model.prepare", "{inputs.train}", "{outputs.train}"],
                "inputs": ["train"],
                "outputs": {"train": {}},
            }
        ],
    },
    "training": {
        "label": "training",
        "body": {"builtin": {"hidden": [64, 32]}, "hyperparameters": {"epochs": 10}, "timeout": "1h"},
    },
    "evaluation": {
        "label": "evaluation",
        "body": {"metrics": ["accuracy", "f1", "auc"], "gates": [{"metric": "auc", "min": 0.8}]},
    },
    "registry": {"label": "registry", "body": {"mlflow": {"tracking_uri": "sqlite:///.mlspec/mlflow.db"}}},
    "serving": {
        "label": "serving",
        "body": {"runtime": "onnxruntime", "replicas": {"min": 1, "max": 3}, "slo": {"latency_p99_ms": 100}},
    },
    "monitoring": {
        "label": "monitoring",
        "body": {"schedule": "0 * * * *", "window": "1d", "drift": {"method": "psi", "threshold": 0.2}},
    },
    "retraining": {
        "label": "retraining",
        "body": {"triggers": [{"on": "drift", "features": 1}, {"on": "schedule", "cron": "0 3 * * 1"}]},
    },
    "infrastructure": {
        "label": "infrastructure",
        "body": {
            "region": "eu-west-1",
            "cluster": {"name": "ml", "version": "1.30"},
            "node_pools": {"cpu": {"instance_type": "m6i.xlarge", "min": 1, "max": 3}},
            "storage": {"artifacts_bucket": "my-model-artifacts"},
        },
    },
    "orchestration": {"label": "orchestration", "body": {"airflow_mode": "kubernetes"}},
    "environments": {"label": "environments", "body": {"staging": {"serving": {"replicas": {"max": 1}}}}},
    "targets": {"label": "targets", "body": ["kubeflow", "airflow", "kubernetes"]},
}


def _hover_text(node: Any, keep_title: bool = True) -> Any:
    """Descriptions on one line, repeated as `markdownDescription` (what VS Code renders), and no generated
    property titles ("Latency P99 Ms"): a key's name is its title. A model keeps its title (its name in
    docs/spec.md, and the type the language server's hover shows)."""
    if isinstance(node, list):
        return [_hover_text(item, keep_title=False) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" and not keep_title:
            continue
        if key in ("properties", "$defs") and isinstance(value, dict):  # keys here are names, not keywords
            out[key] = {name: _hover_text(sub, keep_title=key == "$defs") for name, sub in value.items()}
        else:
            out[key] = _hover_text(value, keep_title=False)
    description = out.get("description")
    if isinstance(description, str):
        out["description"] = out["markdownDescription"] = " ".join(description.split())
    return out


def _keyed_unions(node: Any, defs: dict) -> Any:
    """A union of objects that each have one required key (the search dimensions) picks its branch by the
    key present, so `{unifrom: [0, 1]}` is reported as an unknown key, not as four failed branches."""
    if isinstance(node, list):
        return [_keyed_unions(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _keyed_unions(value, defs) for key, value in node.items()}
    branches = node.get("anyOf")
    if not isinstance(branches, list) or not all(set(b) == {"$ref"} for b in branches):
        return node
    keys = [defs[b["$ref"].rsplit("/", 1)[1]].get("required", []) for b in branches]
    if not all(len(k) == 1 for k in keys):
        return node
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    names = [k[0] for k in keys]
    return {
        **rest,
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "propertyNames": {"enum": names},
        "allOf": [{"if": {"required": [name]}, "then": b} for name, b in zip(names, branches, strict=True)],
    }


_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def _for_editors(node: Any) -> Any:
    """Rewrite pydantic's schema into forms that standard validators (and so editors) report well:

    - a discriminated union (`oneOf` + OpenAPI `discriminator`, which JSON Schema validators ignore) becomes
      an enum on the tag plus `if tag == X then X's schema`, so `check: uniq` is reported at `check`;
    - a union of single-key objects (the search dimensions) picks its branch by the key present;
    - an optional section (`anyOf: [X, null]`) becomes `if null then ok else X`, so an error inside it is
      X's error, not "is not of type 'null'";
    - a patterned or enumerated string also admits `${VAR}` interpolation, which lint sees substituted.
    """
    if isinstance(node, list):
        return [_for_editors(item) for item in node]
    if not isinstance(node, dict):
        return node
    # pydantic leaves the constraints of `Int | None = Field(ge=0)` under their Python names
    node = {
        _BOUNDS.get(key, key) if key in _BOUNDS and "type" in node else key: value
        for key, value in node.items()
    }
    node = {key: _for_editors(value) for key, value in node.items()}
    if "discriminator" in node and "oneOf" in node:
        tag = node["discriminator"]["propertyName"]
        mapping = node["discriminator"]["mapping"]
        rest = {k: v for k, v in node.items() if k not in ("discriminator", "oneOf")}
        return {
            **rest,
            "type": "object",
            "required": [tag],
            "properties": {
                tag: {
                    "enum": sorted(mapping),
                    "description": f"The kind of entry ({', '.join(sorted(mapping))}); it decides which "
                    "other keys are allowed.",
                }
            },
            "allOf": [
                {"if": {"properties": {tag: {"const": value}}, "required": [tag]}, "then": {"$ref": ref}}
                for value, ref in sorted(mapping.items())
            ],
        }
    branches = node.get("anyOf")
    if isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches:
        other = next(b for b in branches if b != {"type": "null"})
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        return {**rest, "if": {"type": "null"}, "then": True, "else": other}
    if node.get("type") == "string" and ("pattern" in node or "enum" in node):
        checked = {k: v for k, v in node.items() if k in ("pattern", "enum")}
        rest = {k: v for k, v in node.items() if k not in ("pattern", "enum")}
        return {**rest, "if": {"pattern": INTERPOLATION}, "then": True, "else": checked}
    if "enum" in node and all(isinstance(v, str) for v in node["enum"]) and "type" not in node:
        rest = {k: v for k, v in node.items() if k != "enum"}
        return {
            **rest,
            "if": {"type": "string", "pattern": INTERPOLATION},
            "then": True,
            "else": {"enum": node["enum"]},
        }
    return node


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def schema_files() -> dict[str, str]:
    return {
        SPEC_SCHEMA_FILE: render(spec_schema()),
        IR_SCHEMA_FILE: render(ir_schema()),
        CATALOG_FILE: render(catalog()),
    }


def write_schemas(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schema_files().items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(out_dir: Path) -> list[str]:
    stale = []
    for name, text in schema_files().items():
        path = out_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(str(path))
    return stale
