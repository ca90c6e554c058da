"""JSON Schemas generated from the models: the spec (for editors) and the IR (for other tools)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPEC_SCHEMA_FILE = "mlspec.v1.schema.json"
IR_SCHEMA_FILE = "mlspec-ir.v2.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
# A string that takes (part of) its value from ${VAR}: the loader substitutes it before validation, so the
# schema cannot judge its pattern or enum, exactly as lint judges the substituted value instead.
INTERPOLATION = r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"


def spec_schema() -> dict:
    from mlspec.spec.models import Spec

    schema = Spec.model_json_schema(by_alias=True, mode="validation")
    schema = _keyed_unions(_for_editors(schema), schema["$defs"])
    return {
        "$schema": DRAFT,
        "$id": f"https://mlspec.dev/schemas/{SPEC_SCHEMA_FILE}",
        "title": "mlspec MLSystem (mlops.yaml)",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def ir_schema() -> dict:
    from mlspec.ir.model import IR

    schema = IR.model_json_schema(mode="serialization")
    return {
        "$schema": DRAFT,
        "$id": f"https://mlspec.dev/schemas/{IR_SCHEMA_FILE}",
        "title": "mlspec intermediate representation v2",
        **{k: v for k, v in schema.items() if k != "title"},
    }


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
            "properties": {tag: {"enum": sorted(mapping)}},
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
    return {SPEC_SCHEMA_FILE: render(spec_schema()), IR_SCHEMA_FILE: render(ir_schema())}


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
