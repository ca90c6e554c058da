"""Mutations of every example: whatever a user might type over any key of a spec in specs/, loading either
refuses it with a located error, or lint is clean exactly when every target compiles. Never a traceback.

The mutation sites are every key and list item of each example (walked, not listed by hand); the values
are drawn from a pool typed by the value they replace, plus values of other keys of the same spec (a
string where a number was, a pool name where a step name was). Derandomized: the same code tries the
same mutations on every run, so CI cannot fail by chance; MLSPEC_FUZZ_EXAMPLES widens a local search.
"""

from __future__ import annotations

import copy
import io
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

import mlspec
from mlspec.diagnostics import MlspecError, has_errors

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
EXAMPLES = int(os.environ.get("MLSPEC_FUZZ_EXAMPLES", "8"))

Path_ = tuple[Any, ...]


def _leaves(node: Any, path: Path_ = ()) -> list[Path_]:
    """Every key and list item below the root, parents before children."""
    found: list[Path_] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        found.append((*path, key))
        found.extend(_leaves(value, (*path, key)))
    return found


def _scalars(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _scalars(v)]
    if isinstance(node, list):
        return [s for v in node for s in _scalars(v)]
    return [node]


def _replacements(old: Any, spec_values: list[Any]) -> st.SearchStrategy[Any]:
    typed: list[Any]
    if isinstance(old, bool):
        typed = [not old]
    elif isinstance(old, int | float):
        typed = [0, -1, 1, 2, 3, 7, 100, 10**9, 0.5, -0.5, 1e308]
    elif isinstance(old, str):
        typed = ["", "x", old.upper(), old + "-x", old[:-1], "a" * 70, "1", "0s", "gpu", "cpu", "latest"]
    elif isinstance(old, list):
        typed = [[], old[:1], old + old[:1]]
    else:
        typed = [{}, None]
    return st.one_of(st.sampled_from(typed), st.sampled_from(spec_values), st.just("<delete>"))


def _get(data: Any, path: Path_) -> Any:
    for part in path:
        data = data[part]
    return data


def _apply(data: dict, path: Path_, value: Any) -> None:
    try:
        parent = _get(data, path[:-1])
    except (KeyError, IndexError, TypeError):
        return  # an earlier mutation removed or retyped this site
    key = path[-1]
    if isinstance(parent, dict) or (isinstance(parent, list) and isinstance(key, int) and key < len(parent)):
        if value == "<delete>":
            del parent[key]
        else:
            parent[key] = value


def _text(data: dict) -> str:
    buf = io.StringIO()
    YAML().dump(data, buf)
    return buf.getvalue()


@pytest.mark.engine
@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_mutated_examples_lint_clean_exactly_when_they_compile(spec: Path) -> None:
    base = YAML(typ="safe", pure=True).load(spec.read_text())
    sites = _leaves(base)
    values = [v for v in _scalars(base) if v is not None]

    @st.composite
    def mutations(draw: st.DrawFn) -> list[tuple[Path_, Any]]:
        chosen = draw(st.lists(st.sampled_from(sites), min_size=1, max_size=3, unique=True))
        return [(path, draw(_replacements(_get(base, path), values))) for path in chosen]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(mutations())
    def check(changes: list[tuple[Path_, Any]]) -> None:
        data = copy.deepcopy(base)
        for path, value in changes:
            _apply(data, path, value)
        try:
            loaded = mlspec.loads(_text(data), str(spec.relative_to(ROOT)))
        except MlspecError as refused:
            assert refused.diagnostics and all(d.location.path for d in refused.diagnostics), changes
            return
        environments = [None, *loaded.spec.environments]
        for env in environments:
            clean = not has_errors(mlspec.lint(loaded, environments=[env] if env else []))
            try:
                mlspec.compile(loaded, env=env)  # the spec's targets, as `mlspec compile` does
                compiled = True
            except MlspecError:
                compiled = False
            assert clean == compiled, (changes, env, "lint clean" if clean else "lint errors")

    check()
