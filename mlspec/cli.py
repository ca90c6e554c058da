"""The `mlspec` command line. Exit codes: 0 clean, 1 diagnostics at error level, 2 usage error."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import click

from mlspec.diagnostics import (
    Diagnostic,
    MlspecError,
    has_errors,
    render_github,
    render_json,
    render_sarif,
    render_text,
)
from mlspec.init import EXAMPLES
from mlspec.term import use_color

# Commands whose implementation pulls in heavy libraries are imported only when invoked.
LAZY_COMMANDS = {
    "run": ("mlspec.runtime.cli", "run", "Run the training pipeline locally, step by step."),
    "monitor": ("mlspec.runtime.cli", "monitor", "Compute drift and performance; fire retraining triggers."),
    "report": ("mlspec.runtime.cli", "report", "Write the monitoring report (HTML, Markdown) of the window."),
    "promote": ("mlspec.runtime.cli", "promote", "Move the champion alias to a model version."),
    "rollback": ("mlspec.runtime.cli", "rollback", "Return the champion alias to the previous champion."),
    "analyze": ("mlspec.runtime.cli", "analyze", "Judge the challenger by the rollout's analysis (--apply)."),
    "history": ("mlspec.runtime.cli", "history", "Every recorded transition of the champion and challenger."),
    "serve": ("mlspec.serving.cli", "serve", "Serve a model over the Open Inference Protocol."),
    "loadtest": ("mlspec.serving.cli", "loadtest", "Drive load at a server and check the spec's SLO."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS:
            module_name, attr, help_text = LAZY_COMMANDS[name]
            try:
                return getattr(importlib.import_module(module_name), attr)
            except ImportError as exc:
                reason = exc.name or str(exc)

                @click.command(name=name, help=help_text, context_settings={"ignore_unknown_options": True})
                @click.argument("args", nargs=-1, type=click.UNPROCESSED)
                def missing(args: tuple[str, ...]) -> None:
                    raise click.UsageError(
                        f"'mlspec {name}' needs the runtime dependencies ({reason}); "
                        "install them with: pip install 'mlspec[serving]'"
                    )

                return missing
        return super().get_command(ctx, name)


def _emit(diagnostics: list[Diagnostic], fmt: str, sources: dict[str, str], *, err: bool = False) -> None:
    """Diagnostics go to stdout (`mlspec lint x | grep MS104` works), or, in text, to stderr for commands
    whose stdout is their product (`mlspec ir`, `mlspec graph`)."""
    from mlspec import __version__

    if fmt == "json":
        click.echo(render_json(diagnostics, sources), nl=False)
    elif fmt == "sarif":
        click.echo(render_sarif(diagnostics, __version__, sources), nl=False)
    elif fmt == "github":
        click.echo(render_github(diagnostics, sources), nl=False)
    elif diagnostics:
        color = use_color(sys.stderr if err else sys.stdout)
        click.echo(render_text(diagnostics, sources, color=color), nl=False, err=err, color=color)


def _sources(*paths: str) -> dict[str, str]:
    from mlspec.loader import display_path, source_text

    out = {}
    for p in paths:
        text = source_text(p)  # bounded like the loader: never reads a huge file or a device
        if text is not None:
            out[display_path(p)] = text
    return out


def _fail(exc: MlspecError, fmt: str, *paths: str) -> None:
    _emit(exc.diagnostics, fmt, _sources(*paths), err=True)
    sys.exit(1 if has_errors(exc.diagnostics) else 0)


FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif", "github"]),
    default="text",
    show_default=True,
    help="Diagnostics format: text (colour on a terminal), json, sarif, github (Actions annotations).",
)
ENV = click.option("--env", "env", default=None, metavar="NAME", help="Environment overlay to apply.")
SPEC_ARG = click.argument("spec", type=click.Path(dir_okay=False, path_type=str))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mlspec", prog_name="mlspec")
def cli() -> None:
    """mlspec: one mlops.yaml, compiled to Kubeflow, Airflow, Terraform and Kubernetes, and run locally.

    \b
    Example:
      mlspec lint specs/churn.yaml
      mlspec compile specs/churn.yaml
      mlspec run specs/churn.yaml
    """


@cli.command()
@click.argument("name", required=False)
@click.option(
    "--example",
    "example",
    default=None,
    metavar="EXAMPLE",
    help="Write a runnable example (spec plus small generated data): " + ", ".join(sorted(EXAMPLES)),
)
@click.option("--out", "out", default="mlops.yaml", show_default=True, type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init(name: str | None, example: str | None, out: str, force: bool) -> None:
    """Write a starter mlops.yaml for system NAME, or a runnable example.

    \b
    Example:
      mlspec init churn --out mlops.yaml
      mlspec init --example churn && mlspec run mlops.yaml
    """
    import re

    from mlspec.diagnostics import did_you_mean
    from mlspec.init import starter_spec, write_example
    from mlspec.spec.models import NAME_PATTERN

    if example is None and name is None:
        raise click.UsageError("give a system NAME, or --example with one of: " + ", ".join(sorted(EXAMPLES)))
    if example is not None and example not in EXAMPLES:
        hint = did_you_mean(example, EXAMPLES) or "examples: " + ", ".join(sorted(EXAMPLES))
        raise click.UsageError(f"no example named {example!r}; {hint}")
    name = name or example
    if not re.fullmatch(NAME_PATTERN, name or ""):
        raise click.UsageError(
            f"NAME {name!r} must be lowercase letters, digits and '-', starting with a letter"
        )
    path = Path(out)
    if example is not None:
        try:
            written = write_example(example, name or example, path, force=force)
        except FileExistsError as exc:
            raise click.UsageError(f"{exc} exists; pass --force to overwrite") from None
        for file in written:
            click.echo(f"wrote {file.as_posix()}")
        click.echo(f"next: mlspec lint {out} && mlspec run {out}")
        return
    if path.exists() and not force:
        raise click.UsageError(f"{out} exists; pass --force to overwrite")
    path.write_text(starter_spec(name or "", path), encoding="utf-8")
    click.echo(f"wrote {out}; next: mlspec lint {out}")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@FORMAT
@click.option(
    "--env",
    "envs",
    multiple=True,
    metavar="NAME",
    help="Check the base document and only this environment (repeatable); default: every environment.",
)
@click.option(
    "--ignore", "ignore", multiple=True, metavar="CODE", help="Silence a code (repeatable), as in the config."
)
def lint(paths: tuple[str, ...], fmt: str, envs: tuple[str, ...], ignore: tuple[str, ...]) -> None:
    """Validate and lint specs; print located diagnostics.

    Lint checks the base document and the merged document of every environment against every target
    in `targets`: a spec that lints clean compiles. PATHS are spec files or folders; a folder (default: the current one) means every mlops.yaml and
    specs/*.yaml under it. Silence a finding with `# mlspec: ignore[MS211]` on its line,
    `# mlspec: ignore-file[MS211]` in the file, or `ignore = ["MS211"]` under [tool.mlspec] in
    pyproject.toml. `mlspec explain CODE` tells what a code means.

    \b
    Example:
      mlspec lint .
      mlspec lint specs/churn.yaml --format sarif > lint.sarif
    """
    from mlspec import api
    from mlspec.discover import expand

    specs = expand(list(paths) or ["."])
    if not specs:
        raise click.UsageError(f"no mlops.yaml or specs/*.yaml under {', '.join(paths) or '.'}")
    diagnostics: list[Diagnostic] = []
    for spec in specs:
        try:
            loaded = api.load(spec)
            diagnostics += api.lint(loaded, ignore=ignore, environments=list(envs) or None)
        except MlspecError as exc:
            diagnostics += exc.diagnostics
    _emit(diagnostics, fmt, _sources(*specs))
    if fmt == "text" and not diagnostics:
        click.echo(f"{len(specs)} spec(s) clean")
    sys.exit(1 if has_errors(diagnostics) else 0)


@cli.command()
@click.argument("code", required=False)
def explain(code: str | None) -> None:
    """Explain a diagnostic code: what it means, a bad and a good example. Without CODE, list them all.

    \b
    Example:
      mlspec explain MS211
    """
    from mlspec.explain import all_codes, explain_code

    if code is None:
        for known, summary in all_codes().items():
            click.echo(f"{known}  {summary}")
        return
    text = explain_code(code.upper())
    if text is None:
        from mlspec.diagnostics import did_you_mean

        hint = did_you_mean(code.upper(), all_codes()) or "`mlspec explain` lists every code"
        raise click.UsageError(f"no diagnostic code {code!r}; {hint}")
    click.echo(text, nl=False)


@cli.command()
@click.option(
    "--stdio", is_flag=True, default=True, hidden=True, help="Talk over stdin/stdout (the default)."
)
def lsp(stdio: bool) -> None:
    """Run the language server over stdio: diagnostics as you type, hover, completion, quick fixes and
    go-to-definition for mlops.yaml in any LSP editor (docs/editors.md).

    \b
    Example:
      mlspec lsp
    """
    try:
        from mlspec.lsp.server import serve
    except ImportError as exc:
        raise click.UsageError(
            f"'mlspec lsp' needs pygls ({exc.name}); install it with: pip install 'mlspec[lsp]'"
        ) from None
    serve()


@cli.command()
@click.option("--out-dir", default="schemas", show_default=True, type=click.Path(file_okay=False))
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when the committed schemas are stale.")
def schema(out_dir: str, check: bool) -> None:
    """Write the JSON Schemas of the spec and the IR.

    \b
    Example:
      mlspec schema --out-dir schemas
    """
    from mlspec.schema import stale_schemas, write_schemas

    if check:
        stale = stale_schemas(Path(out_dir))
        for stale_path in stale:
            click.echo(f"stale: {stale_path}", err=True)
        sys.exit(1 if stale else 0)
    for written in write_schemas(Path(out_dir)):
        click.echo(f"wrote {written.as_posix()}")


@cli.command()
@SPEC_ARG
@ENV
@FORMAT
def ir(spec: str, env: str | None, fmt: str) -> None:
    """Print the fully resolved IR of a spec as JSON.

    \b
    Example:
      mlspec ir specs/churn.yaml --env staging
    """
    from mlspec import api

    try:
        loaded = api.load(spec)
        diagnostics = api.lint(loaded)
        if has_errors(diagnostics):
            raise MlspecError(diagnostics)
        click.echo(api.lower(loaded, env).to_json(), nl=False)
    except MlspecError as exc:
        _fail(exc, fmt, spec)


@cli.command(name="compile")
@click.argument("specs", nargs=-1, type=click.Path(path_type=str))
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="T",
    help="Backend to run (repeatable); default: the spec's targets.",
)
@ENV
@click.option("--out", "out", default="generated", show_default=True, type=click.Path(file_okay=False))
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 listing stale, missing, extra and hand-edited files."
)
@click.option(
    "--allow-unsupported", is_flag=True, help="Report unsupported IR features as warnings, not errors."
)
@FORMAT
def compile_(
    specs: tuple[str, ...],
    targets: tuple[str, ...],
    env: str | None,
    out: str,
    check: bool,
    allow_unsupported: bool,
    fmt: str,
) -> None:
    """Compile specs to their targets under OUT/<system>/<target>/.

    With no SPECS, compiles every mlops.yaml and specs/*.yaml under the current folder.

    \b
    Example:
      mlspec compile specs/churn.yaml --target kubeflow --env staging
      mlspec compile --check
    """
    from mlspec import api, writer
    from mlspec.discover import expand

    paths = expand(list(specs) or ["."])
    if not paths:
        raise click.UsageError("no SPECS given and no mlops.yaml or specs/*.yaml found")
    all_diagnostics: list[Diagnostic] = []
    problems = 0
    for spec in paths:
        try:
            loaded = api.load(spec)
            result = api.compile(loaded, list(targets) or None, env=env, allow_unsupported=allow_unsupported)
        except MlspecError as exc:
            all_diagnostics += exc.diagnostics
            problems += 1
            continue
        all_diagnostics += result.diagnostics
        files = writer.render(result.artifacts, loaded.project_path)
        names = list(result.artifacts)
        try:
            root = writer.output_root(Path(out), result.ir.system.name, env)
            if check:
                report = writer.check(root, files, names, out=Path(out), spec_sha256=loaded.document.sha256)
                for line in report.lines():
                    click.echo(f"{root.as_posix()}: {line}", err=True)
                problems += 0 if report.clean else 1
            else:
                writer.write(root, files, names, loaded.project_path, loaded.document.sha256, out=Path(out))
                click.echo(
                    f"{spec}: wrote {len(files)} file(s) for {', '.join(names)} to {root.as_posix()}/",
                    err=True,
                )
        except MlspecError as exc:  # the output folder refused: outside --out, or holding others' files
            all_diagnostics += exc.diagnostics
            problems += 1
    _emit(all_diagnostics, fmt, _sources(*paths))
    if check and not problems:
        click.echo(f"{len(paths)} spec(s): generated output is current", err=True)
    sys.exit(1 if problems or has_errors(all_diagnostics) else 0)


@cli.command()
@SPEC_ARG
@ENV
@click.option("--context", default=None, help="kube context to check the platform prerequisites in.")
@click.option(
    "--discovery",
    default=None,
    type=click.Path(file_okay=False, exists=True, path_type=str),
    help="A folder of recorded API discovery documents (api/v1.json, apis/<group>/<version>.json) instead of a cluster.",
)
def doctor(spec: str, env: str | None, context: str | None, discovery: str | None) -> None:
    """Check the local toolchain and, given a kube context, every platform prerequisite of the spec.

    \b
    Example:
      mlspec doctor specs/churn.yaml --env staging --context prod-admin
    """
    from mlspec import api
    from mlspec import doctor as dr

    try:
        ir = api.load_ir(spec, env)
    except MlspecError as exc:
        _fail(exc, "text", spec)
        return
    findings = dr.toolchain(ir)
    if context or discovery:
        fetch = dr.recorded_fetch(Path(discovery)) if discovery else dr.kubectl_fetch(context or "")
        findings += dr.cluster(ir, fetch)
    text, ok = dr.report(findings)
    click.echo(text)
    if not (context or discovery):
        click.echo("(no --context: the cluster's prerequisites were not checked)")
    sys.exit(0 if ok else 1)


@cli.command()
@SPEC_ARG
@ENV
def graph(spec: str, env: str | None) -> None:
    """Print the pipelines and triggers as a Mermaid flowchart.

    \b
    Example:
      mlspec graph specs/churn.yaml > docs/churn.mmd
    """
    from mlspec import api
    from mlspec.graph import mermaid

    try:
        click.echo(mermaid(api.lower(api.load(spec), env)), nl=False)
    except MlspecError as exc:
        _fail(exc, "text", spec)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--markdown", is_flag=True, help="The capability matrix as a Markdown table (docs/capabilities.md)."
)
def targets(as_json: bool, markdown: bool) -> None:
    """List installed backends, their versions and capabilities.

    \b
    Example:
      mlspec targets --json
      mlspec targets --markdown > docs/capabilities.md
    """
    import json

    from mlspec.backends import FEATURES, Support, available_backends, load_backend

    rows: dict[str, dict[str, Any]] = {}
    for name in available_backends():
        try:
            backend = load_backend(name)
            states = {f: Support(backend.capabilities.get(f, Support.NOT_YET)) for f in FEATURES}
        except Exception as exc:  # a broken plugin (or a pre-2.0 boolean table) must not hide the others
            rows[name] = {"version": "?", "error": str(exc), "capabilities": {}}
            continue
        rows[name] = {
            "version": backend.version,
            "capabilities": {f: state is Support.FULL for f, state in states.items()},
            "states": {f: state.name.lower() for f, state in states.items()},
            "not_applicable": sorted(f for f, state in states.items() if state is Support.NOT_APPLICABLE),
        }
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    if markdown:
        click.echo(_capability_matrix(rows, FEATURES), nl=False)
        return
    for name, row in rows.items():
        supported = [f for f, ok in row["capabilities"].items() if ok]
        click.echo(f"{name} {row['version']}: {len(supported)}/{len(FEATURES)} features")
        if row.get("error"):
            click.echo(f"  error: {row['error']}")


def _capability_matrix(rows: dict[str, dict[str, Any]], features: tuple[str, ...]) -> str:
    names = [n for n in rows if n != "ir"]
    lines = [
        "# Backend capability matrix",
        "",
        "Generated by `mlspec targets --markdown`. yes: expressed; not yet: the target could express it, this",
        "backend does not yet; impossible: the engine cannot. Both are reported as unsupported (MS301, by lint",
        "and compile; an error unless `--allow-unsupported`). n/a: not this backend's concern (e.g.",
        "infrastructure for Airflow).",
        "",
        "| feature | " + " | ".join(f"{n} {rows[n]['version']}" for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for feature in features:
        cells = []
        for n in names:
            row = rows[n]
            state = row.get("states", {}).get(feature, "not_yet")
            cells.append({"full": "yes", "not_applicable": "n/a"}.get(state, state.replace("_", " ")))
        lines.append(f"| `{feature}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        exc.show()
        sys.exit(2)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except MlspecError as exc:
        _emit(exc.diagnostics, "text", _sources(*{d.location.path for d in exc.diagnostics}), err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # a bug or an environment problem: one clear line, the traceback on request
        if os.environ.get("MLSPEC_DEBUG"):
            raise
        click.echo(f"mlspec: error: {type(exc).__name__}: {exc}", err=True)
        click.echo("  = hint: set MLSPEC_DEBUG=1 to see the traceback", err=True)
        sys.exit(1)
