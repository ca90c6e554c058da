"""Load an mlops.yaml into plain Python data plus a source map of every node's line and column.

Hostile input is refused with diagnostics, never a traceback: oversized files, non-UTF-8 bytes, tabs in
indentation, duplicate keys, alias expansion bombs, deep nesting, a non-mapping root, and `${VAR}`
interpolation of a variable that is not set.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlspec.diagnostics import Diagnostic, Location, MlspecError

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 64

KeyPath = tuple[str | int, ...]

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class SourceMap:
    """Where each node of the document came from: key path -> (line, col), 1-based."""

    path: str
    keys: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    values: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)

    def locate(self, key_path: KeyPath, *, at_key: bool = True) -> Location:
        """The closest known position for key_path, walking up to a parent when needed."""
        kp = tuple(key_path)
        while True:
            table_order = (self.keys, self.values) if at_key else (self.values, self.keys)
            for table in table_order:
                if kp in table:
                    line, col = table[kp]
                    return Location(self.path, line, col)
            if not kp:
                return Location(self.path, 1, 1)
            kp = kp[:-1]


@dataclass
class LoadedDocument:
    path: str
    text: str
    data: dict[str, Any]
    source_map: SourceMap
    sha256: str


def _err(path: str, code: str, message: str, line: int = 0, col: int = 0, hint: str | None = None) -> MlspecError:
    return MlspecError([Diagnostic(code, message, Location(path, line, col), hint=hint)])


def display_path(path: str | os.PathLike[str]) -> str:
    """A stable POSIX path for messages: relative to the working directory when inside it."""
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    try:
        return p.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def load_file(path: str | os.PathLike[str], *, env: dict[str, str] | None = None) -> LoadedDocument:
    shown = display_path(path)
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise _err(shown, "MS001", f"file is {size} bytes; the limit is {MAX_FILE_BYTES} bytes")
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise _err(shown, "MS001", "file not found") from None
    except IsADirectoryError:
        raise _err(shown, "MS001", "is a directory, not a spec file") from None
    except OSError as exc:
        raise _err(shown, "MS001", f"cannot read file: {exc.strerror}") from None
    return load_bytes(raw, shown, env=env)


def load_bytes(raw: bytes, path: str = "<string>", *, env: dict[str, str] | None = None) -> LoadedDocument:
    if len(raw) > MAX_FILE_BYTES:
        raise _err(path, "MS001", f"file is {len(raw)} bytes; the limit is {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise _err(path, "MS002", f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})", line, col) from None
    return load_text(text, path, env=env)


def _check_tabs(text: str, path: str) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            raise _err(
                path, "MS003", "tab character in indentation", number, indent.index("\t") + 1,
                hint="YAML indentation must use spaces",
            )


def load_text(text: str, path: str = "<string>", *, env: dict[str, str] | None = None) -> LoadedDocument:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    _check_tabs(text, path)
    if text.startswith("\ufeff"):
        text = text[1:]
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        code = "MS005" if "duplicate key" in problem else "MS004"
        if code == "MS005":
            problem = problem.replace("found duplicate key", "duplicate key").split(" with value")[0]
        raise _err(path, code, problem, line, col) from None
    except RecursionError:
        raise _err(path, "MS006", f"document nested too deeply (limit {MAX_DEPTH} levels)") from None
    except YAMLError as exc:
        raise _err(path, "MS004", f"invalid YAML: {exc}") from None
    if tree is None:
        raise _err(path, "MS007", "document is empty; expected a mapping with apiVersion, kind, metadata", 1, 1)
    source_map = SourceMap(path)
    converter = _Converter(path, source_map, os.environ if env is None else env)
    data = converter.convert(tree, (), 0)
    if not isinstance(data, dict):
        raise _err(path, "MS007", f"document root must be a mapping, not a {_yaml_type(data)}", 1, 1)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return LoadedDocument(path=path, text=text, data=data, source_map=source_map, sha256=digest)


def _yaml_type(value: Any) -> str:
    return {dict: "mapping", list: "sequence", str: "string"}.get(type(value), type(value).__name__)


class _Converter:
    """Turns ruamel's round-trip tree into plain data, recording positions and bounding expansion."""

    def __init__(self, path: str, source_map: SourceMap, env: Any):
        self.path = path
        self.map = source_map
        self.env = env
        self.nodes = 0

    def _count(self, kp: KeyPath) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            loc = self.map.locate(kp)
            raise MlspecError([
                Diagnostic(
                    "MS006", f"document expands to more than {MAX_NODES} nodes (alias/anchor bomb?)", loc,
                    hint="avoid deeply nested aliases",
                )
            ])

    def convert(self, node: Any, kp: KeyPath, depth: int) -> Any:
        from ruamel.yaml.comments import CommentedMap, CommentedSeq

        self._count(kp)
        if depth > MAX_DEPTH:
            loc = self.map.locate(kp)
            raise MlspecError([Diagnostic("MS006", f"document nested deeper than {MAX_DEPTH} levels", loc)])
        if isinstance(node, CommentedMap):
            out: dict[str, Any] = {}
            for key in node:
                child = (*kp, str(key))
                try:
                    kl, kc = node.lc.key(key)
                    vl, vc = node.lc.value(key)
                    self.map.keys.setdefault(child, (kl + 1, kc + 1))
                    self.map.values.setdefault(child, (vl + 1, vc + 1))
                except (KeyError, TypeError, AttributeError):  # merged keys carry no position of their own
                    pass
                if not isinstance(key, str):
                    raise MlspecError([
                        Diagnostic(
                            "MS008", f"mapping keys must be strings, found {_yaml_type(key)} {key!r}",
                            self.map.locate(child),
                        )
                    ])
                out[key] = self.convert(node[key], child, depth + 1)
            return out
        if isinstance(node, CommentedSeq):
            items = []
            for index, item in enumerate(node):
                child = (*kp, index)
                try:
                    line, col = node.lc.item(index)
                    self.map.keys.setdefault(child, (line + 1, col + 1))
                    self.map.values.setdefault(child, (line + 1, col + 1))
                except (KeyError, TypeError, AttributeError):
                    pass
                items.append(self.convert(item, child, depth + 1))
            return items
        if isinstance(node, str):
            return self._interpolate(str(node), kp)
        if isinstance(node, bool) or node is None:
            return node
        if isinstance(node, int):
            return int(node)
        if isinstance(node, float):
            return float(node)
        # dates/timestamps and other YAML-native scalars: keep their text form
        return str(node)

    def _interpolate(self, value: str, kp: KeyPath) -> str:
        if "${" not in value:
            return value

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            found = self.env.get(name)
            if found not in (None, ""):
                return str(found)
            if default is not None:
                return default
            raise MlspecError([
                Diagnostic(
                    "MS009", f"environment variable '{name}' is not set", self.map.locate(kp, at_key=False),
                    hint=f"set {name} or give a default: ${{{name}:-value}}",
                )
            ])

        return _INTERPOLATION.sub(replace, value)
