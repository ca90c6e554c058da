"""Hover text and completions read from the spec's JSON Schema (generated from the pydantic models), so
every description, enum and default added to the models shows up in the editor without a change here."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from mlspec.lsp.yamlpath import KeyPath

Schema = dict[str, Any]


@cache
def root() -> Schema:
    from mlspec.schema import spec_schema

    return spec_schema()


def _deref(node: Schema) -> Schema:
    seen = 0
    while "$ref" in node and seen < 32:
        name = node["$ref"].rsplit("/", 1)[-1]
        target = root().get("$defs", {}).get(name, {})
        # keep what the referring property says about itself (its description, default)
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        seen += 1
    return node


def leaves(node: Schema) -> list[Schema]:
    """The alternatives a schema allows, with $ref, anyOf, oneOf and the editor forms of mlspec.schema
    (optional sections, interpolation-tolerant strings, tag- and key-selected unions) expanded, null dropped."""
    node = _deref(node)
    conditional = {k: v for k, v in node.items() if k not in ("if", "then", "else")}
    if node.get("if") == {"type": "null"} and isinstance(node.get("else"), dict):  # an optional section
        return [{**leaf, **_described(conditional)} for leaf in leaves(node["else"])]
    if "pattern" in node.get("if", {}) and isinstance(node.get("else"), dict):  # ${VAR} or the real rule
        return leaves({**conditional, **node["else"]})
    alternatives = node.get("anyOf") or node.get("oneOf")
    if not alternatives and isinstance(node.get("allOf"), list) and all("then" in b for b in node["allOf"]):
        alternatives = [b["then"] for b in node["allOf"]]  # a union picked by its tag or its key
    if not alternatives:
        return [] if node.get("type") == "null" else [node]
    outer = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf", "discriminator", "allOf")}
    found: list[Schema] = []
    for alternative in alternatives:
        for leaf in leaves(alternative):
            found.append({**leaf, **{k: v for k, v in outer.items() if k in ("description", "default")}})
    return found


def _described(node: Schema) -> Schema:
    return {k: v for k, v in node.items() if k in ("description", "default", "markdownDescription")}


def _child(node: Schema, part: str | int) -> list[Schema]:
    if isinstance(part, int) or node.get("type") == "array":
        items = node.get("items")
        prefix = node.get("prefixItems")
        if isinstance(part, int) and prefix and part < len(prefix):
            return leaves(prefix[part])
        return leaves(items) if isinstance(items, dict) else []
    props = node.get("properties", {})
    if part in props:
        return leaves(props[part])
    extra = node.get("additionalProperties")
    return leaves(extra) if isinstance(extra, dict) else []


def at(path: KeyPath, data: Any = None) -> list[Schema]:
    """The schemas that can stand at `path`; the document's data, where known, picks union members by
    their literal tags (`check: drift`) at every level."""
    current = narrow(leaves(root()), data if isinstance(data, dict) else {})
    node = data
    for part in path:
        current = [child for c in current for child in _child(c, part)]
        if isinstance(part, int):
            current = [c for c in current if c.get("type") != "array"] or current
        node = _index(node, part)
        current = narrow(current, node if isinstance(node, dict) else {})
    return current


def _index(node: Any, part: str | int) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def narrow(candidates: list[Schema], siblings: dict[str, Any]) -> list[Schema]:
    """Keep the union members whose literal tags (`check: drift`) agree with the keys present."""
    kept = []
    for node in candidates:
        props = node.get("properties", {})
        agree = True
        for key, value in siblings.items():
            prop = _deref(props.get(key, {}))
            allowed = prop.get("enum") or ([prop["const"]] if "const" in prop else None)
            if allowed is not None and value not in allowed:
                agree = False
        if agree:
            kept.append(node)
    return kept or candidates


def keys(candidates: list[Schema]) -> dict[str, Schema]:
    found: dict[str, Schema] = {}
    for node in candidates:
        for name, prop in node.get("properties", {}).items():
            found.setdefault(name, prop)
    return found


def values(candidates: list[Schema]) -> list[Any]:
    """Literal values a scalar (or each item of a list) may take."""
    found: list[Any] = []
    for node in candidates:
        for leaf in [node, *(leaves(node["items"]) if isinstance(node.get("items"), dict) else [])]:
            leaf = _deref(leaf)
            for value in leaf.get("enum", []) + ([leaf["const"]] if "const" in leaf else []):
                if value not in found:
                    found.append(value)
            if leaf.get("type") == "boolean":
                found += [v for v in (True, False) if v not in found]
    return found


def type_name(node: Schema) -> str:
    node = _deref(node)
    if "enum" in node:
        return " | ".join(json.dumps(v) for v in node["enum"])
    if "const" in node:
        return json.dumps(node["const"])
    kind = node.get("type")
    if kind == "array" and isinstance(node.get("items"), dict):
        inner = " | ".join(type_name(leaf) for leaf in leaves(node["items"])) or "any"
        return f"list of {inner}"
    if kind == "object" and "properties" not in node and isinstance(node.get("additionalProperties"), dict):
        inner = " | ".join(type_name(leaf) for leaf in leaves(node["additionalProperties"]))
        return f"mapping of name to {inner}"
    if "properties" in node:
        return node.get("title", "mapping")
    return str(kind or "any")


def describe(path: KeyPath, candidates: list[Schema]) -> str | None:
    """Markdown for a hover: the dotted key, its type, its description, default and examples."""
    if not candidates:
        return None
    dotted = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path) or "(document)"
    types = " or ".join(dict.fromkeys(type_name(c) for c in candidates))
    lines = [f"**{dotted}**: `{types}`", ""]
    for text in dict.fromkeys(c.get("description", "") for c in candidates):
        if text:
            lines += [text, ""]
    first = candidates[0]
    if "default" in first and first["default"] not in (None, [], {}):
        lines.append(f"Default: `{json.dumps(first['default'])}`")
    examples = first.get("examples")
    if examples:
        lines.append("Examples: " + ", ".join(f"`{json.dumps(e)}`" for e in examples))
    return "\n".join(lines).strip() + "\n"
