"""The rule registry and runner."""

from __future__ import annotations

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


def lint(spec: Spec, data: dict[str, Any], source_map: SourceMap) -> list[Diagnostic]:
    from mlspec.lint import rules  # noqa: F401  (registers the rules)

    ctx = LintContext(spec, data, source_map)
    found: list[Diagnostic] = []
    for code in sorted(RULES):
        found.extend(RULES[code].fn(ctx))
    return sorted(found, key=Diagnostic.sort_key)
