"""Semantic lint rules over a validated spec. Each rule has a stable code and a doc in docs/rules.md."""

from mlspec.lint.engine import LintContext, lint, rule

__all__ = ["LintContext", "lint", "rule"]
