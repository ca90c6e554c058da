"""Where the cursor is in a YAML document that may not parse yet (the user is typing): the key path of the
mapping or sequence around it, whether it stands where a key or a value goes, and the word typed so far.

Block structure comes from indentation and `- ` markers, read top-down like an indentation parser; flow
collections (`{a: 1, b: [x, y]}`) on the cursor's line are followed character by character.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

KeyPath = tuple[str | int, ...]

_KEY = re.compile(r"""(?P<key>"[^"]*"|'[^']*'|[^\s#'"{}\[\],:][^#{}\[\],:]*?)\s*:(?=\s|$)""")
_WORD = re.compile(r"[\w.-]*$")


@dataclass
class Cursor:
    path: KeyPath  # for a key: the mapping that holds it; for a value: the key (or sequence) it belongs to
    at_key: bool
    word: str  # the partial key or value before the cursor
    siblings: set[str] = field(default_factory=set)  # keys already present in that mapping


@dataclass
class _Frame:
    col: int
    part: str | int | None  # None for the root
    is_item: bool = False
    items: int = 0  # sequence items seen under this frame
    keys: set[str] = field(default_factory=set)


def _unquote(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] and key[0] in "\"'" else key


def _entries(line: str) -> tuple[list[tuple[int, str | None]], int]:
    """The `- ` markers (None) and the block key of a line, each with its column; and where the rest starts."""
    out: list[tuple[int, str | None]] = []
    i = len(line) - len(line.lstrip(" "))
    while line[i : i + 2] == "- " or line[i:].rstrip() == "-":
        out.append((i, None))
        i += 1
        while i < len(line) and line[i] == " ":
            i += 1
    match = _KEY.match(line, i)
    if match and not line[i:].startswith(("{", "[")):
        out.append((i, _unquote(match.group("key").strip())))
        rest = match.end()
        while rest < len(line) and line[rest] == " ":
            rest += 1
        return out, rest
    return out, i


def _place(stack: list[_Frame], col: int, key: str | None) -> None:
    """Put a key (or, with key None, a sequence item) at `col` onto the stack of open frames."""
    while len(stack) > 1:
        top = stack[-1]
        if top.col > col or (top.col == col and (key is not None or top.is_item)):
            stack.pop()
            continue
        break
    parent = stack[-1]
    if key is None:
        stack.append(_Frame(col, parent.items, is_item=True))
        parent.items += 1
    else:
        parent.keys.add(key)
        stack.append(_Frame(col, key))


def _path(stack: list[_Frame]) -> KeyPath:
    return tuple(f.part for f in stack[1:] if f.part is not None)


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith(("#", "---", "%"))


def cursor_at(text: str, line: int, character: int) -> Cursor:
    lines = text.splitlines()
    stack = [_Frame(-1, None)]
    for above in lines[: min(line, len(lines))]:
        if not _is_content(above):
            continue
        entries, _ = _entries(above)
        for col, key in entries:
            _place(stack, col, key)
    current = lines[line][:character] if line < len(lines) else ""
    entries, rest = _entries(current)
    if entries and entries[-1][1] is not None and rest <= len(current):
        for col, key in entries:
            _place(stack, col, key)
        value = current[rest:]
        if value.startswith(("{", "[")):
            return _in_flow(stack, value)
        return Cursor(_path(stack), at_key=False, word=value.strip())
    for col, key in entries:
        _place(stack, col, key)
    start = len(current) - len(current.lstrip(" ")) if not entries else entries[-1][0] + 2
    word_col = max(start, len(current) - len(_WORD.search(current).group()))  # type: ignore[union-attr]
    if current[start:].startswith(("{", "[")):
        return _in_flow(stack, current[start:])
    # a bare word at this column is a key of the mapping that the column belongs to
    while len(stack) > 1 and stack[-1].col >= word_col:
        stack.pop()
    siblings = _sibling_keys(lines, line, stack, word_col)
    return Cursor(_path(stack), at_key=True, word=current[word_col:], siblings=siblings)


def _sibling_keys(lines: list[str], line: int, stack: list[_Frame], col: int) -> set[str]:
    """Keys already in the mapping at `col`, above and below the cursor's line."""
    found = set(stack[-1].keys) if stack else set()
    for below in lines[line + 1 :]:
        if not _is_content(below):
            continue
        entries, _ = _entries(below)
        first = entries[0][0] if entries else len(below) - len(below.lstrip(" "))
        if first < col:
            break
        found.update(k for c, k in entries if c == col and k is not None)
    return {k for k in found if k}


def _in_flow(stack: list[_Frame], text: str) -> Cursor:
    """Follow `{a: 1, b: [x, ` to the innermost open collection and what is being typed in it."""
    path = list(_path(stack))
    frames: list[dict] = []  # {"kind": "map"|"seq", "key": pending key, "count": items, "keys": set}
    token = ""
    i = 0
    quote = ""
    while i < len(text):
        ch = text[i]
        if quote:
            token += ch
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
            token += ch
        elif ch in "{[":
            if frames:
                top = frames[-1]
                path.append(top["key"] if top["kind"] == "map" else top["count"])
            frames.append({"kind": "map" if ch == "{" else "seq", "key": None, "count": 0, "keys": set()})
            token = ""
        elif ch in "}]":
            if frames:
                frames.pop()
                if frames:
                    path.pop()
            token = ""
        elif ch == "," and frames:
            top = frames[-1]
            top["count"] += 1
            top["key"] = None
            token = ""
        elif ch == ":" and frames and frames[-1]["kind"] == "map" and text[i + 1 : i + 2] in ("", " "):
            key = _unquote(token.strip())
            frames[-1]["key"] = key
            frames[-1]["keys"].add(key)
            token = ""
        else:
            token += ch
        i += 1
    if not frames:
        return Cursor(tuple(path), at_key=False, word=token.strip())
    top = frames[-1]
    if top["kind"] == "seq":
        return Cursor(tuple(path), at_key=False, word=token.strip())
    if top["key"] is None:
        return Cursor(tuple(path), at_key=True, word=token.strip(), siblings=set(top["keys"]))
    return Cursor((*path, top["key"]), at_key=False, word=token.strip())
