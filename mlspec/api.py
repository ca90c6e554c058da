"""The Python API: load, lint, lower, compile. The CLI is a thin layer over these."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlspec.diagnostics import Diagnostic, MlspecError, has_errors
from mlspec.loader import LoadedDocument, load_file, load_text
from mlspec.spec.models import Spec
from mlspec.spec.validate import validate_data

if TYPE_CHECKING:  # the IR and the backend seam load only when lowering or compiling
    from mlspec.backends import Artifact
    from mlspec.ir.model import IR

_PROJECT_MARKERS = (".git", "pyproject.toml", "mlspec.toml")


@dataclass
class LoadedSpec:
    document: LoadedDocument
    spec: Spec
    project_path: str  # the spec's path relative to its project root (stable across working directories)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def project_relative(path: str | os.PathLike[str]) -> str:
    resolved = Path(path).resolve()
    for parent in resolved.parents:
        if any((parent / marker).exists() for marker in _PROJECT_MARKERS):
            return resolved.relative_to(parent).as_posix()
    return resolved.name


def load(path: str | os.PathLike[str], *, env: dict[str, str] | None = None) -> LoadedSpec:
    """Load and validate a spec file. Raises MlspecError with located diagnostics."""
    document = load_file(path, env=env)
    spec = validate_data(document.data, document.source_map)
    return LoadedSpec(document, spec, project_relative(path))


def loads(text: str, path: str = "<string>", *, env: dict[str, str] | None = None) -> LoadedSpec:
    document = load_text(text, path, env=env)
    spec = validate_data(document.data, document.source_map)
    return LoadedSpec(document, spec, path)


def lint(
    loaded: LoadedSpec, *, ignore: Iterable[str] = (), environments: Iterable[str] | None = None
) -> list[Diagnostic]:
    """The lint rules' diagnostics on the base document and each environment (all, or `environments`),
    less those silenced by `# mlspec: ignore[...]` comments, the project's `ignore` list and `ignore`."""
    from mlspec.lint import lint as run_rules
    from mlspec.lint.ignores import config_ignores, drop_ignored

    doc = loaded.document
    found = run_rules(loaded.spec, doc.data, doc.source_map, environments=environments)
    configured = config_ignores(doc.path) if not doc.path.startswith("<") else frozenset()
    return drop_ignored(found, doc.text, {*configured, *ignore})


def lower(loaded: LoadedSpec | Spec, env: str | None = None) -> IR:
    """The fully resolved IR for a spec and an optional environment overlay."""
    from mlspec.ir.lower import apply_environment
    from mlspec.ir.lower import lower as _lower

    if isinstance(loaded, Spec):
        data = loaded.model_dump(mode="json", by_alias=True, exclude_none=True)
        merged = apply_environment(data, env)
        spec = loaded if env is None else Spec.model_validate(merged)
        return _lower(spec, environment=env)
    doc = loaded.document
    spec = loaded.spec
    if env is not None:
        merged = apply_environment(doc.data, env, doc.path)
        spec = validate_data(merged, doc.source_map)
    return _lower(spec, spec_path=loaded.project_path, spec_sha256=doc.content_sha256, environment=env)


@dataclass
class CompileResult:
    ir: IR
    artifacts: dict[str, list[Artifact]]
    diagnostics: list[Diagnostic]


def compile(
    loaded: LoadedSpec,
    targets: list[str] | None = None,
    *,
    env: str | None = None,
    allow_unsupported: bool = False,
    options: dict[str, str] | None = None,
) -> CompileResult:
    """Lint, lower and run each backend. Raises MlspecError when anything reports an error."""
    from mlspec.backends import EmitContext, load_backend
    from mlspec.lint.engine import overlay_source_map

    # The base document and the environment compiled; other environments do not block this one.
    diagnostics = lint(loaded, environments=[env] if env else [])
    if allow_unsupported:
        diagnostics = [d for d in diagnostics if d.code != "MS301"]  # the backends report them as warnings
    if has_errors(diagnostics):
        raise MlspecError(diagnostics)
    ir = lower(loaded, env)
    source_map = loaded.document.source_map
    if env:
        source_map = overlay_source_map(source_map, env)
    ctx = EmitContext(
        allow_unsupported=allow_unsupported,
        spec_path=loaded.document.path,
        options=options or {},
        locate=lambda key_path: source_map.locate(key_path, at_key=True),
    )
    artifacts: dict[str, list[Artifact]] = {}
    for target in targets or list(ir.targets):
        backend = load_backend(target)
        artifacts[target] = sorted(backend.emit(ir, ctx), key=lambda a: a.path)
    diagnostics += ctx.diagnostics
    if has_errors(diagnostics):
        raise MlspecError(diagnostics)
    return CompileResult(ir, artifacts, diagnostics)


def load_ir(path: str | os.PathLike[str], env: str | None = None) -> IR:
    """The IR from a spec file (linted and lowered) or from an IR JSON file (as mounted into pods).

    Commands that run inside generated deployments (`mlspec serve`, `mlspec monitor`) are given the IR JSON
    that the Kubernetes backend ships in a ConfigMap; on a laptop they are given the spec.
    """
    import json

    from pydantic import ValidationError

    from mlspec.diagnostics import Location
    from mlspec.ir.model import read_ir

    text_path = Path(path)
    if text_path.suffix == ".json":
        try:
            ir = read_ir(json.loads(text_path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise MlspecError([Diagnostic("MS001", "file not found", Location(str(path)))]) from None
        except (ValueError, ValidationError) as exc:
            first = str(exc).splitlines()[0]
            raise MlspecError(
                [Diagnostic("MS001", f"not a valid mlspec IR file: {first}", Location(str(path)))]
            ) from None
        if env is not None and env != ir.system.environment:
            raise MlspecError(
                [
                    Diagnostic(
                        "MS110",
                        f"IR was compiled for environment {ir.system.environment!r}, not {env!r}",
                        Location(str(path)),
                    )
                ]
            )
        return ir
    loaded = load(path)
    diagnostics = lint(loaded)
    if has_errors(diagnostics):
        raise MlspecError(diagnostics)
    return lower(loaded, env)
