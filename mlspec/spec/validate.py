"""Validate loaded YAML against the Spec models; turn pydantic errors into located diagnostics."""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from mlspec.diagnostics import Diagnostic, MlspecError, did_you_mean
from mlspec.loader import KeyPath, LoadedDocument, SourceMap
from mlspec.spec.models import Spec

# pydantic error type -> our stable code
_CODES = {
    "extra_forbidden": "MS104",
    "missing": "MS101",
    "literal_error": "MS103",
    "enum": "MS103",
    "union_tag_invalid": "MS103",
    "union_tag_not_found": "MS101",
}


def validate(doc: LoadedDocument) -> Spec:
    return validate_data(doc.data, doc.source_map)


def validate_data(data: dict[str, Any], source_map: SourceMap, prefix: KeyPath = ()) -> Spec:
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise MlspecError(errors_to_diagnostics(exc, data, source_map, prefix)) from None


def errors_to_diagnostics(
    exc: ValidationError, data: Any, source_map: SourceMap, prefix: KeyPath = ()
) -> list[Diagnostic]:
    diagnostics: dict[tuple, Diagnostic] = {}
    union_paths: set[KeyPath] = set()
    for error in exc.errors(include_url=False):
        key_path = _data_path(data, error["loc"])
        bad_key = bool(key_path) and key_path[-1] == "[key]"  # a mapping key failed its own pattern
        if bad_key:
            key_path = key_path[:-1]
        if len(key_path) < len(error["loc"]) and error["type"] in ("missing", "extra_forbidden"):
            # pydantic names the union member in loc: this is one member's complaint
            union_paths.add(tuple((*prefix, *key_path[:-1])))
        kind = error["type"]
        code = _CODES.get(kind, "MS102")
        hint = None
        section = ".".join(str(p) for p in key_path[:-1]) or "the document root"
        last = key_path[-1] if key_path else ""
        if kind == "extra_forbidden":
            allowed = _allowed_keys(key_path[:-1], data)
            message = f"unknown key '{last}' in {section}"
            hint = did_you_mean(str(last), allowed)
            if not hint and allowed:
                hint = "allowed keys: " + ", ".join(sorted(allowed))
        elif kind == "missing":
            message = f"missing required key '{last}' in {section}"
        elif kind in ("literal_error", "enum"):
            expected = re.findall(r"'([^']*)'", error.get("ctx", {}).get("expected", ""))
            got = _value_at(data, key_path)
            message = (
                f"invalid value {got!r} for '{_dotted(key_path)}': expected one of {', '.join(expected)}"
            )
            hint = did_you_mean(str(got), expected)
        elif kind == "union_tag_not_found":
            ctx = error.get("ctx", {})
            tag = str(ctx.get("discriminator", "kind")).strip("'")
            key_path = (*key_path, tag)
            expected = _tags_at(key_path[:-1], data, tag)
            message = f"missing required key '{tag}' in {_dotted(key_path[:-1])}"
            if expected:
                hint = f"'{tag}' is one of: {', '.join(expected)}"
        elif kind == "union_tag_invalid":
            ctx = error.get("ctx", {})
            expected = re.findall(r"'([^']*)'", ctx.get("expected_tags", ""))
            tag = str(ctx.get("tag"))
            message = (
                f"unknown {ctx.get('discriminator', 'kind').strip(chr(39))} {tag!r} in {_dotted(key_path)}"
            )
            message += f": expected one of {', '.join(expected)}"
            hint = did_you_mean(str(tag), expected)
        elif bad_key:
            message = f"invalid key {str(last)!r} in {section}: {error['msg']}"
        else:
            message = f"{_dotted(key_path) or 'document'}: {error['msg']}"
        at_key = bad_key or kind in ("extra_forbidden", "missing")
        location = source_map.locate((*prefix, *key_path), at_key=at_key)
        diagnostic = Diagnostic(code, message, location, hint=hint, key_path=(*prefix, *key_path))
        # a union reports each member's failure; keep the first message per location and code
        diagnostics.setdefault((location, code, message if code != "MS102" else ""), diagnostic)
    found = list(diagnostics.values())
    unknown_parents = {d.key_path[:-1] for d in found if d.code == "MS104"}
    member_missing = {
        d
        for d in found
        if d.code == "MS101" and d.key_path[:-1] in unknown_parents and d.key_path[:-1] in union_paths
    }
    return sorted((d for d in found if d not in member_missing), key=Diagnostic.sort_key)


def _tags_at(key_path: KeyPath, data: Any, tag: str) -> list[str]:
    """The literal values a discriminated union at key_path accepts for its tag field."""
    annotation = _annotation_at(key_path, data)
    values: list[str] = []
    for member in _unwrap(annotation) if annotation is not None else []:
        if isinstance(member, type) and issubclass(member, BaseModel) and tag in member.model_fields:
            values += [str(v) for v in typing.get_args(member.model_fields[tag].annotation)]
    return values


def _annotation_at(key_path: KeyPath, data: Any) -> Any:
    annotation: Any = Spec
    node = data
    for part in key_path:
        annotation = _member_for(annotation, node)
        if annotation is None:
            return None
        annotation = _child_annotation(annotation, part)
        node = _child(node, part)
    return annotation


def _child(node: Any, part: str | int) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def _dotted(key_path: KeyPath) -> str:
    out = ""
    for part in key_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _data_path(data: Any, loc: tuple) -> KeyPath:
    """Keep only the loc parts that index the data (pydantic inserts union member tags)."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and (part in node or part == loc[-1]):
            out.append(part)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and part not in node:
            # a member tag, or a missing key further down
            continue
    if loc and loc[-1] not in out and isinstance(loc[-1], str) and isinstance(node, dict):
        out.append(loc[-1])
    return tuple(out)


def _value_at(data: Any, key_path: KeyPath) -> Any:
    node = data
    for part in key_path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _allowed_keys(key_path: KeyPath, data: Any) -> list[str]:
    """The field names of the model at key_path, found by walking the type annotations."""
    annotation: Any = Spec
    node = data
    for part in key_path:
        annotation = _member_for(annotation, node)
        if annotation is None:
            return []
        annotation = _child_annotation(annotation, part)
        node = _child(node, part)
    models = [m for m in _unwrap(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]
    if (
        len(models) > 1
        and isinstance(node, dict)
        and not any(set(node) & set(m.model_fields) for m in models)
    ):
        return sorted({f.alias or name for m in models for name, f in m.model_fields.items()})
    model = _member_for(annotation, node)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f.alias or name for name, f in model.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in _unwrap(a)]
    return [annotation]


def _member_for(annotation: Any, node: Any) -> Any:
    members = [m for m in _unwrap(annotation) if m is not type(None)]
    models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    if len(models) > 1 and isinstance(node, dict):
        for model in models:  # pick the member whose literal tag matches, else whose keys overlap most
            for name, field in model.model_fields.items():
                if typing.get_origin(field.annotation) is typing.Literal and node.get(
                    name
                ) in typing.get_args(field.annotation):
                    return model
        return max(models, key=lambda m: len(set(node) & set(m.model_fields)))
    if models:
        return models[0]
    return members[0] if members else None


def _child_annotation(annotation: Any, part: str | int) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is dict and len(args) == 2:
        return args[1]
    if origin in (list, tuple) and args:
        return args[0]
    return None
