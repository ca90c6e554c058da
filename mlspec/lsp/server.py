"""The pygls wiring: LSP requests in, the analysis, schema and fix modules' answers out.

Positions inside mlspec are code points; the document's position codec converts them to the client's
units (UTF-16 unless negotiated otherwise) at this edge.
"""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.workspace import ServerTextPosition, TextDocument

from mlspec import __version__
from mlspec.diagnostics import Diagnostic, MlspecError, Severity, rule_url
from mlspec.loader import LoadedDocument, load_text
from mlspec.lsp import schema
from mlspec.lsp.actions import Edit, fixes
from mlspec.lsp.analysis import Analysis, analyse, is_spec, node_at, value_at
from mlspec.lsp.navigation import definition
from mlspec.lsp.yamlpath import cursor_at

log = logging.getLogger(__name__)

_SEVERITY = {
    Severity.ERROR: lsp.DiagnosticSeverity.Error,
    Severity.WARNING: lsp.DiagnosticSeverity.Warning,
    Severity.INFO: lsp.DiagnosticSeverity.Information,
}


class MlspecServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("mlspec", __version__, text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental)
        self.analyses: dict[str, Analysis] = {}
        self.last_parsed: dict[str, LoadedDocument] = {}  # the newest buffer that was valid YAML

    def analysis(self, uri: str) -> Analysis | None:
        doc = self.workspace.get_text_document(uri)
        known = self.analyses.get(uri)
        if known is not None and known.text == doc.source:
            return known
        return self.refresh(uri)

    def refresh(self, uri: str) -> Analysis | None:
        doc = self.workspace.get_text_document(uri)
        path = doc.path or uri
        if not is_spec(path, doc.source):
            return None
        result = analyse(path, doc.source)
        self.analyses[uri] = result
        if result.document is not None:
            self.last_parsed[uri] = result.document
        self.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(
                uri=uri, version=doc.version, diagnostics=[_to_lsp(d, doc, path) for d in result.diagnostics]
            )
        )
        return result


server = MlspecServer()


def _position(doc: TextDocument, line: int, character: int) -> lsp.Position:
    line = max(0, min(line, max(len(doc.lines) - 1, 0)))
    return doc.position_to_client_units(ServerTextPosition(line, max(character, 0)))


def _range(doc: TextDocument, line: int, start: int, end_line: int, end: int) -> lsp.Range:
    return lsp.Range(start=_position(doc, line, start), end=_position(doc, end_line, end))


def _to_lsp(d: Diagnostic, doc: TextDocument, path: str) -> lsp.Diagnostic:
    loc = d.location
    message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
    if loc.line and loc.path == path:
        end_line = loc.end_line or loc.line
        end = (loc.end_col or loc.col + 1) - 1
        where = _range(doc, loc.line - 1, loc.col - 1, end_line - 1, end)
    else:  # the whole file, or another file (a configuration error): the first line
        where = _range(doc, 0, 0, 0, len(doc.lines[0].rstrip("\r\n")) if doc.lines else 0)
        if loc.path != path:
            message = f"{loc}: {message}"
    return lsp.Diagnostic(
        range=where,
        message=message,
        severity=_SEVERITY[d.severity],
        code=d.code,
        code_description=lsp.CodeDescription(href=rule_url(d.code)),
        source="mlspec",
    )


def _server_position(doc: TextDocument, position: lsp.Position) -> tuple[int, int]:
    pos = doc.position_from_client_units(position)
    return pos.line, pos.character


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: MlspecServer, params: lsp.DidOpenTextDocumentParams) -> None:
    ls.refresh(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: MlspecServer, params: lsp.DidChangeTextDocumentParams) -> None:
    ls.refresh(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: MlspecServer, params: lsp.DidSaveTextDocumentParams) -> None:
    ls.refresh(params.text_document.uri)  # the project's ignore list may have changed too


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: MlspecServer, params: lsp.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.analyses.pop(uri, None)
    ls.last_parsed.pop(uri, None)
    ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
def hover(ls: MlspecServer, params: lsp.HoverParams) -> lsp.Hover | None:
    uri = params.text_document.uri
    doc = ls.workspace.get_text_document(uri)
    line, character = _server_position(doc, params.position)
    analysis = ls.analysis(uri)
    if analysis is None:
        return None
    document = analysis.document
    found = node_at(document, line, character) if document is not None else None
    if found is not None:
        path, is_key = found
        if not is_key and path and isinstance(path[-1], int):
            path = path[:-1]  # a list item: the list's docs
    else:
        text = doc.lines[line] if line < len(doc.lines) else ""
        end = character
        while end < len(text) and (text[end].isalnum() or text[end] in "_-."):
            end += 1
        cursor = cursor_at(doc.source, line, end)
        path = (*cursor.path, cursor.word) if cursor.at_key else cursor.path
    data = (document or ls.last_parsed.get(uri) or _NO_DOCUMENT).data
    markdown = schema.describe(path, schema.at(path, data))
    if markdown is None:
        return None
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=markdown))


class _NoDocument:
    data: dict[str, Any] = {}


_NO_DOCUMENT = _NoDocument()


@server.feature(lsp.TEXT_DOCUMENT_COMPLETION)
def completion(ls: MlspecServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    uri = params.text_document.uri
    doc = ls.workspace.get_text_document(uri)
    line, character = _server_position(doc, params.position)
    cursor = cursor_at(doc.source, line, character)
    data = _data_around(doc.source, line, ls.last_parsed.get(uri))
    replace = _range(doc, line, character - len(cursor.word), line, character)
    items: list[lsp.CompletionItem] = []
    if cursor.at_key:
        for name, prop in schema.keys(schema.at(cursor.path, data)).items():
            if name in cursor.siblings:
                continue
            leaf = (schema.leaves(prop) or [prop])[0]
            items.append(
                lsp.CompletionItem(
                    label=name,
                    kind=lsp.CompletionItemKind.Property,
                    detail=schema.type_name(leaf),
                    documentation=_markdown(prop.get("description") or leaf.get("description")),
                    text_edit=lsp.TextEdit(range=replace, new_text=f"{name}: "),
                )
            )
    else:
        candidates = [_yaml_scalar(v) for v in schema.values(schema.at(cursor.path, data))]
        candidates += _references(cursor.path, data)
        for value in dict.fromkeys(candidates):
            items.append(
                lsp.CompletionItem(
                    label=value,
                    kind=lsp.CompletionItemKind.EnumMember,
                    text_edit=lsp.TextEdit(range=replace, new_text=value),
                )
            )
    return lsp.CompletionList(is_incomplete=False, items=items)


def _data_around(text: str, line: int, parsed: LoadedDocument | None) -> dict[str, Any]:
    """The document's data while the cursor's line is half typed: the buffer without that line, else the
    newest buffer that parsed."""
    lines = text.splitlines()
    if 0 <= line < len(lines):
        try:
            return load_text("\n".join(lines[:line] + lines[line + 1 :]) + "\n", "<buffer>", env={}).data
        except MlspecError:
            pass
    return parsed.data if parsed is not None else {}


def _markdown(text: str | None) -> lsp.MarkupContent | None:
    return lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text) if text else None


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _references(path: tuple, data: dict[str, Any]) -> list[str]:
    """Values that name something elsewhere in the spec: steps, GPU types offered by node pools, targets."""
    if len(path) >= 3 and path[0] == "steps" and path[2] in ("before", "after"):
        from mlspec.ir.catalog import BUILTIN_STEPS

        steps = data.get("steps")
        names = (
            [s["name"] for s in steps or [] if isinstance(s, dict) and isinstance(s.get("name"), str)]
            if isinstance(steps, list)
            else []
        )
        own = value_at(data, ("steps", path[1], "name"))
        builtin = [b.id for b in BUILTIN_STEPS if b.pipeline == "training"]
        return [n for n in [*names, *builtin] if n != own]
    if path[-2:] == ("gpu", "type"):
        pools = value_at(data, ("infrastructure", "node_pools"))
        return [
            p["accelerator"] for p in (pools or {}).values() if isinstance(p, dict) and p.get("accelerator")
        ]
    if path == ("targets",):
        from mlspec.backends import available_backends

        return sorted(available_backends())
    return []


@server.feature(
    lsp.TEXT_DOCUMENT_CODE_ACTION,
    lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]),
)
def code_action(ls: MlspecServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    from mlspec.lint.engine import RULES
    from mlspec.lint.rules import RULE_DOCS  # noqa: F401  (registers the rules)

    uri = params.text_document.uri
    doc = ls.workspace.get_text_document(uri)
    analysis = ls.analysis(uri)
    if analysis is None:
        return []
    first, _ = _server_position(doc, params.range.start)
    last, _ = _server_position(doc, params.range.end)
    lines = analysis.text.splitlines()
    actions = []
    for d in analysis.diagnostics:
        loc = d.location
        if loc.path != analysis.path or not loc.line or not first <= loc.line - 1 <= last:
            continue
        for fix in fixes(d, lines, set(RULES)):
            actions.append(
                lsp.CodeAction(
                    title=fix.title,
                    kind=lsp.CodeActionKind.QuickFix,
                    diagnostics=[_to_lsp(d, doc, analysis.path)],
                    is_preferred=fix.preferred or None,
                    edit=lsp.WorkspaceEdit(changes={uri: [_text_edit(doc, fix.edit)]}),
                )
            )
    return actions


def _text_edit(doc: TextDocument, edit: Edit) -> lsp.TextEdit:
    return lsp.TextEdit(range=_range(doc, edit.line, edit.start, edit.end_line, edit.end), new_text=edit.text)


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
def goto_definition(ls: MlspecServer, params: lsp.DefinitionParams) -> lsp.Location | None:
    uri = params.text_document.uri
    doc = ls.workspace.get_text_document(uri)
    analysis = ls.analysis(uri)
    if analysis is None or analysis.document is None:
        return None
    line, character = _server_position(doc, params.position)
    target = definition(analysis.document, line, character)
    if target is None:
        return None
    start = _position(doc, target[0] - 1, target[1] - 1)
    return lsp.Location(uri=uri, range=lsp.Range(start=start, end=start))


def serve() -> None:
    server.start_io()
