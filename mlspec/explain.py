"""`mlspec explain CODE`: a code's section of docs/rules.md (what it means, a bad and a good example), or,
where the docs are not installed alongside the package, the rule registry's summary and the docs URL."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from mlspec.diagnostics import rule_url

RULES_MD = Path(__file__).resolve().parent.parent / "docs" / "rules.md"
_SECTION = re.compile(r"^## (MS\d{3})\n(.*?)(?=^#{1,2} |\Z)", re.S | re.M)
_SUMMARY = re.compile(r"\*\*(.+?)\*\*")


@cache
def _sections() -> dict[str, str]:
    try:
        text = RULES_MD.read_text(encoding="utf-8")
    except OSError:
        return {}
    return {m.group(1): m.group(2).strip() for m in _SECTION.finditer(text)}


def _registry() -> dict[str, str]:
    from mlspec.lint.rules import RULE_DOCS

    return dict(RULE_DOCS)


def all_codes() -> dict[str, str]:
    """Every documented code and its one-line summary."""
    codes = _registry()
    for code, body in _sections().items():
        match = _SUMMARY.search(body)
        codes[code] = match.group(1).rstrip(".") if match else codes.get(code, "")
    return dict(sorted(codes.items()))


def explain_code(code: str) -> str | None:
    body = _sections().get(code)
    if body is None:
        summary = _registry().get(code)
        if summary is None:
            return None
        body = summary
    return f"{code}\n\n{body}\n\nDocs: {rule_url(code)}\n"
