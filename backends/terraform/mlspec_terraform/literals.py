"""Spec strings stay data in Terraform JSON.

Terraform evaluates `${...}` and `%{...}` inside every JSON string, and cdktf resolves any text that looks
like one of its tokens (`${TfToken[TOKEN.1]}`) into a reference to another construct. So before the IR
reaches cdktf, each `${` and `%{` in its strings becomes a private-use sentinel that neither can mistake
for syntax; after synthesis the sentinels become Terraform's escapes, `$${` and `%%{`, which Terraform
reads back as the literal text. The references our own constructs make (`attr()`) are built after the IR is
escaped, so they keep their meaning.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

# Private-use code points: lint refuses them in specs (MS240), so a sentinel always stands for `${`/`%{`.
DOLLAR, PERCENT = "\ue000", "\ue001"
SENTINELS = (DOLLAR, PERCENT)


def _escape(text: str) -> str:
    return text.replace("${", DOLLAR + "{").replace("%{", PERCENT + "{")


def _walk(value: Any) -> Any:
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, BaseModel):
        return value.model_copy(
            update={name: _walk(getattr(value, name)) for name in type(value).model_fields}
        )
    if isinstance(value, list):
        return [_walk(v) for v in value]
    if isinstance(value, dict):
        return {_walk(k): _walk(v) for k, v in value.items()}
    return value


def escape_ir(ir: Any) -> Any:
    """A copy of the IR whose strings carry sentinels where Terraform or cdktf would see syntax."""
    return _walk(ir)


def restore(value: Any) -> Any:
    """The synthesized document with each sentinel turned into Terraform's escape for the literal text."""
    if isinstance(value, str):
        return value.replace(DOLLAR + "{", "$${").replace(PERCENT + "{", "%%{")
    if isinstance(value, list):
        return [restore(v) for v in value]
    if isinstance(value, dict):
        return {restore(k): restore(v) for k, v in value.items()}
    return value
