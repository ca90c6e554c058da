"""`mlspec run`: execute the IR's training pipeline locally, each step in its own process.

Every builtin step runs exactly the contract command (IR step.command + --ir/--run-dir [+ --trial i]), so a
local run exercises the same code paths as Kubeflow and Airflow. Artifacts live in .mlspec/runs/<run-id>/.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlspec.ir.model import IR, Pipeline, Step
from mlspec.runtime import UsageError
from mlspec.runtime.context import RunDir
from mlspec.runtime.progress import StepProgress

RUNS = Path(".mlspec") / "runs"


@dataclass
class StepOutcome:
    step: str
    status: str  # succeeded | failed | skipped | reused
    seconds: float = 0.0
    detail: str = ""
    result: dict[str, Any] = field(default_factory=dict)


def ordered(pipeline: Pipeline) -> list[Step]:
    """Dependency order, stable with respect to the IR's own order."""
    done: set[str] = set()
    remaining = list(pipeline.steps)
    out: list[Step] = []
    while remaining:
        ready = [s for s in remaining if set(s.depends_on) <= done]
        if not ready:
            raise UsageError(f"pipeline '{pipeline.id}' has a dependency cycle")
        out.append(ready[0])
        done.add(ready[0].id)
        remaining.remove(ready[0])
    return out


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def latest_run(root: Path) -> str | None:
    runs = sorted((p for p in root.glob("*") if (p / "ir.json").exists()), key=lambda p: p.stat().st_mtime)
    return runs[-1].name if runs else None


def command(step: Step, ir_path: str, run_dir: str, trial: int | None = None) -> list[str]:
    """The step contract's argv: builtin and user steps alike run the runtime with this interpreter."""
    argv = list(step.command)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable  # the interpreter that has mlspec installed
    argv += ["--ir", ir_path, "--run-dir", run_dir]
    if trial is not None:
        argv += [step.fan_out.index_arg if step.fan_out else "--trial", str(trial)]
    return argv


class Runner:
    def __init__(
        self,
        ir: IR,
        run_id: str,
        *,
        root: Path = RUNS,
        echo: Callable[[str], None] = print,
        pipeline_id: str = "training",
        progress: StepProgress | None = None,
    ):
        pipeline = ir.pipeline(pipeline_id)
        if pipeline is None:
            raise UsageError(f"the IR has no '{pipeline_id}' pipeline")
        self.ir, self.pipeline, self.echo = ir, pipeline, echo
        self.progress = progress
        self.run_id = run_id
        self.dir = root / run_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ir_path = str(self.dir / "ir.json")
        Path(self.ir_path).write_text(ir.to_json(), encoding="utf-8")
        self.run = RunDir(str(self.dir))
        self.steps = ordered(pipeline)

    # ------------------------------------------------------------------------------------- selection
    def select(self, from_step: str | None, until_step: str | None) -> list[Step]:
        ids = [s.id for s in self.steps]
        for name in (from_step, until_step):
            if name is not None and name not in ids:
                raise UsageError(
                    f"no step '{name}' in the {self.pipeline.id} pipeline (steps: {', '.join(ids)})"
                )
        start = ids.index(from_step) if from_step else 0
        end = ids.index(until_step) + 1 if until_step else len(ids)
        if start >= end:
            raise UsageError(f"--from {from_step} comes after --until {until_step}")
        for earlier in self.steps[:start]:
            if self._status(earlier) not in ("succeeded", "skipped"):
                raise UsageError(
                    f"cannot resume run {self.run_id} from '{from_step}': step '{earlier.id}' has no "
                    "successful result (run without --from, or from an earlier step)"
                )
        return self.steps[start:end]

    def _status(self, step: Step) -> str | None:
        if step.fan_out:
            results = [self.run.result(step.id, i) for i in range(step.fan_out.count)]
            return "succeeded" if all(r and r.get("status") == "succeeded" for r in results) else None
        result = self.run.result(step.id)
        return result.get("status") if result else None

    # ------------------------------------------------------------------------------------- conditions
    def blocked_by(self, step: Step) -> str | None:
        """Why a step must be skipped (a condition did not hold), or None."""
        for cond_id in step.conditions:
            cond = next((c for c in self.pipeline.conditions if c.id == cond_id), None)
            if cond is None:
                continue
            result = self.run.result(cond.step) or {}
            if result.get("status") == "skipped":
                return f"'{cond.step}' was skipped"
            if result.get(cond.output) is not True:
                why = ""
                if cond.output == "gates_passed":
                    why = "; ".join(g["message"] for g in result.get("gates", []) if not g.get("passed"))
                elif cond.output == "beats_champion":
                    why = result.get("champion_reason", "")
                return f"condition '{cond.id}' is false ({cond.description})" + (f": {why}" if why else "")
        return None

    # ------------------------------------------------------------------------------------- execution
    def _spawn(self, step: Step, trial: int | None) -> tuple[subprocess.Popen, Path]:
        log_dir = self.dir / "steps" / step.id / (str(trial) if trial is not None else "")
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / "log.txt"
        env = {**os.environ, **step.env, "PYTHONUNBUFFERED": "1", "MLSPEC_RUN_ID": self.run_id}
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                command(step, self.ir_path, str(self.dir), trial),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        return proc, log_path

    def _wait(self, proc: subprocess.Popen, timeout: float | None, step: Step) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            poll = left if self.progress is None else min(0.25, left if left is not None else 0.25)
            try:
                return proc.wait(timeout=poll)
            except subprocess.TimeoutExpired:
                if deadline is not None and time.monotonic() >= deadline:
                    proc.kill()
                    proc.wait()
                    return 124
                if self.progress is not None:
                    self.progress.update(step, self.run, self.dir / "steps" / step.id)

    def execute(self, step: Step) -> StepOutcome:
        started = time.monotonic()
        trials = list(range(step.fan_out.count)) if step.fan_out else [None]
        parallel = max(1, step.fan_out.parallelism) if step.fan_out else 1
        failures: list[tuple[int | None, int, Path]] = []
        pending = list(trials)
        running: list[tuple[int | None, subprocess.Popen, Path]] = []
        deadline = step.timeout_seconds
        while pending or running:
            while pending and len(running) < parallel:
                trial = pending.pop(0)
                proc, log = self._spawn(step, trial)
                running.append((trial, proc, log))
            trial, proc, log = running.pop(0)
            left = None if deadline is None else max(1.0, deadline - (time.monotonic() - started))
            code = self._wait(proc, left, step)
            if code != 0:
                failures.append((trial, code, log))
        seconds = time.monotonic() - started
        if failures:
            trial, code, log = failures[0]
            result = self.run.result(step.id, trial) or {}
            cause = result.get("error") or ("timed out" if code == 124 else f"exit code {code}")
            label = step.id if trial is None else f"{step.id} trial {trial}"
            return StepOutcome(step.id, "failed", seconds, f"{label}: {cause}", {"log": str(log)})
        result = self.run.result(step.id) or {} if not step.fan_out else {}
        return StepOutcome(step.id, "succeeded", seconds, summarize(step, result, self.run), result)

    def go(self, steps: list[Step]) -> list[StepOutcome]:
        outcomes: list[StepOutcome] = []
        total = len(steps)
        for n, step in enumerate(steps, 1):
            label = step.id + (
                f" ({step.fan_out.count} trials, {step.fan_out.parallelism} at a time)"
                if step.fan_out
                else ""
            )
            reason = self.blocked_by(step)
            if reason:
                self.run.write_json(
                    {"step": step.id, "status": "skipped", "reason": reason}, *self.run.result_parts(step.id)
                )
                self.echo(f"[{n}/{total}] {step.id}: skipped, {reason}")
                outcomes.append(StepOutcome(step.id, "skipped", 0.0, reason))
                continue
            self.echo(f"[{n}/{total}] {label} ...")
            if self.progress is not None:
                self.progress.start(f"{step.id}")
            try:
                outcome = self.execute(step)
            finally:
                if self.progress is not None:
                    self.progress.stop()
            outcomes.append(outcome)
            if outcome.status == "failed":
                self.echo(f"[{n}/{total}] {step.id}: FAILED after {outcome.seconds:.1f}s")
                self.echo(f"  cause: {outcome.detail}")
                self.echo(f"  log: {outcome.result.get('log')}")
                tail = _tail(Path(outcome.result["log"]), 15)
                if tail:
                    self.echo("  ---- last lines of the step's output ----")
                    for line in tail:
                        self.echo("  | " + line)
                break
            self.echo(
                f"[{n}/{total}] {step.id}: ok in {outcome.seconds:.1f}s"
                + (f" - {outcome.detail}" if outcome.detail else "")
            )
        return outcomes


def summarize(step: Step, result: dict[str, Any], run: RunDir) -> str:
    action = step.action
    if action == "user":
        read = {name: i.get("rows") for name, i in result.get("inputs", {}).items()}
        return ", ".join(
            f"{name}: {read[name]} -> {o.get('rows')} rows"
            if name in read
            else f"{name}: {o.get('rows')} rows"
            for name, o in result.get("outputs", {}).items()
        )
    if action == "validate-raw":
        return f"{result.get('rows')} raw rows, raw checks passed"
    if action == "validate-data":
        return f"{result.get('rows')} rows, {result.get('train_rows')} train / {result.get('test_rows')} test, checks passed"
    if action == "tune-trial" and step.fan_out:
        values = [(run.result(step.id, i) or {}).get("value") for i in range(step.fan_out.count)]
        return "values " + ", ".join(f"{v:.4f}" for v in values if isinstance(v, float))
    if action == "tune-select":
        return f"best {result.get('metric')} {result.get('best_value', float('nan')):.4f} with {json.dumps(result.get('best_params'))}"
    if action == "train":
        loss = result.get("final_train_loss")
        return f"{result.get('rows')} rows on {result.get('device')}" + (
            f", loss {loss:.4f}" if loss is not None else ""
        )
    if action == "evaluate":
        metrics = result.get("metrics", {})
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        return (
            f"{shown}; gates {'passed' if result.get('gates_passed') else 'FAILED'}; "
            f"{'beats' if result.get('beats_champion') else 'does not beat'} champion"
        )
    if action == "export":
        return f"ONNX parity max diff {result.get('parity_max_abs_diff', 0):.2e}"
    if action == "register":
        return f"{result.get('model_uri')} (alias {result.get('alias')})"
    if action == "promote":
        return f"champion -> version {result.get('champion_version')}"
    return ""


def _tail(path: Path, lines: int) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def table(outcomes: list[StepOutcome]) -> str:
    rows = [("step", "status", "seconds", "detail")]
    rows += [(o.step, o.status, f"{o.seconds:.1f}", _clip(o.detail, 100)) for o in outcomes]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for i, r in enumerate(rows):
        lines.append(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}".rstrip())
        if i == 0:
            lines.append("-" * (sum(widths) + 4 + max(len(x[3]) for x in rows) + 2))
    return "\n".join(lines)


def run_spec(
    spec: str,
    *,
    env: str | None = None,
    from_step: str | None = None,
    until_step: str | None = None,
    run_id: str | None = None,
    echo: Callable[[str], None] = print,
) -> int:
    """Load, lint and lower SPEC (or read a compiled IR JSON, as the retraining Job does), then run its
    training pipeline; returns the exit code."""
    from mlspec import api
    from mlspec.runtime.preflight import check_runtime

    check_runtime()
    ir = api.load_ir(spec, env)
    if run_id is None and from_step is not None:
        run_id = latest_run(RUNS)
        if run_id is None:
            raise UsageError("--from needs an earlier run in .mlspec/runs (or pass --run-id)")
    run_id = run_id or new_run_id()
    runner = Runner(ir, run_id, echo=echo, progress=StepProgress.for_terminal())
    steps = runner.select(from_step, until_step)
    echo(f"mlspec run {spec}: run {run_id} ({len(steps)} steps) in {runner.dir}")
    started = time.monotonic()
    outcomes = runner.go(steps)
    echo("")
    echo(table(outcomes))
    failed = any(o.status == "failed" for o in outcomes)
    echo("")
    if failed:
        was_registered = any(o.step == "register" and o.status == "succeeded" for o in outcomes)
        echo(
            f"run {run_id} FAILED in {time.monotonic() - started:.1f}s; "
            + (
                "the model was registered as challenger, not promoted"
                if was_registered
                else "nothing was registered"
            )
        )
        return 1
    promoted = next((o.result for o in outcomes if o.step == "promote" and o.status == "succeeded"), None)
    registered = next((o.result for o in outcomes if o.step == "register" and o.status == "succeeded"), None)
    tail = ""
    if promoted and promoted.get("promoted") is False:
        tail = (
            f"; registered version {registered.get('model_version') if registered else '?'} as challenger: "
            f"its {promoted.get('rollout')} rollout decides (mlspec analyze {spec})"
        )
    elif promoted:
        tail = f"; champion is {promoted.get('model_uri')} (version {promoted.get('champion_version')})"
    elif registered:
        tail = f"; registered {registered.get('model_uri')} as {registered.get('alias')}"
    echo(f"run {run_id} finished in {time.monotonic() - started:.1f}s{tail}")
    for line in next_steps(ir, spec, env):
        echo(line)
    return 0


def next_steps(ir: IR, spec: str, env: str | None) -> list[str]:
    """What to try after a successful run: look at it in MLflow, serve it, compile it for the cluster."""
    from mlspec.runtime.registry import tracking_uri

    uri = tracking_uri(ir)
    env_flag = f" --env {env}" if env else ""
    hints: list[tuple[str, str]] = []
    if not uri.startswith(("http://", "https://", "databricks")):
        hints.append(
            (f"mlflow ui --backend-store-uri {uri}", "browse the runs, metrics and registered model")
        )
    if ir.serving is not None:
        hints.append((f"mlspec serve {spec}{env_flag}", f"serve the champion on 127.0.0.1:{ir.serving.port}"))
    hints.append((f"mlspec compile {spec}{env_flag}", f"write the {', '.join(ir.targets)} artifacts"))
    width = max(len(command) for command, _ in hints)
    return ["", "next:", *(f"  {command:<{width}}  # {why}" for command, why in hints)]
