"""Quick fixes: take a diagnostic's did-you-mean suggestion, or silence its code on the line or in the file
with the comments that `mlspec lint` honours (mlspec.lint.ignores)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlspec.diagnostics import Diagnostic
from mlspec.lint.ignores import COMMENT

_SUGGESTION = re.compile(r"did you mean '([^']+)'\?")
_MODELINE = "# yaml-language-server:"


@dataclass(frozen=True)
class Edit:
    """Replace text between two 0-based (line, character) positions, counted in code points."""

    line: int
    start: int
    end_line: int
    end: int
    text: str


@dataclass(frozen=True)
class Fix:
    title: str
    edit: Edit
    diagnostic: Diagnostic
    preferred: bool = False


def fixes(diagnostic: Diagnostic, lines: list[str], ignorable: set[str]) -> list[Fix]:
    loc = diagnostic.location
    found: list[Fix] = []
    match = _SUGGESTION.search(diagnostic.hint or "")
    if match and loc.line and loc.end_line == loc.line:
        old = lines[loc.line - 1][loc.col - 1 : loc.end_col - 1] if loc.line <= len(lines) else ""
        new = match.group(1)
        quote = old[:1] if old[:1] in "\"'" and old[-1:] == old[:1] else ""
        found.append(
            Fix(
                f"Replace '{old.strip(quote)}' with '{new}'",
                Edit(loc.line - 1, loc.col - 1, loc.line - 1, loc.end_col - 1, f"{quote}{new}{quote}"),
                diagnostic,
                preferred=True,
            )
        )
    if diagnostic.code in ignorable and loc.line and loc.line <= len(lines):
        found.append(
            Fix(
                f"Ignore {diagnostic.code} on this line",
                _ignore_line(lines, loc.line - 1, diagnostic.code),
                diagnostic,
            )
        )
        found.append(
            Fix(f"Ignore {diagnostic.code} in this file", _ignore_file(lines, diagnostic.code), diagnostic)
        )
    return found


def _ignore_line(lines: list[str], line: int, code: str) -> Edit:
    text = lines[line]
    existing = next((m for m in COMMENT.finditer(text) if not m.group("file")), None)
    if existing is not None:
        close = existing.end() - 1  # the ']'
        return Edit(line, close, line, close, f", {code}")
    end = len(text)
    return Edit(line, end, line, end, f"  # mlspec: ignore[{code}]")


def _ignore_file(lines: list[str], code: str) -> Edit:
    for number, text in enumerate(lines):
        existing = next((m for m in COMMENT.finditer(text) if m.group("file")), None)
        if existing is not None:
            close = existing.end() - 1
            return Edit(number, close, number, close, f", {code}")
    at = 1 if lines and lines[0].startswith(_MODELINE) else 0
    return Edit(at, 0, at, 0, f"# mlspec: ignore-file[{code}]\n")
