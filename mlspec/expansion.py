"""An upper bound on how far a YAML text's aliases expand, computed from the text before it is parsed.

ruamel's pure-Python parser reads roughly 100 KB a second, so a document that reaches the node limit
through thousands of small aliases (`<<: *defaults` on every line) or a few nested ones (a billion laughs)
would be refused only after seconds of parsing. This scan finds, with a handful of regular expressions, each
anchor, the extent of the node it names and every alias, in one pass over the text. An anchored node is
bounded by the words and indicators written in it (see _Scan._weight_to) plus what the aliases inside it
expand to; every alias adds its anchor's bound. The bound only ever over-counts, so the loader
refuses on it before parsing; its exact count while building stays the rule for everything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ALIAS = re.compile(r"(?<![^\s\[{,])\*[^\s,\[\]{}]")  # an alias can only start after these
_SPECIAL = re.compile(r"[\n#'\"\[\]{}&*!|>]")
_NAME = re.compile(r"[^\s,\[\]{}]+")
_WORD = re.compile(r"(?![-?](?:\s|\Z))[^\s\[\]{},:]+")
_INDICATOR = re.compile(r"[\]},:]|(?<!\S)[-?](?=\s|\Z)")
_SINGLE_QUOTED_END = re.compile(r"(?:[^']|'')*'")
_DOUBLE_QUOTED_END = re.compile(r'(?:[^"\\]|\\.)*"', re.DOTALL)
_PROPERTIES = re.compile(r"(?:[ \t]+![^\s]*)*[ \t]*")  # tags between an anchor and its node


@dataclass
class _Open:
    """An anchored collection whose end the scan has not reached yet."""

    name: str
    weight_before: int
    expanded_before: int
    flow_depth: int | None  # a flow collection ends when the depth drops back to this
    indent: int = -1  # a block collection holds the lines indented more than this...
    dash_ok: bool = False  # ...and '- ' lines at exactly `indent` (a sequence as a mapping value)


class _Scan:
    def __init__(self, text: str, limit: int) -> None:
        self.text = text
        self.limit = limit
        self.anchors: dict[str, int] = {}
        self.open: list[_Open] = []
        self.opened: dict[str, list[_Open]] = {}  # the open anchors by name, innermost last
        self.expanded = 0  # nodes added by every alias seen so far
        self.depth = 0  # flow nesting
        self.line_start = 0
        self.property: tuple[int, int] = (-1, -1)  # span of the last anchor or tag at a node's start
        self._weighed_to = 0
        self._weight = 0

    def run(self) -> int | None:
        text, n = self.text, len(self.text)
        pos = 0
        while (match := _SPECIAL.search(text, pos)) is not None:
            ch, at = match.group(), match.start()
            pos = at + 1
            if ch == "\n":
                self.line_start = pos
                if not self.depth:
                    self._close_dedented(pos)
            elif ch == "#":
                if at == self.line_start or text[at - 1] in " \t":
                    end = text.find("\n", at)
                    pos = n if end < 0 else end
            elif ch in "]}":
                if self.depth:
                    self.depth -= 1
                    while self.open and self.open[-1].flow_depth == self.depth:
                        self._close(self.open.pop(), pos)
            elif not self._at_node_start(at):
                continue
            elif ch in "'\"":
                end_re = _SINGLE_QUOTED_END if ch == "'" else _DOUBLE_QUOTED_END
                quoted = end_re.match(text, pos)
                pos = quoted.end() if quoted else n
            elif ch in "[{":
                self.depth += 1
            elif ch in "|>":
                if not self.depth:
                    pos = self._block_scalar_end(at)
            elif ch == "!":
                tag = _NAME.match(text, pos)
                pos = tag.end() if tag else pos
                self.property = (at, pos)
            elif (name := _NAME.match(text, pos)) is not None:
                pos = name.end()
                if ch == "*":
                    self.expanded += self._size(name.group(), at)
                    if self.expanded > self.limit:
                        return at
                else:
                    self.property = (at, pos)
                    self._anchor(name.group(), at, pos)
        for anchored in reversed(self.open):
            self._close(anchored, n)
        return None

    def _size(self, name: str, at: int) -> int:
        """The bound for an alias at `at`.

        An anchor the scan still holds open must have ended before its alias (YAML allows nothing else), so
        the text from it up to the alias bounds it.
        """
        opened = self.opened.get(name)
        return self._bound(opened[-1], at) if opened else self.anchors.get(name, 0)

    def _at_node_start(self, at: int) -> bool:
        """Whether an indicator at `at` begins a node (elsewhere it is part of a plain scalar)."""
        text, i = self.text, at - 1
        while i >= self.line_start and text[i] in " \t":
            i -= 1
        if i < self.line_start or i == self.property[1] - 1:
            return True
        if text[i] in "[{,":
            return self.depth > 0
        return text[i] in ":-?" and i < at - 1

    def _indicator_before(self, at: int) -> tuple[str, int]:
        """The indicator that introduced the node at `at` ('' at a line start) and its column."""
        text, i = self.text, at - 1
        while True:
            while i >= self.line_start and text[i] in " \t":
                i -= 1
            if i < self.line_start or text[i] in ":-?[{,":
                break
            word = i
            while word >= self.line_start and text[word] not in " \t":
                word -= 1
            if text[word + 1] not in "!&":
                break
            i = word  # skip a tag or anchor written before this one
        if i < self.line_start:
            return "", at - self.line_start
        return text[i], i - self.line_start

    def _owner_indent(self, at: int) -> tuple[int, bool]:
        """Lines indented more than the first value (and '- ' lines level with it if True) are inside."""
        indicator, column = self._indicator_before(at)
        if indicator == ":":  # `key: &a` -> the key's column; a sequence may sit level with the key
            text, i = self.text, self.line_start
            # past the indentation and any '- ', '? ' or ': ' written before the key
            while i < self.line_start + column:
                if text[i] == " ":
                    i += 1
                elif text[i] in "-?:" and text[i + 1 : i + 2] in (" ", "\t"):
                    i += 2
                else:
                    break
            return i - self.line_start, True
        if indicator in "-?":
            return column, False
        return column - 1, False

    def _anchor(self, name: str, at: int, end: int) -> None:
        text = self.text
        follow = _PROPERTIES.match(text, end)
        k = follow.end() if follow else end
        if self.depth:  # inside flow the node may start on a later line
            while k < len(text) and text[k] in " \t\n":
                k += 1
        nxt = text[k] if k < len(text) else "\n"
        if nxt in "[{":
            self._open(_Open(name, self._weight_to(at), self.expanded, flow_depth=self.depth))
        elif not self.depth and (nxt == "\n" or (nxt == "#" and text[k - 1] in " \t")):
            indent, dash_ok = self._owner_indent(at)
            self._open(_Open(name, self._weight_to(at), self.expanded, None, indent, dash_ok))
        else:
            self.anchors[name] = 1  # a scalar

    def _close_dedented(self, line_start: int) -> None:
        text, n = self.text, len(self.text)
        j = line_start
        while j < n and text[j] in " \t":
            j += 1
        if j >= n or text[j] in "\n#":
            return  # blank and comment lines end nothing
        indent = j - line_start
        while self.open and self.open[-1].flow_depth is None:
            top = self.open[-1]
            dash = text[j] == "-" and (j + 1 == n or text[j + 1] in " \t\n")
            if indent > top.indent or (indent == top.indent and top.dash_ok and dash):
                return
            self._close(self.open.pop(), line_start)

    def _open(self, anchored: _Open) -> None:
        self.open.append(anchored)
        self.opened.setdefault(anchored.name, []).append(anchored)

    def _close(self, anchored: _Open, end: int) -> None:
        self.opened[anchored.name].pop()
        self.anchors[anchored.name] = self._bound(anchored, end)

    def _bound(self, anchored: _Open, end: int) -> int:
        """The anchored node's nodes if it ends at `end`: those written, plus what aliases in it added."""
        written = self._weight_to(end) - anchored.weight_before + 2
        return written + self.expanded - anchored.expanded_before

    def _weight_to(self, pos: int) -> int:
        """A bound on the nodes written in text[:pos] (aliases aside).

        A non-empty scalar holds a word; a flow collection starts at a bracket; a block collection or an
        empty scalar follows a ':', '-', '?', ',' or closing bracket, each at most twice ('- -' opens a
        sequence and leaves an empty item; a lone '?' three times). Positions only grow during the scan,
        so this reads the text once in all.
        """
        text, start = self.text, self._weighed_to
        if pos > start:
            self._weight += (
                len(_WORD.findall(text, start, pos))
                + text.count("[", start, pos)
                + text.count("{", start, pos)
                + 2 * len(_INDICATOR.findall(text, start, pos))
                + text.count("?", start, pos)
            )
            self._weighed_to = pos
        return self._weight

    def _block_scalar_end(self, at: int) -> int:
        """The newline that ends a `|` or `>` scalar's content (its lines may hold anything)."""
        text, n = self.text, len(self.text)
        indent, _ = self._owner_indent(at)
        end = text.find("\n", at)
        while end >= 0:
            j = end + 1
            while j < n and text[j] == " ":
                j += 1
            if j >= n:
                return n
            if text[j] != "\n" and j - (end + 1) <= indent:
                return end
            end = text.find("\n", j)
        return n


def first_alias_over(text: str, limit: int) -> tuple[int, int] | None:
    """The line and column (1-based) of the alias at which the expansion may pass `limit` nodes, or None."""
    if _ALIAS.search(text) is None:
        return None
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # YAML's line breaks, as the parser counts them
    at = _Scan(text, limit).run()
    if at is None:
        return None
    return text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1
