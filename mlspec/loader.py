"""Load an mlops.yaml into plain Python data plus a source map of every node's line and column.

Hostile input is refused with diagnostics, never a traceback: what is not a regular file (a FIFO, a device,
a directory), oversized files (by their size, before reading), non-UTF-8 bytes, tabs in indentation,
duplicate keys, alias expansion bombs (bounded from the text before parsing, then counted exactly), deep
nesting, a non-mapping root, and `${VAR}` interpolation of a variable that is not set.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlspec.diagnostics import Diagnostic, Location, MlspecError
from mlspec.expansion import first_alias_over

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 64

KeyPath = tuple[str | int, ...]

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class SourceMap:
    """Where each node of the document came from: key path -> (line, col), 1-based."""

    path: str
    keys: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    values: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    interpolated: set[KeyPath] = field(default_factory=set)  # scalars that took a value from ${VAR}

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
    sha256: str  # of the file's bytes: the manifest records it
    content_sha256: str  # of the parsed data: comments and formatting leave it alone, so the IR carries it


def _err(
    path: str, code: str, message: str, line: int = 0, col: int = 0, hint: str | None = None
) -> MlspecError:
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
        raw = read_spec_bytes(path)
    except _Refused as refused:
        raise _err(shown, "MS001", refused.reason) from None
    return load_bytes(raw, shown, env=env)


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


_FILE_KINDS = {
    stat.S_IFDIR: "is a directory, not a spec file",
    stat.S_IFIFO: "is a FIFO (named pipe), not a regular file",
    stat.S_IFCHR: "is a character device, not a regular file",
    stat.S_IFBLK: "is a block device, not a regular file",
    stat.S_IFSOCK: "is a socket, not a regular file",
}


def _check_regular(st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise _Refused(_FILE_KINDS.get(stat.S_IFMT(st.st_mode), "is not a regular file"))
    if st.st_size > MAX_FILE_BYTES:
        raise _Refused(f"file is {st.st_size} bytes; the limit is {MAX_FILE_BYTES} bytes")


def read_spec_bytes(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES, judged by stat before a byte is read.

    Raises _Refused. The file is opened non-blocking (a FIFO swapped in after the stat cannot hang the
    open) and checked again on the open descriptor; at most one byte past the limit is ever read.
    """
    try:
        _check_regular(os.stat(path))
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise _Refused("file not found") from None
    except OSError as exc:
        raise _Refused(f"cannot read file: {exc.strerror}") from None
    try:
        _check_regular(os.fstat(fd))
        chunks, size = [], 0
        while size <= MAX_FILE_BYTES and (chunk := os.read(fd, MAX_FILE_BYTES + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise _Refused(f"cannot read file: {exc.strerror}") from None
    finally:
        os.close(fd)
    if size > MAX_FILE_BYTES:  # it grew after the stat
        raise _Refused(f"file is over the limit of {MAX_FILE_BYTES} bytes")
    return b"".join(chunks)


def source_text(path: str | os.PathLike[str]) -> str | None:
    """The text of a spec for showing source lines under diagnostics; None where load_file refuses it."""
    try:
        return read_spec_bytes(path).decode("utf-8", errors="replace")
    except _Refused:
        return None


def load_bytes(raw: bytes, path: str = "<string>", *, env: dict[str, str] | None = None) -> LoadedDocument:
    if len(raw) > MAX_FILE_BYTES:
        raise _err(path, "MS001", f"file is {len(raw)} bytes; the limit is {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise _err(
            path, "MS002", f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})", line, col
        ) from None
    return load_text(text, path, env=env)


def _check_tabs(text: str, path: str) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            raise _err(
                path,
                "MS003",
                "tab character in indentation",
                number,
                indent.index("\t") + 1,
                hint="YAML indentation must use spaces",
            )


def load_text(text: str, path: str = "<string>", *, env: dict[str, str] | None = None) -> LoadedDocument:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    _check_tabs(text, path)
    if text.startswith("\ufeff"):
        text = text[1:]
    _check_flow_depth(text, path)
    _check_expansion(text, path)
    yaml = YAML(typ="safe", pure=True)
    source_map = SourceMap(path)
    builder = _Builder(path, source_map, os.environ if env is None else env, yaml.resolver)
    try:
        data = builder.build(yaml.parse(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        raise _err(path, "MS004", problem, line, col) from None
    except YAMLError as exc:
        raise _err(path, "MS004", f"invalid YAML: {exc}") from None
    except RecursionError:  # defensive: the builder is iterative and depth is bounded before parsing
        raise _err(path, "MS006", f"document nested deeper than {MAX_DEPTH} levels") from None
    if data is _EMPTY:
        raise _err(
            path, "MS007", "document is empty; expected a mapping with apiVersion, kind, metadata", 1, 1
        )
    if not isinstance(data, dict):
        raise _err(path, "MS007", f"document root must be a mapping, not a {_yaml_type(data)}", 1, 1)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return LoadedDocument(
        path=path,
        text=text,
        data=data,
        source_map=source_map,
        sha256=digest,
        content_sha256=content_sha256(data),
    )


def content_sha256(data: dict[str, Any]) -> str:
    """sha256 of a parsed document as canonical JSON: equal for two files that differ only in comments,
    key order, quoting or layout. YAML dates and timestamps hash as their ISO text."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _check_expansion(text: str, path: str) -> None:
    """Refuse an alias bomb from a bound on its expansion before the (slow) parser reads it."""
    where = first_alias_over(text, MAX_NODES)
    if where is not None:
        raise _err(path, "MS006", _EXPANSION_MESSAGE, *where, hint=_EXPANSION_HINT)


_EXPANSION_MESSAGE = f"document expands to more than {MAX_NODES} nodes (alias/anchor bomb?)"
_EXPANSION_HINT = "avoid deeply nested aliases"
_FLOW_TOKENS = re.compile(r"[\[\]{}\"'#\n]")


def _check_flow_depth(text: str, path: str) -> None:
    """Refuse absurd flow nesting before the YAML scanner (quadratic in flow depth) sees it."""
    depth = 0
    quote = ""
    pos = 0
    line_start = 0
    line = 1
    for match in _FLOW_TOKENS.finditer(text):
        ch, pos = match.group(), match.start()
        if ch == "\n":
            line, line_start = line + 1, pos + 1
            if quote == "#":
                quote = ""
            continue
        if quote:
            if (quote == "'" and ch == "'") or (quote == '"' and ch == '"' and not _escaped(text, pos)):
                quote = ""
            continue
        before = text[line_start:pos].rstrip()
        if ch == "#" and (not before or text[pos - 1] in " \t"):
            quote = "#"
        elif ch in "\"'" and (not before or before[-1] in ":-[{,?"):
            quote = ch
        elif ch in "[{" and (not before or before[-1] in ":-[{,?"):
            depth += 1
            if depth > MAX_DEPTH:
                raise _err(
                    path,
                    "MS006",
                    f"document nested deeper than {MAX_DEPTH} levels",
                    line,
                    pos - line_start + 1,
                )
        elif ch in "]}" and depth:
            depth -= 1


def _escaped(text: str, pos: int) -> bool:
    slashes = 0
    while pos - slashes - 1 >= 0 and text[pos - slashes - 1] == "\\":
        slashes += 1
    return slashes % 2 == 1


_EMPTY = object()
_TAG = "tag:yaml.org,2002:"


class _Frame:
    """A mapping or sequence under construction."""

    __slots__ = ("anchor", "explicit", "key", "kp", "merges", "size", "value")

    def __init__(self, value: dict[str, Any] | list[Any], kp: KeyPath, anchor: str | None):
        self.value = value
        self.kp = kp
        self.anchor = anchor
        self.size = 1
        self.key: Any = _EMPTY  # mappings: the key waiting for its value
        self.merges: list[dict[str, Any]] = []
        self.explicit: set[str] = set()


class _Builder:
    """Builds plain data from ruamel's event stream without recursion.

    Positions come from the events; every node's expanded size (aliases included) is counted so that an
    alias bomb is refused after reading its few lines, and nesting depth is bounded.
    """

    def __init__(self, path: str, source_map: SourceMap, env: Any, resolver: Any):
        self.path = path
        self.map = source_map
        self.env = env
        self.resolver = resolver
        self.total = 0
        self.anchors: dict[str, tuple[Any, int]] = {}

    def _fail(self, code: str, message: str, mark: Any, hint: str | None = None) -> MlspecError:
        return _err(self.path, code, message, mark.line + 1, mark.column + 1, hint=hint)

    def build(self, events: Any) -> Any:
        from ruamel.yaml.events import (
            AliasEvent,
            DocumentStartEvent,
            MappingEndEvent,
            MappingStartEvent,
            ScalarEvent,
            SequenceEndEvent,
            SequenceStartEvent,
        )

        stack: list[_Frame] = []
        root: Any = _EMPTY
        documents = 0
        for event in events:
            if isinstance(event, DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise self._fail(
                        "MS004",
                        "more than one YAML document; a spec is a single document",
                        event.start_mark,
                        hint="remove the '---' separator and what follows",
                    )
                continue
            if isinstance(event, MappingEndEvent | SequenceEndEvent):
                frame = stack.pop()
                if isinstance(frame.value, dict):
                    for merged in frame.merges:
                        for key, value in merged.items():
                            frame.value.setdefault(key, value)
                value, size = frame.value, frame.size
                if frame.anchor:
                    self.anchors[frame.anchor] = (value, size)
            elif isinstance(event, AliasEvent):
                if event.anchor not in self.anchors:
                    raise self._fail(
                        "MS004",
                        f"alias *{event.anchor} refers to no anchor defined before it",
                        event.start_mark,
                        hint="anchors must be defined, and complete, before use",
                    )
                value, size = self.anchors[event.anchor]
            elif isinstance(event, MappingStartEvent | SequenceStartEvent):
                if len(stack) >= MAX_DEPTH:
                    raise self._fail(
                        "MS006", f"document nested deeper than {MAX_DEPTH} levels", event.start_mark
                    )
                tag = event.tag
                wanted = "map" if isinstance(event, MappingStartEvent) else "seq"
                if tag not in (None, "!", _TAG + wanted):
                    raise self._fail("MS004", f"unsupported YAML tag {tag}", event.start_mark)
                kp = self._child_path(stack, event.start_mark)
                if stack and isinstance(stack[-1].value, dict) and stack[-1].key is _EMPTY:
                    raise self._fail(
                        "MS008",
                        f"mapping keys must be strings, found a {'mapping' if wanted == 'map' else 'sequence'}",
                        event.start_mark,
                    )
                stack.append(_Frame({} if wanted == "map" else [], kp, event.anchor))
                self._count(event.start_mark)
                continue
            elif isinstance(event, ScalarEvent):
                if stack and isinstance(stack[-1].value, dict) and stack[-1].key is _EMPTY:
                    self._key(stack[-1], event)
                    continue
                kp = self._child_path(stack, event.start_mark)
                value, size = self._scalar(event, kp), 1
                if event.anchor:
                    self.anchors[event.anchor] = (value, 1)
                self._count(event.start_mark)
            else:
                continue
            # attach a finished node (collection, alias or scalar) to its parent
            if not stack:
                root = value
                continue
            parent = stack[-1]
            parent.size += size
            if isinstance(event, AliasEvent):
                self._count(event.start_mark, size)
            if isinstance(parent.value, list):
                parent.value.append(value)
            elif parent.key is _MERGE:
                merges = value if isinstance(value, list) else [value]
                if not all(isinstance(m, dict) for m in merges):
                    raise self._fail(
                        "MS004", "'<<' merge needs a mapping or a list of mappings", event.start_mark
                    )
                parent.merges.extend(merges)
                parent.key = _EMPTY
            else:
                parent.value[parent.key] = value
                parent.key = _EMPTY
        return root

    def _count(self, mark: Any, size: int = 1) -> None:
        self.total += size
        if self.total > MAX_NODES:
            raise self._fail("MS006", _EXPANSION_MESSAGE, mark, hint=_EXPANSION_HINT)

    def _child_path(self, stack: list[_Frame], mark: Any) -> KeyPath:
        if not stack:
            self.map.values.setdefault((), (mark.line + 1, mark.column + 1))
            return ()
        parent = stack[-1]
        if isinstance(parent.value, list):
            kp = (*parent.kp, len(parent.value))
            self.map.keys.setdefault(kp, (mark.line + 1, mark.column + 1))
        else:
            kp = (*parent.kp, parent.key) if parent.key is not _MERGE else (*parent.kp, "<<")
        self.map.values.setdefault(kp, (mark.line + 1, mark.column + 1))
        return kp

    def _key(self, frame: _Frame, event: Any) -> None:
        from ruamel.yaml.nodes import ScalarNode

        tag = event.tag or self.resolver.resolve(ScalarNode, event.value, event.implicit)
        if tag == _TAG + "merge" and event.style is None:
            frame.key = _MERGE
            return
        if tag not in (_TAG + "str", "!"):
            value = self._scalar(event, frame.kp)
            raise self._fail(
                "MS008",
                f"mapping keys must be strings, found {_yaml_type(value)} {value!r}",
                event.start_mark,
                hint=f"quote it: '{event.value}'",
            )
        key = event.value
        kp = (*frame.kp, key)
        if key in frame.explicit:
            first = self.map.keys.get(kp)
            where = f" (first defined on line {first[0]})" if first else ""
            raise self._fail(
                "MS005",
                f"duplicate key '{key}'{where}",
                event.start_mark,
                hint="each key may appear once in a mapping",
            )
        frame.explicit.add(key)
        self.map.keys[kp] = (event.start_mark.line + 1, event.start_mark.column + 1)
        frame.key = key

    def _scalar(self, event: Any, kp: KeyPath) -> Any:
        from ruamel.yaml.nodes import ScalarNode

        text = event.value
        tag = event.tag
        if tag is None:
            tag = self.resolver.resolve(ScalarNode, text, event.implicit)
        elif tag == "!":
            tag = _TAG + "str"
        if tag == _TAG + "str":
            return self._interpolate(text, kp)
        if tag == _TAG + "null":
            return None
        if tag == _TAG + "bool":
            return text.lower() == "true"
        if tag == _TAG + "int":
            return _parse_int(text)
        if tag == _TAG + "float":
            return _parse_float(text)
        if tag == _TAG + "timestamp":
            return text  # dates keep their text form
        raise self._fail("MS004", f"unsupported YAML tag {tag}", event.start_mark)

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
            raise MlspecError(
                [
                    Diagnostic(
                        "MS009",
                        f"environment variable '{name}' is not set",
                        self.map.locate(kp, at_key=False),
                        hint=f"set {name} or give a default: ${{{name}:-value}}",
                    )
                ]
            )

        self.map.interpolated.add(kp)
        return _INTERPOLATION.sub(replace, value)


_MERGE = object()


def _parse_int(text: str) -> int | str:
    digits = text.replace("_", "")
    try:
        return int(digits, 0)
    except ValueError:
        try:
            return int(digits, 10)
        except ValueError:
            return text


def _parse_float(text: str) -> float | str:
    lowered = text.replace("_", "").lower()
    special = {".inf": "inf", "+.inf": "inf", "-.inf": "-inf", ".nan": "nan"}
    try:
        return float(special.get(lowered, lowered))
    except ValueError:
        return text


def _yaml_type(value: Any) -> str:
    names: dict[type, str] = {dict: "mapping", list: "sequence", str: "string"}
    return names.get(type(value), type(value).__name__)
