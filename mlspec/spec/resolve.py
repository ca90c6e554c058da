"""Spec-level helpers shared by lint and lowering, kept free of the IR so `mlspec lint` stays light."""

from __future__ import annotations

import copy
from typing import Any

from mlspec.spec import models as sm


def deep_merge(base: Any, overlay: Any) -> Any:
    """Mappings merge key by key; anything else in the overlay replaces the base value."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(overlay)


def infer_task(schema: sm.DataSchema) -> str:
    if schema.task:
        return schema.task
    target = schema.columns.get(schema.target)
    if target is None or target.values is not None or target.type in ("category", "bool", "string"):
        return "classification"
    return "regression"
