"""Property-based: mutated specs and random text reach the loader, models and lint; only MlspecError escapes."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

from helpers_core import CHURN
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

import mlspec
from mlspec.diagnostics import MlspecError
from mlspec.loader import load_bytes, load_text
from mlspec.spec.validate import validate_data

BASE_TEXT = CHURN.read_text()
BASE = load_text(BASE_TEXT).data
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["", "latest", "0 3 * * 1", "16Gi", "${X}", "canary", "gpu", "nvidia-a10g"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += paths(value, (*prefix, index))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> dict:
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        candidates = paths(data)
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        key = path[-1]
        action = draw(st.sampled_from(["delete", "rename", "replace", "perturb"]))
        if action == "delete":
            del parent[key]
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = parent.pop(key)
        elif (
            action == "perturb" and isinstance(parent[key], int | float) and not isinstance(parent[key], bool)
        ):
            parent[key] = parent[key] * draw(st.sampled_from([-1, 0, 2, 1000])) + draw(st.integers(-3, 3))
        else:
            parent[key] = draw(VALUES)
    return data


def exercise(loaded: mlspec.api.LoadedSpec) -> None:
    diagnostics = mlspec.lint(loaded)
    if not any(d.severity == "error" for d in diagnostics):
        mlspec.lower(loaded)
        for env in loaded.spec.environments:
            mlspec.lower(loaded, env)


@SETTINGS
@given(mutated())
def test_mutated_specs_only_raise_mlspec_error(data: dict) -> None:
    from io import StringIO

    buffer = StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.dump(data, buffer)
    try:
        exercise(mlspec.loads(buffer.getvalue(), "spec.yaml", env={}))
    except MlspecError as exc:
        assert exc.diagnostics and all(d.code.startswith("MS") for d in exc.diagnostics)


@SETTINGS
@given(mutated())
def test_mutated_data_through_models(data: dict) -> None:
    doc = load_text(BASE_TEXT)
    try:
        validate_data(data, doc.source_map)
    except MlspecError as exc:
        assert all(d.location.line >= 0 for d in exc.diagnostics)


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes(raw: bytes) -> None:
    with contextlib.suppress(MlspecError):
        load_bytes(raw, "spec.yaml", env={})


YAML_ALPHABET = st.sampled_from(
    [*list("abc:-[]{}&*!|>'\"#%@`,? \n\t0123456789.~<"), "<<", "---", "${A}", "\ufeff"]
)


@SETTINGS
@given(st.lists(YAML_ALPHABET, max_size=80).map("".join))
def test_random_yaml_text(text: str) -> None:
    with contextlib.suppress(MlspecError):
        exercise(mlspec.loads(text, "spec.yaml", env={}))


@SETTINGS
@given(
    st.integers(0, BASE_TEXT.count("\n")),
    st.integers(1, 4),
    st.sampled_from(["", " ", "  - ", ":", "x: [", "\t"]),
)
def test_line_edits_of_churn(line: int, count: int, insert: str) -> None:
    lines = BASE_TEXT.splitlines(keepends=True)
    edited = "".join([*lines[:line], insert + "\n", *lines[line + count :]])
    with contextlib.suppress(MlspecError):
        exercise(mlspec.loads(edited, "spec.yaml", env={}))
