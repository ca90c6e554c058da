"""A user step under its data contract: the runtime gives it its inputs and checks what it writes.

1. Each input (the data set version the IR names) is staged as a local Parquet file.
2. The user's argv runs with this interpreter and environment (a leading `python` is sys.executable), with
   {inputs.X}, {outputs.X} and {run_dir} expanded; or, without argv, the runtime applies the step's
   transform to its one input.
3. Each declared output must exist as Parquet and hold its declared columns with their types, nulls, ranges
   and allowed values (uniqueness is a check of the prepared data); it is then published to
   RUN_DIR/steps/<id>/outputs/<name>.parquet. Other {outputs.X} files are published as they are.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlspec.ir.model import Step
from mlspec.runtime import StepError
from mlspec.runtime.context import StepContext

PLACEHOLDER = re.compile(r"\{(run_dir|inputs\.[^{}]+|outputs\.[^{}]+)\}")


def run(ctx: StepContext, step: Step) -> dict[str, Any]:
    import pandas as pd

    from mlspec.runtime import datasets

    action = step.user
    if action is None:
        raise StepError(f"step '{step.id}' is not a user step")
    with tempfile.TemporaryDirectory(prefix=f"mlspec-{step.id}-") as tmp:
        inputs_dir, outputs_dir = Path(tmp, "inputs"), _outputs_dir(ctx, step, Path(tmp))
        inputs_dir.mkdir()
        inputs, read = {}, {}
        for ref in action.inputs:
            inputs[ref.name] = inputs_dir / f"{ref.name}.parquet"
            frame = datasets.read(ctx, ref)
            frame.to_parquet(inputs[ref.name], index=False)
            read[ref.name] = {"version": ref.step or "source", "rows": len(frame)}
        outputs = {o.name: outputs_dir / f"{o.name}.parquet" for o in action.outputs}
        files = {name: outputs_dir / name for name in action.files}
        if action.argv:
            _run_command(step, action.argv, inputs, {**files, **outputs}, ctx.run.root)
        else:
            (name,) = inputs  # lint (MS226): a transform-only step has one input and writes it back
            _apply_transform(action.transform or "", pd.read_parquet(inputs[name])).to_parquet(
                outputs[name], index=False
            )
        written: dict[str, Any] = {}
        for out in action.outputs:
            frame = _checked_output(step, out, outputs[out.name])
            written[out.name] = {
                "rows": len(frame),
                "columns": list(frame.columns),
                "uri": ctx.run.uri(*datasets.output_parts(step.id, out.name)),
            }
        ctx.run.publish(outputs_dir, "steps", step.id, "outputs")  # a remote run folder: upload it all
    return {"inputs": read, "outputs": written}


def _outputs_dir(ctx: StepContext, step: Step, tmp: Path) -> Path:
    """Where the command writes: the run folder's own outputs folder when it is local, else a staging dir."""
    path = Path(ctx.run.root, "steps", step.id, "outputs") if ctx.run.fs is None else tmp / "outputs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run_command(step: Step, argv: list[str], inputs: dict, outputs: dict, run_dir: str) -> None:
    def value(match: re.Match) -> str:
        key = match.group(1)
        if key == "run_dir":
            return run_dir
        kind, _, name = key.partition(".")
        table = inputs if kind == "inputs" else outputs
        if name not in table:
            raise StepError(f"step '{step.id}': {{{key}}} names no declared {kind[:-1]}")
        return str(table[name])

    expanded = [PLACEHOLDER.sub(value, arg) for arg in argv]
    if expanded[0] in ("python", "python3"):
        expanded[0] = sys.executable  # the interpreter (and environment) every builtin step runs with
    print(f"running {' '.join(expanded)}", file=sys.stderr, flush=True)
    try:
        code = subprocess.run(expanded, check=False, env=os.environ.copy()).returncode
    except OSError as exc:
        raise StepError(f"step '{step.id}': cannot run {expanded[0]!r}: {exc}") from exc
    if code != 0:
        raise StepError(f"step '{step.id}': its command exited with {code}")


def load_function(ref: str):
    """module:function, imported from the working directory (the project root) like training entrypoints."""
    from mlspec.runtime.training import load_entrypoint

    return load_entrypoint(ref, "transform")


def _apply_transform(ref: str, frame):
    import pandas as pd

    out = load_function(ref)(frame)
    if not isinstance(out, pd.DataFrame):
        raise StepError(f"transform {ref} returned {type(out).__name__}, not a pandas DataFrame")
    return out


def _checked_output(step: Step, out, path: Path):
    import pandas as pd

    from mlspec.runtime import checks

    if not path.exists():
        raise StepError(f"step '{step.id}' did not write its output '{out.name}' ({{outputs.{out.name}}})")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:
        raise StepError(f"step '{step.id}': output '{out.name}' is not Parquet: {exc}") from exc
    failed = [r for r in checks.schema_checks(out.columns, frame, unique=False) if not r["passed"]]
    if failed:
        raise StepError(
            f"step '{step.id}': output '{out.name}' does not match its schema: "
            + "; ".join(r["message"] for r in failed),
            {"output": out.name, "checks": failed},
        )
    return frame
