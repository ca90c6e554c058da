"""Markdown reference tables generated from pydantic models: one source for docs/ir.md and docs/spec.md.

`mlspec docs` rewrites the `## Reference` section of each page; the test suite fails when it is stale.
"""

from __future__ import annotations

import json
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

MARKER = "## Reference\n"


def models(annotation: Any, found: list[type[BaseModel]]) -> list[type[BaseModel]]:
    """Every model reachable from `annotation`, in first-use order."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation not in found:
            found.append(annotation)
            for field in annotation.model_fields.values():
                models(field.annotation, found)
    elif typing.get_origin(annotation) is not None or isinstance(annotation, types.UnionType):
        for arg in typing.get_args(annotation):
            models(arg, found)
    return found


def type_text(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return type_text(typing.get_args(annotation)[0])
    if origin is Literal:
        return " \\| ".join(f"`{v}`" for v in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join("null" if a is type(None) else type_text(a) for a in typing.get_args(annotation))
    if origin is list:
        return f"list[{type_text(typing.get_args(annotation)[0])}]"
    if origin is dict:
        key, value = typing.get_args(annotation)
        return f"map[{type_text(key)}, {type_text(value)}]"
    if origin is tuple:
        return f"tuple[{', '.join(type_text(a) for a in typing.get_args(annotation))}]"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    if annotation is Any:
        return "any"
    return getattr(annotation, "__name__", str(annotation))


def _value(value: Any) -> str:
    if isinstance(value, BaseModel):
        return "defaults"
    if isinstance(value, str):
        return f"`{value}`"
    return f"`{json.dumps(value)}`"


def _default(field: Any) -> str:
    if field.is_required() or (field.default_factory is None and field.default is PydanticUndefined):
        return "**required**"
    if field.default_factory is not None:
        try:
            return _value(field.default_factory())
        except TypeError:  # a factory of the validated data
            return "computed"
    return _value(field.default)


_CONSTRAINTS = ("ge", "gt", "le", "lt", "min_length", "max_length")


def _constraints(field: Any) -> str:
    """The field's own bounds and pattern, as the JSON Schema states them."""
    found = []
    for item in field.metadata:
        found += [
            f"{name}={getattr(item, name)}" for name in _CONSTRAINTS if getattr(item, name, None) is not None
        ]
        if getattr(item, "pattern", None):
            found.append(f"pattern `{item.pattern}`")
    return ", ".join(found)


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def reference(root: type[BaseModel], intro: str) -> str:
    out = [MARKER, "\n", intro.rstrip("\n") + "\n"]
    for model in models(root, []):
        out.append(f"\n### {model.__name__}\n\n")
        doc = (model.__doc__ or "").strip()
        if doc and not doc.startswith(("A base class", "Usage docs")):
            out.append(_cell(" ".join(doc.split("\n\n", 1)[0].split())) + "\n\n")
        out.append("| key | type | default | notes |\n|---|---|---|---|\n")
        for name, field in model.model_fields.items():
            key = field.alias or name
            notes = " ".join(filter(None, [field.description, _constraints(field)]))
            out.append(f"| `{key}` | {type_text(field.annotation)} | {_default(field)} | {_cell(notes)} |\n")
    return "".join(out)


def rewrite(page: Path, root: type[BaseModel], intro: str) -> str:
    """The page with its `## Reference` section (to the end of the page) regenerated."""
    text = page.read_text(encoding="utf-8")
    head = text.split(MARKER, 1)[0]
    return head + reference(root, intro)


def pages(docs: Path) -> dict[Path, str]:
    from mlspec.ir.model import IR
    from mlspec.spec.models import Spec

    return {
        docs / "spec.md": rewrite(
            docs / "spec.md",
            Spec,
            "Generated from the models in `mlspec/spec/models.py` by `python -m mlspec.reference`; the tests fail\n"
            "when it is stale. The same descriptions are the JSON Schema's hover text in editors.",
        ),
        docs / "ir.md": rewrite(
            docs / "ir.md",
            IR,
            "Generated from the models in `mlspec/ir/model.py` by `python -m mlspec.reference`; the tests fail\n"
            "when it is stale.",
        ),
    }


def main(argv: list[str] | None = None) -> int:
    """`python -m mlspec.reference [--check]`: rewrite (or check) the generated reference sections."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    docs = Path(__file__).resolve().parents[1] / "docs"
    stale = [page for page, text in pages(docs).items() if page.read_text(encoding="utf-8") != text]
    if "--check" in args:
        for page in stale:
            print(f"stale: {page} (run python -m mlspec.reference)", file=sys.stderr)
        return 1 if stale else 0
    for page in stale:
        page.write_text(pages(docs)[page], encoding="utf-8")
        print(f"wrote {page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
