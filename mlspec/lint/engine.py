"""The rule registry and runner."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from mlspec.diagnostics import Diagnostic, Severity
from mlspec.loader import KeyPath, SourceMap
from mlspec.spec.models import Spec

RuleFn = Callable[["LintContext"], Iterable[Diagnostic]]


@dataclass(frozen=True)
class Rule:
    code: str
    summary: str
    fn: RuleFn


RULES: dict[str, Rule] = {}


def rule(code: str, summary: str) -> Callable[[RuleFn], RuleFn]:
    def register(fn: RuleFn) -> RuleFn:
        if code in RULES:
            raise RuntimeError(f"duplicate lint rule code {code}")
        RULES[code] = Rule(code, summary, fn)
        return fn

    return register


@dataclass
class LintContext:
    spec: Spec
    data: dict[str, Any]
    source_map: SourceMap
    environment: str | None = None  # the overlay merged into spec and data (None: the base document)

    def diag(
        self,
        code: str,
        message: str,
        key_path: KeyPath,
        *,
        hint: str | None = None,
        severity: Severity = Severity.ERROR,
        at_key: bool = False,
    ) -> Diagnostic:
        location = self.source_map.locate(key_path, at_key=at_key)
        return Diagnostic(code, message, location, severity=severity, hint=hint, key_path=tuple(key_path))

    def walk_strings(self) -> Iterator[tuple[KeyPath, str]]:
        """Every string scalar (and mapping key) in the document with its key path."""
        stack: list[tuple[KeyPath, Any]] = [((), self.data)]
        while stack:
            path, node = stack.pop()
            if isinstance(node, dict):
                for key, value in node.items():
                    stack.append(((*path, key), value))
            elif isinstance(node, list):
                for index, value in enumerate(node):
                    stack.append(((*path, index), value))
            elif isinstance(node, str):
                yield path, node


# Rules that look at the whole document, environments included: run on the base document only.
BASE_ONLY = frozenset({"MS215", "MS250"})
# Rules that compile the spec in their head: they run only when the other rules found no error.
NEEDS_CLEAN = frozenset({"MS250", "MS301"})


def lint(
    spec: Spec,
    data: dict[str, Any],
    source_map: SourceMap,
    *,
    environments: Iterable[str] | None = None,
) -> list[Diagnostic]:
    """The rules on the base document and on the merged document of each environment (all by default).

    A finding of an environment that the base document has too is reported once; others name their
    environment and point at the overlay's line when the overlay set the value.
    """
    from mlspec.lint import capabilities, loop, rules  # noqa: F401  (registers the rules)

    found = _run(LintContext(spec, data, source_map))
    seen = {_identity(d) for d in found}
    for env in spec.environments if environments is None else environments:
        if env not in spec.environments:
            known = ", ".join(sorted(spec.environments)) or "none defined"
            found.append(
                Diagnostic("MS110", f"unknown environment '{env}' (known: {known})", source_map.locate(()))
            )
            continue
        merged = merged_document(spec, data, env)
        if merged is None:
            continue  # MS215 reports why the overlay does not make a valid spec
        env_spec, env_data = merged
        ctx = LintContext(env_spec, env_data, overlay_source_map(source_map, env), env)
        for d in _run(ctx, skip=BASE_ONLY):
            if _identity(d) not in seen:
                seen.add(_identity(d))
                found.append(dataclasses.replace(d, message=f"environment '{env}': {d.message}"))
    return sorted(found, key=Diagnostic.sort_key)


def _run(ctx: LintContext, skip: frozenset[str] = frozenset()) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for code in sorted(RULES):
        if code not in skip | NEEDS_CLEAN:
            found.extend(RULES[code].fn(ctx))
    if not any(d.severity is Severity.ERROR for d in found):
        for code in sorted(NEEDS_CLEAN - skip):
            found.extend(RULES[code].fn(ctx))
    return found


def _identity(d: Diagnostic) -> tuple:
    return (d.code, d.message, d.location.path, d.location.line, d.location.col)


def merged_document(spec: Spec, data: dict[str, Any], env: str) -> tuple[Spec, dict[str, Any]] | None:
    """The spec and document with environment `env` deep-merged over the base; None if it does not validate."""
    from pydantic import ValidationError

    from mlspec.spec.resolve import deep_merge

    overlay = spec.environments.get(env)
    if not isinstance(overlay, dict) or "environments" in overlay:
        return None
    merged = deep_merge(data, overlay)
    try:
        return Spec.model_validate(merged), merged
    except ValidationError:
        return None


def overlay_source_map(base: SourceMap, env: str) -> SourceMap:
    """Positions for the merged document: a key the overlay sets points into the overlay, others to the base."""
    prefix = ("environments", env)

    def shifted(table: dict[KeyPath, tuple[int, int]]) -> dict[KeyPath, tuple[int, int]]:
        return {kp[2:]: pos for kp, pos in table.items() if kp[:2] == prefix and len(kp) > 2}

    return SourceMap(
        path=base.path,
        keys={**base.keys, **shifted(base.keys)},
        values={**base.values, **shifted(base.values)},
        interpolated={*base.interpolated, *(kp[2:] for kp in base.interpolated if kp[:2] == prefix)},
    )
