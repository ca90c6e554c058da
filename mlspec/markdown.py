"""Wrap the prose of generated Markdown, so a pull request shows it without scrolling.

Only lines longer than WIDTH change. Tables, headings, HTML and fenced code stay as written (Markdown cannot
wrap them); a paragraph or list item breaks at spaces into lines that Markdown joins back when it renders.
"""

from __future__ import annotations

import re
import textwrap

WIDTH = 120
_LIST_ITEM = re.compile(r"^(\s*)([-*+]|\d+[.)])\s+")
# A line starting like this would begin a new block instead of continuing the paragraph.
_BLOCK_START = re.compile(r"^([-*+>#|=]|\d+[.)])(\s|$)")
_KEEP = ("|", "#", "<", ">")


def wrap(text: str, width: int = WIDTH) -> str:
    out: list[str] = []
    fenced = False
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        if fenced or len(line) <= width or line.lstrip().startswith(_KEEP) or line.startswith("    "):
            out.append(line)
            continue
        out.extend(_wrap_line(line, width))
    return "\n".join(out)


def _wrap_line(line: str, width: int) -> list[str]:
    item = _LIST_ITEM.match(line)
    indent = " " * len(item.group(0)) if item else re.match(r"\s*", line).group(0)  # type: ignore[union-attr]
    parts = textwrap.wrap(
        line,
        width,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
        drop_whitespace=True,
    )
    lines: list[str] = []
    for part in parts:
        if lines and _BLOCK_START.match(part.strip()):
            lines[-1] += " " + part.strip()  # keep it inside the paragraph, even if the line runs long
        else:
            lines.append(part)
    return lines
