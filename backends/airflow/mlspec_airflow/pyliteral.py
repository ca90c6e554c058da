"""Spec data as Python literals laid out the way `ruff format` lays them out.

Every spec string that reaches a DAG file goes through here: it becomes a quoted, escaped literal, never code.
Collections render flat when the line fits, else one element per line with a magic trailing comma, which
ruff keeps as is; so the generated files are ruff-format clean without running ruff at compile time.
"""

from __future__ import annotations

from typing import Any

LINE_LENGTH = 110
_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def string(text: str) -> str:
    """A string literal; double quotes unless single quotes need fewer escapes (ruff's rule)."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch == quote:
            out.append("\\" + ch)
        elif not ch.isprintable():
            code = ord(ch)
            out.append(
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
            )
        else:
            out.append(ch)
    return quote + "".join(out) + quote


def flat(value: Any) -> str:
    """The one-line literal of a JSON-like value (str, int, float, bool, None, list, tuple, dict)."""
    if isinstance(value, str):
        return string(value)
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int | float):
        text = repr(value)
        if text in ("inf", "-inf", "nan"):
            raise ValueError(f"{text} has no Python literal")
        return text
    if isinstance(value, list | tuple):
        body = ", ".join(flat(v) for v in value)
        if isinstance(value, tuple):
            return f"({body},)" if len(value) == 1 else f"({body})"
        return f"[{body}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{flat(k)}: {flat(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no literal for {type(value).__name__}")


def literal(value: Any, indent: int = 0, prefix: str = "", suffix: str = "") -> str:
    """`prefix + literal + suffix` at `indent` spaces, exploded over lines when it does not fit.

    The result has no leading indentation on its first line (the template places it) and indents its
    continuation lines relative to `indent`.
    """
    one_line = flat(value)
    if indent + len(prefix) + len(one_line) + len(suffix) <= LINE_LENGTH or not _explodable(value):
        return prefix + one_line + suffix
    pad = " " * (indent + 4)
    if isinstance(value, dict):
        items = [literal(v, indent + 4, f"{flat(k)}: ", ",") for k, v in value.items()]
        opener, closer = "{", "}"
    else:
        items = [literal(v, indent + 4, "", ",") for v in value]
        opener, closer = ("(", ")") if isinstance(value, tuple) else ("[", "]")
    lines = [prefix + opener] + [pad + item for item in items] + [" " * indent + closer + suffix]
    return "\n".join(lines)


def call(function: str, value: Any, indent: int = 0, prefix: str = "", suffix: str = "") -> str:
    """`prefix + function(literal) + suffix`; an exploded literal goes on its own lines inside the call."""
    one_line = f"{prefix}{function}({flat(value)}){suffix}"
    if indent + len(one_line) <= LINE_LENGTH:
        return one_line
    inner = literal(value, indent + 4)
    return f"{prefix}{function}(\n{' ' * (indent + 4)}{inner}\n{' ' * indent}){suffix}"


def fits(text: str, indent: int = 0) -> bool:
    return indent + len(text) <= LINE_LENGTH


def _explodable(value: Any) -> bool:
    return isinstance(value, list | tuple | dict) and len(value) > 0
