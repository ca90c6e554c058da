"""The loader refuses hostile input with a located diagnostic and a stable code, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from helpers_core import CHURN, MINIMAL, run_cli

from mlspec.diagnostics import MlspecError
from mlspec.loader import MAX_DEPTH, MAX_FILE_BYTES, load_bytes, load_file, load_text


def refused(text: str | bytes, **kwargs) -> MlspecError:
    with pytest.raises(MlspecError) as info:
        if isinstance(text, bytes):
            load_bytes(text, "spec.yaml", **kwargs)
        else:
            load_text(text, "spec.yaml", **kwargs)
    return info.value


def only(exc: MlspecError):
    assert len(exc.diagnostics) == 1, exc.diagnostics
    return exc.diagnostics[0]


def billion_laughs(levels: int = 9) -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = "a"
    for name in "bcdefghijklmnop"[: levels - 1]:
        text += f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]\n"
        previous = name
    return text


def test_churn_loads_with_positions() -> None:
    doc = load_file(CHURN)
    assert doc.data["metadata"]["name"] == "churn"
    line, col = doc.source_map.keys[("serving", "replicas")]
    assert doc.text.splitlines()[line - 1][col - 1 :].startswith("replicas:")
    assert len(doc.sha256) == 64


def test_duplicate_key_is_located() -> None:
    d = only(refused("a: 1\nb:\n  c: 1\n  c: 2\n"))
    assert (d.code, d.location.line, d.location.col) == ("MS005", 4, 3)
    assert "duplicate key 'c'" in d.message and "line 3" in d.message


@pytest.mark.parametrize(
    ("text", "kind"), [("- a\n- b\n", "sequence"), ("just text\n", "string"), ("42\n", "int")]
)
def test_non_mapping_root(text: str, kind: str) -> None:
    d = only(refused(text))
    assert d.code == "MS007" and kind in d.message and d.location.line == 1


def test_empty_document() -> None:
    assert only(refused("# only a comment\n")).code == "MS007"


def test_billion_laughs_fails_fast_and_small() -> None:
    tracemalloc.start()
    started = time.process_time()
    try:
        d = only(refused(billion_laughs()))
        elapsed = time.process_time() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert d.code == "MS006" and "alias" in d.message and d.location.line > 1
    assert elapsed < 1.0, f"took {elapsed:.2f}s of CPU"
    assert peak < 100 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"


_PEAK_RSS = (
    "import resource, sys\n"
    "from mlspec.cli import main\n"
    "try:\n    main()\n"
    "finally:\n    print('maxrss', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def _cli_peak_kib(*args: str) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, *args], capture_output=True, text=True, timeout=60
    )
    peak = int(result.stderr.rsplit("maxrss ", 1)[1].split()[0])
    return peak, result.stdout + result.stderr


def test_billion_laughs_cli_bounded_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(billion_laughs())
    baseline, _ = _cli_peak_kib("lint", str(CHURN))
    peak, stderr = _cli_peak_kib("lint", str(bomb))
    assert "MS006" in stderr and "Traceback" not in stderr
    assert peak - baseline < 100 * 1024, f"the bomb cost {(peak - baseline) / 1024:.0f} MiB over a clean lint"


def test_recursive_alias_refused() -> None:
    d = only(refused("a: &x [1, *x]\n"))
    assert d.code == "MS004" and "*x" in d.message


def test_file_over_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: " + b"x" * (MAX_FILE_BYTES + 1) + b"\n")
    with pytest.raises(MlspecError) as info:
        load_file(big)
    d = only(info.value)
    assert d.code == "MS001" and "limit" in d.message and str(MAX_FILE_BYTES) in d.message


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 10_000 + "]" * 10_000 + "\n",
        "a: " + "{b: " * 10_000 + "}" * 10_000 + "\n",
        "- " * 10_000 + "x\n",
        "a:\n" + "".join(" " * (i + 1) + "- \n" for i in range(2_000)),
    ],
    ids=["flow-lists", "flow-maps", "block-lists-one-line", "block-lists-indented"],
)
def test_deep_nesting_is_a_diagnostic(text: str) -> None:
    d = only(refused(text))
    assert d.code == "MS006" and str(MAX_DEPTH) in d.message and d.location.line >= 1


def test_deep_nesting_cli_no_traceback(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 10_000 + "]" * 10_000 + "\n")
    result = run_cli("lint", str(deep))
    assert result.returncode == 1
    assert (
        "MS006" in result.stdout
        and "Traceback" not in result.stderr
        and "RecursionError" not in result.stderr
    )


def test_nesting_within_limit_loads() -> None:
    depth = MAX_DEPTH - 2
    doc = load_text("a: " + "[" * depth + "1" + "]" * depth + "\n")
    node = doc.data["a"]
    for _ in range(depth - 1):
        node = node[0]
    assert node == [1]


def test_non_utf8_bytes_located() -> None:
    d = only(refused(b"a: 1\nb: caf\xe9\n"))
    assert (d.code, d.location.line, d.location.col) == ("MS002", 2, 7)
    assert "0xe9" in d.message


def test_tab_indentation_located() -> None:
    d = only(refused("a:\n\tb: 1\n"))
    assert (d.code, d.location.line, d.location.col) == ("MS003", 2, 1)
    assert d.hint and "spaces" in d.hint


def test_unset_variable_named() -> None:
    d = only(refused("a: 1\nimage: ghcr.io/x:${TAG}\n", env={}))
    assert d.code == "MS009" and "'TAG'" in d.message and d.location.line == 2
    assert d.hint and "${TAG:-" in d.hint


def test_unset_variable_with_default_and_set_variable() -> None:
    doc = load_text("a: ${TAG:-1.0}\nb: ${HOME_DIR}/x\nc: plain\n", env={"HOME_DIR": "/srv"})
    assert doc.data == {"a": "1.0", "b": "/srv/x", "c": "plain"}


def test_syntax_error_located() -> None:
    d = only(refused("a: [1, 2\nb: 3\n"))
    assert d.code == "MS004" and d.location.line >= 1


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("1: a\n", "MS008"),
        ("? [a, b]\n: 1\n", "MS008"),
        ("a: 1\n---\nb: 2\n", "MS004"),
        ("a: !python/object x\n", "MS004"),
        ("a: *nothing\n", "MS004"),
    ],
)
def test_other_refusals(text: str, code: str) -> None:
    assert only(refused(text)).code == code


def test_scalars_resolve_like_yaml_1_2() -> None:
    doc = load_text(
        "b: &b {x: 1, y: 2}\nc: {<<: *b, y: 3}\nd: 0x1F\ne: 1_000\nf: .inf\ng: 2024-01-01\nh: ~\ni: true\n"
        "j: '1'\nk: 1.5e3\nl: no\n"
    )
    assert doc.data["c"] == {"x": 1, "y": 3}
    assert doc.data["d"] == 31 and doc.data["e"] == 1000 and doc.data["f"] == float("inf")
    assert doc.data["g"] == "2024-01-01" and doc.data["h"] is None and doc.data["i"] is True
    assert doc.data["j"] == "1" and doc.data["k"] == 1500.0 and doc.data["l"] == "no"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    for path in (tmp_path / "absent.yaml", tmp_path):
        with pytest.raises(MlspecError) as info:
            load_file(path)
        assert only(info.value).code == "MS001"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        ("a:\n  b: 1\n  b: 2\n", "MS005"),
        ("- 1\n", "MS007"),
        ("a:\n\tb: 1\n", "MS003"),
        ("image: ${MLSPEC_TEST_UNSET_VAR}\n", "MS009"),
    ],
)
def test_cli_exit_code_and_no_traceback(tmp_path: Path, content: str, code: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(content)
    result = run_cli("lint", str(spec))
    assert result.returncode == 1, result.stderr
    assert code in result.stdout and "Traceback" not in result.stderr
    assert f"{spec.as_posix()}:" in result.stdout or "spec.yaml:" in result.stdout


def test_cli_non_utf8(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(MINIMAL.encode() + b"# \xff\xfe\n")
    result = run_cli("lint", str(spec))
    assert result.returncode == 1 and "MS002" in result.stdout and "Traceback" not in result.stderr
