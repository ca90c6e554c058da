"""Silencing lint diagnostics, the way ruff's `noqa` does.

- `# mlspec: ignore[MS211]` on a line silences those codes for diagnostics that start on that line;
- `# mlspec: ignore-file[MS211, MS209]` on any line silences them in the whole file;
- `ignore = ["MS211"]` in the project's configuration silences them everywhere: the nearest `.mlspec.toml`
  or `mlspec.toml` (top level), or `pyproject.toml` with a `[tool.mlspec]` table, from the spec's folder up.

Only lint rule diagnostics can be silenced: a file that does not load or validate has no spec to compile.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mlspec.diagnostics import Diagnostic, Location, MlspecError

COMMENT = re.compile(r"#\s*mlspec:\s*ignore(?P<file>-file)?\[(?P<codes>[^\]]*)\]")
CODE = re.compile(r"^MS\d{3}$")
CONFIG_FILES = (".mlspec.toml", "mlspec.toml", "pyproject.toml")


def _codes(text: str) -> frozenset[str]:
    return frozenset(c.strip() for c in text.split(",") if c.strip())


@dataclass(frozen=True)
class Ignores:
    everywhere: frozenset[str] = frozenset()
    by_line: dict[int, frozenset[str]] = field(default_factory=dict)

    def silences(self, d: Diagnostic) -> bool:
        return d.code in self.everywhere or d.code in self.by_line.get(d.location.line, ())


def from_comments(text: str) -> Ignores:
    everywhere: set[str] = set()
    by_line: dict[int, frozenset[str]] = {}
    if "mlspec:" not in text:
        return Ignores()
    for number, line in enumerate(text.splitlines(), start=1):
        for match in COMMENT.finditer(line):
            if match.group("file"):
                everywhere |= _codes(match.group("codes"))
            else:
                by_line[number] = by_line.get(number, frozenset()) | _codes(match.group("codes"))
    return Ignores(frozenset(everywhere), by_line)


def find_config(start: Path) -> tuple[Path, dict] | None:
    """The nearest configuration file at or above `start` and its mlspec table."""
    for folder in [start, *start.parents]:
        for name in CONFIG_FILES:
            path = folder / name
            if not path.is_file():
                continue
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise _config_error(path, f"cannot read it: {exc}") from None
            if name == "pyproject.toml":
                table = data.get("tool", {}).get("mlspec")
                if table is None:
                    continue
                return path, table
            return path, data
    return None


def config_ignores(spec_path: str | Path) -> frozenset[str]:
    found = find_config(Path(spec_path).resolve().parent)
    if found is None:
        return frozenset()
    path, table = found
    unknown = sorted(set(table) - {"ignore"})
    if unknown:
        raise _config_error(path, f"unknown setting(s) {', '.join(unknown)}; the one setting is 'ignore'")
    codes = table.get("ignore", [])
    if not isinstance(codes, list) or not all(isinstance(c, str) and CODE.fullmatch(c) for c in codes):
        raise _config_error(path, "'ignore' must be a list of codes such as [\"MS211\"]")
    return frozenset(codes)


def _config_error(path: Path, message: str) -> MlspecError:
    return MlspecError([Diagnostic("MS020", f"invalid mlspec configuration: {message}", Location(str(path)))])


def drop_ignored(diagnostics: Iterable[Diagnostic], text: str, extra: Iterable[str] = ()) -> list[Diagnostic]:
    comments = from_comments(text)
    ignores = Ignores(comments.everywhere | frozenset(extra), comments.by_line)
    return [d for d in diagnostics if not ignores.silences(d)]
