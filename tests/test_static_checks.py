"""scripts/check.sh (what .ci/run runs before the tests) fails when ruff or mypy finds a problem."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _copy_of_the_tree(dest: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if name.startswith(("generated/", "data/")) or not (ROOT / name).is_file():
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name)


def test_check_fails_on_a_lint_error_and_a_type_error_and_names_both(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    _copy_of_the_tree(tree)
    with (tree / "mlspec" / "units.py").open("a") as module:
        module.write('\n\ndef _planted_type_error() -> int:\n    return "not an int"\n')
    clock = tree / "mlspec" / "clock.py"
    clock.write_text(clock.read_text().replace("import os\n", "import os\nimport sys\n", 1))  # unused
    venv = Path(sys.executable).parent.parent
    proc = subprocess.run(
        ["bash", "scripts/check.sh"],
        cwd=tree,
        env={**os.environ, "MLSPEC_VENV": str(venv), "MYPY_CACHE_DIR": str(tmp_path / "mypy-cache")},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "static checks failed: ruff check, mypy\n" in proc.stderr
    assert "F401" in proc.stdout and "`sys` imported but unused" in proc.stdout
    assert 'Incompatible return value type (got "str", expected "int")' in proc.stdout
