"""Which spec files a directory holds: `mlops.yaml` and `specs/*.yaml` at any depth, as the pre-commit hooks'
`files` pattern matches them, skipping hidden, virtualenv, dependency and generated folders."""

from __future__ import annotations

import os
import re
from pathlib import Path

SPEC_FILE = re.compile(r"(^|/)(mlops\.ya?ml|specs/[^/]+\.ya?ml)$")
SKIP_DIRS = {"node_modules", "generated", "__pycache__", "site-packages", "venv", "build", "dist"}


def specs_under(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
        for name in sorted(files):
            if SPEC_FILE.search((Path(folder).resolve() / name).as_posix()):
                found.append(Path(folder) / name)
    return found


def expand(paths: list[str]) -> list[str]:
    """Files stay as given; each directory becomes the spec files under it."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out += [f.as_posix() for f in specs_under(path)]
        else:
            out.append(p)
    return list(dict.fromkeys(out))
