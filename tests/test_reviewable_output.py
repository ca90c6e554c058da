"""Generated output is reviewable in a pull request: a spec comment changes only manifest.json, and no
generated line is longer than 200 characters where the file's format lets it wrap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINE = 200


def _mlspec(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mlspec", "compile", "specs/churn.yaml", "--env", "prod", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )


def _compile(project: Path, spec_text: str) -> dict[str, bytes]:
    (project / "specs").mkdir(parents=True)
    # The project root, so both copies name their spec specs/churn.yaml.
    (project / "mlspec.toml").write_text("")
    (project / "specs" / "churn.yaml").write_text(spec_text)
    proc = _mlspec(project, "--out", "out")
    assert proc.returncode == 0, proc.stderr
    root = project / "out" / "churn" / "prod"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_spec_comment_changes_only_the_manifest(tmp_path: Path) -> None:
    text = (ROOT / "specs" / "churn.yaml").read_text()
    first, rest = text.split("\n", 1)
    before = _compile(tmp_path / "before", text)
    after = _compile(tmp_path / "after", f"{first}\n# review me\n{rest}")
    assert before.keys() == after.keys()
    changed = sorted(path for path in before if before[path] != after[path])
    assert changed == ["manifest.json"]
    hashes = [json.loads(files["manifest.json"])["spec_sha256"] for files in (before, after)]
    assert hashes[0] != hashes[1]  # the manifest still records the spec file it was compiled from
    check = _mlspec(tmp_path / "after", "--check", "--out", str(tmp_path / "before" / "out"))
    assert (
        check.returncode == 1
        and check.stderr.count("stale: ") == 1
        and "stale: manifest.json" in check.stderr
    )
    assert len(before) > 40  # every target's files took part


# Lines a format cannot wrap, by kind of file and line. Anything else over MAX_LINE fails the test.
def _exempt(path: Path, line: str) -> str | None:
    stripped = line.strip()
    if path.suffix == ".md" and stripped.startswith("|"):
        return "a Markdown table row cannot span lines"
    if path.suffix in (".json", ".yaml") and _one_json_string(stripped):
        # ir.json, main.tf.json, and the pretty-printed JSON of a dashboard or IR ConfigMap inside YAML
        return "a JSON string (a policy document, a PromQL query, a source URL) cannot span lines"
    if path.suffix == ".html" and stripped.startswith("<pre data-query=") and stripped.endswith("</pre>"):
        return "the preview shows a panel's PromQL query exactly as Grafana runs it, one query per <pre>"
    return None


def _one_json_string(line: str) -> bool:
    """`"key": "value",` or `"value",`: one JSON string (a URL, a policy document, a PromQL query)."""
    body = line.rstrip(",")
    if body.startswith('"') and '": ' in body:
        body = body.split('": ', 1)[1]
    try:
        return isinstance(json.loads(body), str)
    except ValueError:
        return False


def test_no_generated_line_over_200_characters() -> None:
    long_lines = []
    for path in sorted((ROOT / "generated").rglob("*")):
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if len(line) > MAX_LINE and _exempt(path, line) is None:
                long_lines.append(
                    f"{path.relative_to(ROOT)}:{number}: {len(line)} characters: {line[:80]}..."
                )
    assert not long_lines, "\n".join(long_lines)


def test_markdown_wrap_keeps_tables_code_and_blocks() -> None:
    from mlspec import markdown

    prose = "word " * 40 + "- not a list item " + "word " * 10
    table = "| " + " | ".join(["cell"] * 60) + " |"
    code = "```\n" + "x" * 300 + "\n```"
    text = f"- {prose.strip()}\n{table}\n{code}\n"
    lines = markdown.wrap(text, 60).split("\n")
    assert table in lines and "x" * 300 in lines  # Markdown cannot wrap them
    items = [line for line in lines if line.startswith("-")]
    assert len(items) == 1  # no continuation line starts a new list item
    continuation = lines[1 : lines.index(table)]
    assert continuation and all(line.startswith("  ") and len(line) <= 60 + 20 for line in continuation)
    assert " ".join(line.strip() for line in lines[: lines.index(table)]) == f"- {prose.strip()}"
