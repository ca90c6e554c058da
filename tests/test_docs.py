"""docs/spec.md and docs/ir.md document every key of the spec models and every field of the IR."""

from __future__ import annotations

import re
import types
import typing

import pytest
from helpers_core import ROOT
from pydantic import BaseModel

from mlspec.ir.model import IR
from mlspec.spec.models import Spec


def models(annotation, found: list[type[BaseModel]]) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation not in found:
            found.append(annotation)
            for field in annotation.model_fields.values():
                models(field.annotation, found)
    elif typing.get_origin(annotation) is not None or isinstance(annotation, types.UnionType):
        for arg in typing.get_args(annotation):
            models(arg, found)
    return found


@pytest.mark.parametrize(("doc", "root"), [("spec.md", Spec), ("ir.md", IR)])
def test_every_field_documented(doc: str, root: type[BaseModel]) -> None:
    text = (ROOT / "docs" / doc).read_text()
    for model in models(root, []):
        match = re.search(rf"^### {model.__name__}\n(.*?)(?=^### |\Z)", text, re.S | re.M)
        assert match, f"{doc}: no section for {model.__name__}"
        for name, field in model.model_fields.items():
            key = field.alias or name
            assert f"| `{key}` |" in match.group(1), f"{doc}: {model.__name__}.{key} is not documented"


def test_generated_reference_sections_are_current() -> None:
    from mlspec import reference

    stale = [p.name for p, text in reference.pages(ROOT / "docs").items() if p.read_text() != text]
    assert not stale, f"run python -m mlspec.reference to regenerate {stale}"
