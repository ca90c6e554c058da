"""Semantic lint rules over a validated spec. Each rule has a stable code and a doc in docs/rules.md.

The names are loaded on first use so that importing the package (which `import mlspec` does, to keep
`mlspec.lint` bound to the API function) stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LintContext", "lint", "rule"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mlspec.lint import engine

        return getattr(engine, name)
    raise AttributeError(name)
