"""What a summary counts, decided once before any row is read, so every partition counts the same things.

A Plan holds, per monitored feature, the reference profile's bin edges (its decile edges and its sketch points,
so PSI, KS and Wasserstein all come from the same counts) or its categories, and the spec schema's bounds,
type and allowed values; plus the window, the correlation columns and the volume trigger's cutoff. It is plain
data (JSON), so a fanned-out worker summarizes with exactly the plan the reducer scores with.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

NUMERIC_TYPES = ("int", "float", "bool")


@dataclass(frozen=True)
class FeaturePlan:
    name: str
    kind: str  # "numeric" or "categorical", from the reference profile
    type: str  # the schema type: int, float, bool, category, string
    edges: list[float] = field(default_factory=list)  # numeric: sorted bin edges
    categories: list[str] = field(default_factory=list)  # categorical: counted by name (profile + schema)
    codes: list[str] | None = None  # categorical logged as the model's value index: the values by index
    min: float | None = None
    max: float | None = None
    allowed: list[str] | None = None  # the schema's values: anything else is unseen
    nullable: bool = True


@dataclass(frozen=True)
class Plan:
    features: list[FeaturePlan]
    correlation: list[str] = field(default_factory=list)  # numeric features whose correlation is tracked
    center: list[float] = field(default_factory=list)  # reference mean and std of those, so that the
    scale: list[float] = field(default_factory=list)  # cross products stay well conditioned
    start_ns: int | None = None  # the window: start < ts <= end (epoch nanoseconds)
    end_ns: int | None = None
    volume_cutoff_ns: int | None = None  # rows logged after this count as new for the volume trigger
    excluded_sources: list[str] = field(default_factory=list)  # rows of these traffic sources are skipped
    excluded_variants: list[str] = field(default_factory=list)  # rows of these variants (mirrored) too

    def feature(self, name: str) -> FeaturePlan:
        return next(f for f in self.features if f.name == name)

    def to_json(self) -> dict[str, Any]:
        fields = {k: v for k, v in self.__dict__.items() if k != "id"}  # not the cached fingerprint
        return {**fields, "features": [dict(f.__dict__) for f in self.features]}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Plan:
        return cls(**{**obj, "features": [FeaturePlan(**f) for f in obj["features"]]})

    @cached_property
    def id(self) -> str:
        """A fingerprint: summaries made with different plans must never be merged."""
        text = json.dumps(self.to_json(), sort_keys=True, allow_nan=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _get(obj: Any, key: str, default: Any = None) -> Any:
    return obj.get(key, default) if isinstance(obj, dict) else getattr(obj, key, default)


def build_plan(
    profile: dict[str, Any],
    features: list[str] | None = None,
    *,
    columns: Any = None,
    codes: dict[str, list[str]] | None = None,
    correlation: bool = True,
    start_ns: int | None = None,
    end_ns: int | None = None,
    volume_cutoff_ns: int | None = None,
    excluded_sources: list[str] | None = None,
    excluded_variants: list[str] | None = None,
) -> Plan:
    """The plan for `features` (default: every profiled feature) of a reference profile.

    `columns` are the schema's columns (IR objects or dicts with name/type/min/max/values/nullable); `codes`
    maps a categorical feature logged as the model's value index to its values in index order.
    """
    names = list(profile["features"]) if features is None else list(features)
    unknown = [f for f in names if f not in profile["features"]]
    if unknown:
        raise ValueError(f"features {unknown} are not in the reference profile")
    schema = {_get(c, "name"): c for c in columns or []}
    planned = []
    for name in names:
        prof = profile["features"][name]
        col = schema.get(name)
        allowed = _get(col, "values") if col is not None else None
        allowed_str = [str(v) for v in allowed] if allowed else None
        if prof["kind"] == "numeric":
            edges = numeric_edges(prof)
            planned.append(
                FeaturePlan(
                    name=name,
                    kind="numeric",
                    type=_get(col, "type") or "float",
                    edges=edges,
                    min=_float(_get(col, "min")),
                    max=_float(_get(col, "max")),
                    allowed=allowed_str,
                    nullable=bool(_get(col, "nullable", True)),
                )
            )
        else:
            tracked = sorted({*prof["categories"], *(allowed_str or [])})
            planned.append(
                FeaturePlan(
                    name=name,
                    kind="categorical",
                    type=_get(col, "type") or "category",
                    categories=tracked,
                    codes=[str(v) for v in codes[name]] if codes and name in codes else None,
                    allowed=allowed_str,
                    nullable=bool(_get(col, "nullable", True)),
                )
            )
    corr: list[str] = []
    center: list[float] = []
    scale: list[float] = []
    if correlation:
        for name in profile.get("correlation", {}).get("columns", []):
            if name in names and profile["features"][name]["kind"] == "numeric":
                prof = profile["features"][name]
                corr.append(name)
                center.append(float(prof["mean"]))
                scale.append(float(prof["std"]) or 1.0)
    return Plan(
        planned,
        corr,
        center,
        scale,
        start_ns,
        end_ns,
        volume_cutoff_ns,
        sorted(excluded_sources or []),
        sorted(excluded_variants or []),
    )


def numeric_edges(prof: dict[str, Any]) -> list[float]:
    """A numeric feature's bin edges: its decile edges and its sketch points, sorted and distinct."""
    return sorted({*map(float, prof["edges"]), *map(float, prof.get("sketch_values", []))})


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
