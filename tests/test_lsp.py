"""The language server through a real LSP client (pytest-lsp starts `mlspec lsp` over stdio): the
diagnostics equal `mlspec lint`'s, as the unsaved buffer changes; hover, completion, quick fixes and
go-to-definition answer from the schema and the document."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import pytest_lsp
from helpers_core import MINIMAL, run_cli
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient

pytestmark = [pytest.mark.engine, pytest.mark.asyncio]

# MS104 from validation, with a did-you-mean hint
TYPO = MINIMAL + "serving:\n  replcas: {min: 1}\n  rollout: {strategy: rolling}\n"
# lint-rule diagnostics: an unpinned image (MS211), a gate on a metric that is not computed (MS201),
# a step after an unknown step (MS214); steps and a GPU pool to navigate
RULES = """\
apiVersion: mlspec/v1
kind: MLSystem
metadata: {name: demo}
images: {runtime: "ghcr.io/acme/demo:latest"}
data:
  sources: {train: {uri: data/train.csv}}
  schema:
    target: label
    columns:
      x: {type: float}
      label: {type: int, values: [0, 1]}
training:
  resources: {gpu: {type: nvidia-a10g}}
evaluation:
  metrics: [accuracy, auc]
  gates:
    - {metric: f1, min: 0.5}
steps:
  - name: prep
    command: [python, prep.py]
  - name: report
    command: [python, report.py]
    after: [prep, evaluat]
infrastructure:
  cloud: aws
  region: us-east-1
  cluster: {name: ml, version: "1.31"}
  node_pools:
    cpu: {instance_type: m6i.xlarge}
    gpu: {instance_type: g5.xlarge, accelerator: nvidia-a10g}
  storage: {artifacts_bucket: acme-ml-artifacts}
"""


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "mlspec", "lsp"]))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
    yield
    await lsp_client.shutdown_session()


def _spec(tmp_path: Path, text: str, name: str = "mlops.yaml") -> tuple[Path, str]:
    path = tmp_path / name
    path.write_text(text)
    return path, path.as_uri()


async def _open(client: LanguageClient, uri: str, text: str) -> list[lsp.Diagnostic]:
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri=uri, language_id="yaml", version=1, text=text))
    )
    await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return list(client.diagnostics[uri])


def _cli_diagnostics(path: Path) -> set[tuple]:
    result = run_cli("lint", str(path), "--format", "json")
    return {
        (
            d["code"],
            d["location"]["line"],
            d["location"]["col"],
            d["location"]["end_line"],
            d["location"]["end_col"],
            d["message"],
        )
        for d in json.loads(result.stdout)
    }


def _lsp_diagnostics(found: list[lsp.Diagnostic]) -> set[tuple]:
    return {
        (
            d.code,
            d.range.start.line + 1,
            d.range.start.character + 1,
            d.range.end.line + 1,
            d.range.end.character + 1,
            d.message.split("\nhint: ")[0],
        )
        for d in found
    }


@pytest.mark.parametrize("text", [TYPO, RULES], ids=["validation", "rules"])
async def test_diagnostics_equal_mlspec_lint(client: LanguageClient, tmp_path: Path, text: str) -> None:
    path, uri = _spec(tmp_path, text)
    found = await _open(client, uri, text)
    expected = _cli_diagnostics(path)
    assert expected and _lsp_diagnostics(found) == expected
    assert all(
        d.source == "mlspec" and d.code_description and d.code_description.href.startswith("https://")
        for d in found
    )


async def test_diagnostics_follow_the_unsaved_buffer(client: LanguageClient, tmp_path: Path) -> None:
    _, uri = _spec(tmp_path, TYPO)
    (first,) = await _open(client, uri, TYPO)
    assert first.code == "MS104" and first.severity == lsp.DiagnosticSeverity.Error
    assert (first.range.start.line, first.range.start.character, first.range.end.character) == (12, 2, 9)
    fixed = TYPO.replace("replcas", "replicas")
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=fixed)],
        )
    )
    await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert list(client.diagnostics[uri]) == []
    broken = fixed + "monitoring: {schedule: [\n"  # mid-typing: not YAML yet
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=3),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=broken)],
        )
    )
    await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert [d.code for d in client.diagnostics[uri]] == ["MS004"]


async def test_hover_shows_schema_docs(client: LanguageClient, tmp_path: Path) -> None:
    _, uri = _spec(tmp_path, RULES)
    await _open(client, uri, RULES)
    doc = lsp.TextDocumentIdentifier(uri=uri)
    name = await client.text_document_hover_async(lsp.HoverParams(doc, lsp.Position(line=2, character=12)))
    assert name is not None and "**metadata.name**" in name.contents.value
    assert "lowercase letters" in name.contents.value  # the model field's description
    sources = await client.text_document_hover_async(lsp.HoverParams(doc, lsp.Position(line=5, character=4)))
    assert "'reference' feeds drift checks" in sources.contents.value


async def test_completion_of_keys_and_enum_values(client: LanguageClient, tmp_path: Path) -> None:
    text = MINIMAL + "serving:\n  repl\n  rollout:\n    strategy: \n"
    _, uri = _spec(tmp_path, text)
    await _open(client, uri, text)
    doc = lsp.TextDocumentIdentifier(uri=uri)
    keys = await client.text_document_completion_async(
        lsp.CompletionParams(doc, lsp.Position(line=12, character=6))
    )
    labels = {i.label for i in keys.items}
    assert {"replicas", "slo", "autoscaling"} <= labels and "rollout" not in labels  # present already
    replicas = next(i for i in keys.items if i.label == "replicas")
    assert replicas.text_edit.new_text == "replicas: " and replicas.text_edit.range.start.character == 2
    values = await client.text_document_completion_async(
        lsp.CompletionParams(doc, lsp.Position(line=14, character=14))
    )
    assert [i.label for i in values.items] == ["canary", "shadow", "a-b", "blue-green", "rolling"]
    steps = RULES.replace("after: [prep, evaluat]", "after: [")
    _, steps_uri = _spec(tmp_path, steps, "steps.yaml")
    await _open(client, steps_uri, steps)
    line = steps.splitlines().index("    after: [")
    refs = await client.text_document_completion_async(
        lsp.CompletionParams(lsp.TextDocumentIdentifier(uri=steps_uri), lsp.Position(line=line, character=12))
    )
    assert {"prep", "train", "evaluate"} <= {i.label for i in refs.items}


async def test_code_actions_fix_and_ignore(client: LanguageClient, tmp_path: Path) -> None:
    path, uri = _spec(tmp_path, TYPO)
    (typo,) = await _open(client, uri, TYPO)
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            lsp.TextDocumentIdentifier(uri=uri), typo.range, lsp.CodeActionContext(diagnostics=[typo])
        )
    )
    (replace,) = actions
    assert replace.title == "Replace 'replcas' with 'replicas'" and replace.is_preferred
    (edit,) = replace.edit.changes[uri]
    assert edit.new_text == "replicas" and edit.range == typo.range

    path, uri = _spec(tmp_path, RULES, "rules.yaml")
    found = await _open(client, uri, RULES)
    image = next(d for d in found if d.code == "MS211")
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            lsp.TextDocumentIdentifier(uri=uri), image.range, lsp.CodeActionContext(diagnostics=[image])
        )
    )
    titles = [a.title for a in actions]
    assert titles == ["Ignore MS211 on this line", "Ignore MS211 in this file"]
    (edit,) = actions[0].edit.changes[uri]
    lines = RULES.splitlines()
    row = edit.range.start.line
    lines[row] = (
        lines[row][: edit.range.start.character] + edit.new_text + lines[row][edit.range.end.character :]
    )
    path.write_text("\n".join(lines) + "\n")
    assert lines[row].endswith("# mlspec: ignore[MS211]")
    codes = {c[0] for c in _cli_diagnostics(path)}
    assert "MS211" not in codes and "MS201" in codes  # the comment silences that code on that line only


async def test_definition_of_step_and_node_pool_references(client: LanguageClient, tmp_path: Path) -> None:
    _, uri = _spec(tmp_path, RULES)
    await _open(client, uri, RULES)
    lines = RULES.splitlines()
    doc = lsp.TextDocumentIdentifier(uri=uri)
    after = next(i for i, line in enumerate(lines) if "after: [prep" in line)
    where = await client.text_document_definition_async(
        lsp.DefinitionParams(doc, lsp.Position(line=after, character=lines[after].index("prep") + 1))
    )
    assert where.uri == uri and (where.range.start.line, where.range.start.character) == (
        18,
        10,
    )  # - name: prep
    gpu = next(i for i, line in enumerate(lines) if "nvidia-a10g}}" in line)
    where = await client.text_document_definition_async(
        lsp.DefinitionParams(doc, lsp.Position(line=gpu, character=lines[gpu].index("nvidia") + 2))
    )
    pool = next(i for i, line in enumerate(lines) if line.startswith("    gpu:"))
    assert (where.range.start.line, where.range.start.character) == (pool, 4)
