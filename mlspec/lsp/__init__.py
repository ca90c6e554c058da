"""The mlspec language server (`mlspec lsp`): the lint engine's diagnostics as you type, hover docs and
completion from the spec's JSON Schema, quick fixes and go-to-definition. Needs pygls (`mlspec[lsp]`)."""
