"""MS301 from lint: what a listed target cannot express, found before compile, at the spec line that causes it.

Lint lowers the spec (base and each environment) and asks every backend in `targets` the same question
compile asks (`BaseBackend.check`), so a lint-clean spec compiles for every target.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlspec.diagnostics import Diagnostic, MlspecError
from mlspec.lint.engine import LintContext, rule


@rule("MS301", "a listed target cannot express a feature the spec uses")
def targets_can_express(ctx: LintContext) -> Iterator[Diagnostic]:
    from mlspec.backends import load_backend, unsupported_diagnostic
    from mlspec.ir import placement
    from mlspec.ir.lower import lower

    if placement.problems(ctx.spec):
        return  # MS202/MS203 say why; there is no placement to lower
    try:
        ir = lower(ctx.spec, environment=ctx.environment)
    except MlspecError:
        return  # the rule that owns the problem reports it
    for target in dict.fromkeys(ctx.spec.targets):
        try:
            backend = load_backend(target)
        except MlspecError:
            continue  # MS219 (unknown) or, at compile time, MS302 (not installed)
        check = getattr(backend, "check", None)
        if check is None:
            continue
        for usage, why in check(ir, {}):
            yield unsupported_diagnostic(
                target,
                usage.feature,
                why,
                usage.where,
                ctx.source_map.locate(usage.spec_path, at_key=True),
                spec_path=usage.spec_path,
            )
