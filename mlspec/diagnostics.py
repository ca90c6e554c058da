"""Diagnostics: a code, a location, a message, a hint; rendered as text (rustc/ruff style), JSON, SARIF or
GitHub Actions annotations."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum

# Every code has a section in docs/rules.md; this is its stable public address (SARIF helpUri, LSP links).
RULES_URL = "https://github.com/mlspec/mlspec/blob/main/docs/rules.md"


def rule_url(code: str) -> str:
    return f"{RULES_URL}#{code.lower()}"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, order=True)
class Location:
    path: str
    line: int = 0  # 1-based; 0 means "the whole file"
    col: int = 0  # 1-based
    # The end of the span, exclusive (SARIF and LSP agree); 0 when unknown. with_spans() fills it from the
    # source text, so the loader and the rules only ever need to give the start.
    end_line: int = 0
    end_col: int = 0

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


# ------------------------------------------------------------------------------------------------- spans


def token_end(line: str, col: int) -> int:
    """The exclusive 1-based end column of the YAML token that starts at `col` (a key, a scalar, a quoted
    string or a whole flow collection) on this line."""
    start = col - 1
    if start < 0 or start >= len(line):
        return col + 1
    first = line[start]
    if first in "\"'":
        i = start + 1
        while i < len(line):
            if first == '"' and line[i] == "\\":
                i += 2
                continue
            if line[i] == first:
                if first == "'" and line[i + 1 : i + 2] == "'":  # '' is an escaped quote
                    i += 2
                    continue
                return i + 2
            i += 1
        return len(line.rstrip()) + 1
    if first in "[{":
        depth, quote = 0, ""
        for i in range(start, len(line)):
            ch = line[i]
            if quote:
                quote = "" if ch == quote else quote
            elif ch in "\"'":
                quote = ch
            elif ch in "[{":
                depth += 1
            elif ch in "]}":
                depth -= 1
                if depth == 0:
                    return i + 2
        return len(line.rstrip()) + 1
    in_flow = _flow_depth(line[:start]) > 0
    end = start
    while end < len(line):
        ch = line[end]
        rest = line[end + 1 : end + 2]
        if ch == ":" and (rest in ("", " ", "\t") or (in_flow and rest in ",}]")):
            break
        if ch == "#" and end > start and line[end - 1] in " \t":
            break
        if in_flow and ch in ",]}":
            break
        end += 1
    end = len(line[:end].rstrip())
    return max(end, start + 1) + 1


def _flow_depth(prefix: str) -> int:
    depth, quote = 0, ""
    for ch in prefix:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}" and depth:
            depth -= 1
    return depth


class SourceLines:
    """Each source split into lines once, however many diagnostics point into it."""

    def __init__(self, sources: dict[str, str] | None = None):
        self._text = sources or {}
        self._lines: dict[str, list[str]] = {}

    def line(self, path: str, number: int) -> str | None:
        if path not in self._lines:
            text = self._text.get(path)
            if text is None:
                return None
            self._lines[path] = text.splitlines()
        lines = self._lines[path]
        return lines[number - 1] if 0 < number <= len(lines) else None


def with_span(d: Diagnostic, lines: SourceLines) -> Diagnostic:
    loc = d.location
    if loc.end_line or not loc.line:
        return d
    text = lines.line(loc.path, loc.line)
    if text is None:
        return d
    col = loc.col or 1
    return replace(d, location=replace(loc, col=col, end_line=loc.line, end_col=token_end(text, col)))


def with_spans(diagnostics: Iterable[Diagnostic], sources: dict[str, str] | SourceLines) -> list[Diagnostic]:
    """The diagnostics with end positions filled in from the source text, where the text is known."""
    lines = sources if isinstance(sources, SourceLines) else SourceLines(sources)
    return [with_span(d, lines) for d in diagnostics]


# ------------------------------------------------------------------------------------------------- text

_SEVERITY_STYLE = {Severity.ERROR: "1;31", Severity.WARNING: "1;33", Severity.INFO: "1;36"}


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color and text else text


def _excerpt(d: Diagnostic, lines: SourceLines, color: bool) -> list[str]:
    loc = d.location
    src = lines.line(loc.path, loc.line) if loc.line else None
    if src is None:
        return []
    gutter = str(loc.line)
    pad = " " * len(gutter)
    start = max(loc.col - 1, 0)
    width = max((loc.end_col - loc.col) if loc.end_line == loc.line else len(src) - start, 1)
    bar = _paint("|", "1;34", color)
    carets = _paint("^" * width, _SEVERITY_STYLE[d.severity], color)
    return [
        f"{pad} {bar}",
        f"{_paint(gutter, '1;34', color)} {bar} {src}",
        f"{pad} {bar} {' ' * start}{carets}",
    ]


def render_text(
    diagnostics: Sequence[Diagnostic], sources: dict[str, str] | None = None, *, color: bool = False
) -> str:
    """rustc/ruff style: `path:line:col: severity CODE message`, the source line, carets under the token
    and a hint. ANSI colours only when `color` is true."""
    lines = SourceLines(sources)
    out: list[str] = []
    for d in sorted(with_spans(diagnostics, lines), key=Diagnostic.sort_key):
        head = f"{_paint(str(d.location), '1', color)}: {_paint(str(d.severity), _SEVERITY_STYLE[d.severity], color)}"
        out.append(f"{head} {_paint(d.code, '1', color)} {d.message}")
        out.extend(_excerpt(d, lines, color))
        if d.hint:
            out.append(f"  {_paint('= hint:', '1;36', color)} {d.hint}")
    if diagnostics:
        errors = sum(d.severity is Severity.ERROR for d in diagnostics)
        warnings = sum(d.severity is Severity.WARNING for d in diagnostics)
        out.append(f"found {errors} error(s), {warnings} warning(s)")
    return "\n".join(out) + ("\n" if out else "")


# ------------------------------------------------------------------------------------- machine formats


def render_json(diagnostics: Sequence[Diagnostic], sources: dict[str, str] | None = None) -> str:
    spanned = with_spans(diagnostics, sources or {})
    return json.dumps([d.to_dict() for d in sorted(spanned, key=Diagnostic.sort_key)], indent=2) + "\n"


_GITHUB_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def _github_escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def render_github(diagnostics: Sequence[Diagnostic], sources: dict[str, str] | None = None) -> str:
    """GitHub Actions workflow commands: each diagnostic becomes an annotation on the pull request."""
    out = []
    for d in sorted(with_spans(diagnostics, sources or {}), key=Diagnostic.sort_key):
        loc = d.location
        props = [f"file={_github_escape(loc.path, prop=True)}"]
        if loc.line:
            props += [f"line={loc.line}", f"col={loc.col or 1}"]
        if loc.end_line:
            props += [f"endLine={loc.end_line}", f"endColumn={loc.end_col}"]
        props.append(f"title={_github_escape(f'mlspec {d.code}', prop=True)}")
        message = d.message + (f" ({d.hint})" if d.hint else "")
        out.append(f"::{_GITHUB_LEVEL[d.severity]} {','.join(props)}::{_github_escape(message)}")
    return "".join(line + "\n" for line in out)


_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def render_sarif(
    diagnostics: Sequence[Diagnostic], tool_version: str, sources: dict[str, str] | None = None
) -> str:
    from mlspec.lint.rules import RULE_DOCS

    codes = sorted({d.code for d in diagnostics})
    rules = [
        {
            "id": code,
            "shortDescription": {"text": RULE_DOCS.get(code, code)},
            "helpUri": rule_url(code),
        }
        for code in codes
    ]
    results = []
    for d in sorted(with_spans(diagnostics, sources or {}), key=Diagnostic.sort_key):
        loc = d.location
        region = {"startLine": loc.line or 1, "startColumn": loc.col or 1}
        if loc.end_line:
            region |= {"endLine": loc.end_line, "endColumn": loc.end_col}
        results.append(
            {
                "ruleId": d.code,
                "ruleIndex": codes.index(d.code),
                "level": _SARIF_LEVEL[d.severity],
                "message": {"text": d.message + (f" ({d.hint})" if d.hint else "")},
                "locations": [
                    {"physicalLocation": {"artifactLocation": {"uri": loc.path}, "region": region}}
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
