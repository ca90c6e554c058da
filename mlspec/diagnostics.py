"""Diagnostics: a code, a location, a message, a hint; rendered as text (rustc/ruff style), JSON or SARIF."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, order=True)
class Location:
    path: str
    line: int = 0  # 1-based; 0 means "the whole file"
    col: int = 0  # 1-based

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.col or 1}"
        return self.path


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    location: Location
    severity: Severity = Severity.ERROR
    hint: str | None = None
    key_path: tuple[str | int, ...] = field(default=())

    def sort_key(self) -> tuple:
        return (self.location.path, self.location.line, self.location.col, self.code, self.message)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["severity"] = str(self.severity)
        data["key_path"] = list(self.key_path)
        return data


class MlspecError(Exception):
    """The one exception type the project raises for bad input; carries diagnostics."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(f"{d.location}: {d.code} {d.message}" for d in self.diagnostics))


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    match = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'?" if match else None


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)


def _source_excerpt(d: Diagnostic, sources: dict[str, str]) -> list[str]:
    text = sources.get(d.location.path)
    if not text or not d.location.line:
        return []
    lines = text.splitlines()
    if d.location.line > len(lines):
        return []
    src = lines[d.location.line - 1]
    gutter = str(d.location.line)
    pad = " " * len(gutter)
    caret = " " * max(d.location.col - 1, 0) + "^"
    return [f"{pad} |", f"{gutter} | {src}", f"{pad} | {caret}"]


def render_text(diagnostics: Sequence[Diagnostic], sources: dict[str, str] | None = None) -> str:
    out: list[str] = []
    for d in sorted(diagnostics, key=Diagnostic.sort_key):
        out.append(f"{d.location}: {d.severity} {d.code} {d.message}")
        out.extend(_source_excerpt(d, sources or {}))
        if d.hint:
            out.append(f"  = hint: {d.hint}")
    if diagnostics:
        errors = sum(d.severity is Severity.ERROR for d in diagnostics)
        warnings = sum(d.severity is Severity.WARNING for d in diagnostics)
        out.append(f"found {errors} error(s), {warnings} warning(s)")
    return "\n".join(out) + ("\n" if out else "")


def render_json(diagnostics: Sequence[Diagnostic]) -> str:
    return json.dumps([d.to_dict() for d in sorted(diagnostics, key=Diagnostic.sort_key)], indent=2) + "\n"


_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def render_sarif(diagnostics: Sequence[Diagnostic], tool_version: str) -> str:
    from mlspec.lint.rules import RULE_DOCS

    codes = sorted({d.code for d in diagnostics})
    rules = [
        {
            "id": code,
            "shortDescription": {"text": RULE_DOCS.get(code, code)},
            "helpUri": f"docs/rules.md#{code.lower()}",
        }
        for code in codes
    ]
    results = []
    for d in sorted(diagnostics, key=Diagnostic.sort_key):
        region = {"startLine": d.location.line or 1, "startColumn": d.location.col or 1}
        results.append(
            {
                "ruleId": d.code,
                "level": _SARIF_LEVEL[d.severity],
                "message": {"text": d.message + (f" ({d.hint})" if d.hint else "")},
                "locations": [
                    {"physicalLocation": {"artifactLocation": {"uri": d.location.path}, "region": region}}
                ],
            }
        )
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "mlspec",
                        "version": tool_version,
                        "informationUri": "https://github.com/mlspec/mlspec",
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(doc, indent=2) + "\n"
