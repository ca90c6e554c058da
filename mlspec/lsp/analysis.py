"""What the server knows about one buffer: the same diagnostics as `mlspec lint` (the API's load, validate
and lint, ignores included), each with its span, and the parsed document when the YAML parses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlspec.diagnostics import Diagnostic, MlspecError, token_end, with_spans
from mlspec.discover import SPEC_FILE
from mlspec.loader import KeyPath, LoadedDocument, load_text


@dataclass
class Analysis:
    path: str
    text: str
    diagnostics: list[Diagnostic]
    document: LoadedDocument | None  # None while the buffer is not valid YAML


def is_spec(path: str, text: str) -> bool:
    """Lint a buffer only when it is a spec: by its name, or by its apiVersion."""
    return bool(SPEC_FILE.search(path.replace("\\", "/"))) or "apiVersion: mlspec/" in text


def analyse(path: str, text: str) -> Analysis:
    from mlspec import api

    document: LoadedDocument | None = None
    try:
        loaded = api.loads(text, path)
        document = loaded.document
        found = api.lint(loaded)
    except MlspecError as exc:
        found = exc.diagnostics
        if document is None:
            try:
                document = load_text(text, path)
            except MlspecError:
                document = None
    return Analysis(path, text, with_spans(found, {path: text}), document)


def value_at(data: Any, path: KeyPath) -> Any:
    node = data
    for part in path:
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_list or (isinstance(node, dict) and part in node)):
            return None
        node = node[part]
    return node


def node_at(document: LoadedDocument, line: int, character: int) -> tuple[KeyPath, bool] | None:
    """The key path of the key (True) or scalar value (False) whose token holds the 0-based position."""
    lines = document.text.splitlines()
    if line >= len(lines):
        return None
    text = lines[line]
    best: tuple[int, KeyPath, bool] | None = None
    for table, is_key in ((document.source_map.keys, True), (document.source_map.values, False)):
        for kp, (row, col) in table.items():
            if row != line + 1 or (is_key and kp and isinstance(kp[-1], int)):
                continue
            if not is_key and isinstance(value_at(document.data, kp), dict | list):
                continue
            if col - 1 <= character < token_end(text, col) - 1 and (best is None or col > best[0]):
                best = (col, kp, is_key)
        if best is not None:
            return best[1], best[2]
    return None
