"""The step entry point every backend and `mlspec run` call (the contract is in docs/runtime.md):

    python -m mlspec.runtime STEP_ID --ir IR --run-dir RUN_DIR [--trial N | --shard N] [--data NAME=URI]...
                             [--hparam KEY=JSON]... [--output KEY=PATH]... [--result-file PATH]

Exit codes: 0 success, 1 the step failed (cause on stderr, result.json has status "failed"), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from mlspec.runtime import StepError, UsageError
from mlspec.runtime import now as runtime_now

PROG = "python -m mlspec.runtime"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse exits 2 itself; keep the message short and ours
        raise UsageError(message)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Run one builtin mlspec pipeline step.")
    p.add_argument("step_id", metavar="STEP_ID")
    p.add_argument("--ir", required=True, help="IR: a path, an fsspec URI or inline JSON")
    p.add_argument("--run-dir", required=True, help="local dir or s3:// URI shared by the run's steps")
    p.add_argument("--trial", type=int, default=None, help="trial index for tune-trial (0-based)")
    p.add_argument("--shard", type=int, default=None, help="shard index for monitor-summarize (0-based)")
    p.add_argument("--data", action="append", default=[], metavar="NAME=URI", help="override a data source")
    p.add_argument(
        "--hparam", action="append", default=[], metavar="KEY=JSON", help="override a hyperparameter"
    )
    p.add_argument(
        "--output", action="append", default=[], metavar="KEY=PATH", help="write result[KEY] to PATH"
    )
    p.add_argument("--result-file", default=None, metavar="PATH", help="write the whole result JSON to PATH")
    return p


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} expects KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def _hparams(values: list[str]) -> dict[str, Any]:
    out = {}
    for key, text in _pairs(values, "--hparam").items():
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError:
            out[key] = text  # a bare word such as adam is a string
    return out


def action_of(ir, step_id: str) -> str:
    from mlspec.runtime.steps import ACTIONS

    for pipeline in ir.pipelines:
        for step in pipeline.steps:
            if step.id == step_id:
                if step.kind == "user" and step.user is None:
                    raise UsageError(
                        f"step '{step_id}' is a user step of an older IR: run its own command, not the runtime"
                    )
                return step.action
    if step_id in ACTIONS:
        return step_id
    known = sorted({s.id for p in ir.pipelines for s in p.steps})
    raise UsageError(f"unknown STEP_ID '{step_id}' (this IR's steps: {', '.join(known)})")


def render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _write_local(path: str, text: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def _is_secondary_rank() -> bool:
    from mlspec import contracts

    return os.environ.get(contracts.DDP_WORKER_ENV) == "1" and os.environ.get("RANK", "0") != "0"


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    try:
        args = parser().parse_args(args_list)
        runtime_now()  # a malformed MLSPEC_NOW is a usage error before any work
        data = _pairs(args.data, "--data")
        hparams = _hparams(args.hparam)
        outputs = _pairs(args.output, "--output")
        from mlspec.runtime.context import RunDir, StepContext, load_ir

        ir = load_ir(args.ir)
        action = action_of(ir, args.step_id)
        if action == "tune-trial" and args.trial is None:
            raise UsageError("tune-trial needs --trial N")
        if action == "monitor-summarize" and args.shard is None:
            raise UsageError("monitor-summarize needs --shard N")
    except UsageError as exc:
        print(f"{PROG}: usage error: {exc}", file=sys.stderr)
        print(
            f"usage: {PROG} STEP_ID --ir IR --run-dir RUN_DIR [--trial N | --shard N] [--data NAME=URI]... "
            "[--hparam KEY=JSON]... [--output KEY=PATH]... [--result-file PATH]",
            file=sys.stderr,
        )
        return 2
    step = args.step_id
    started = time.monotonic()
    try:
        run = RunDir(args.run_dir)
    except Exception as exc:
        print(f"{PROG}: step '{step}' failed: cannot use run dir {args.run_dir}: {exc}", file=sys.stderr)
        return 1
    ctx = StepContext(
        step_id=step,
        ir=ir,
        run=run,
        trial=args.trial,
        shard=args.shard,
        data_overrides=data,
        hparam_overrides=hparams,
        argv=list(args_list),
    )
    status, error, result = "succeeded", None, {}
    try:
        from mlspec.runtime.steps import ACTIONS

        result = ACTIONS[action](ctx) or {}
        missing = [k for k in outputs if k not in result]
        if missing:
            raise StepError(f"--output asks for {', '.join(missing)}, which this step's result lacks")
    except StepError as exc:
        status, error, result = "failed", str(exc), exc.result
    except KeyboardInterrupt:
        status, error = "failed", "interrupted"
    except Exception as exc:  # never a traceback for bad input; MLSPEC_DEBUG=1 shows it
        if os.environ.get("MLSPEC_DEBUG"):
            raise
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    if _is_secondary_rank():
        return 0 if status == "succeeded" else 1
    full = {
        "step": step,
        "status": status,
        **({"trial": args.trial} if args.trial is not None else {}),
        **({"shard": args.shard} if args.shard is not None else {}),
        **result,
        "duration_seconds": round(time.monotonic() - started, 3),
    }
    if error:
        full["error"] = error
    text = json.dumps(full, indent=2, sort_keys=True, default=str) + "\n"
    try:
        index = {"tune-trial": args.trial, "monitor-summarize": args.shard}.get(action)
        run.write_bytes(text.encode(), *run.result_parts(step, index))
        if args.result_file:
            _write_local(args.result_file, text)
        if status == "succeeded":
            for key, path in outputs.items():
                _write_local(path, render(full[key]))
    except Exception as exc:
        print(f"{PROG}: step '{step}' failed: cannot write its result: {exc}", file=sys.stderr)
        return 1
    if status != "succeeded":
        print(f"{PROG}: step '{step}' failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
