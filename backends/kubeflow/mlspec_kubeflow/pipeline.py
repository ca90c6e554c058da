"""One IR pipeline -> a kfp DSL pipeline -> KFP v2 YAML from kfp's own compiler."""

from __future__ import annotations

import contextlib
import inspect
import json
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from kfp import compiler, dsl, kubernetes

from mlspec import contracts
from mlspec.ir.model import IR, Pipeline, Placement, Step
from mlspec_kubeflow import components

IR_PARAM = "ir_json"
RUN_ROOT_PARAM = "run_root"


@dataclass(frozen=True)
class Params:
    """Pipeline parameters: name -> (annotation, default), in signature order, plus what they override."""

    defaults: dict[str, tuple[type, object]]
    data: dict[str, str]  # data source name -> parameter name
    hparams: dict[str, str]  # hyperparameter key -> parameter name


def identifier(prefix: str, name: str) -> str:
    return prefix + re.sub(r"\W", "_", name)


def pipeline_params(ir: IR, pipeline: Pipeline) -> Params:
    defaults: dict[str, tuple[type, object]] = {
        IR_PARAM: (str, json.dumps(ir.model_dump(mode="json"), sort_keys=True)),
        RUN_ROOT_PARAM: (str, ir.artifacts_root.rstrip("/") + "/runs"),
    }
    data = {src.name: identifier("data_", src.name) for src in ir.data.sources}
    for src in ir.data.sources:
        defaults[data[src.name]] = (str, src.uri)
    hparams: dict[str, str] = {}
    if any(s.action in ("tune-trial", "train") for s in pipeline.steps):
        # JSON text, exactly what the runtime's --hparam KEY=JSON takes: KFP numbers are doubles, so a typed
        # int parameter would reach the step as 15.0.
        for key in sorted(ir.training.hyperparameters):
            hparams[key] = identifier("hparam_", key)
            defaults[hparams[key]] = (str, json.dumps(ir.training.hyperparameters[key], sort_keys=True))
    return Params(defaults, data, hparams)


def condition_outputs(pipeline: Pipeline) -> dict[str, tuple[str, ...]]:
    """Per step id, the sorted result keys that the pipeline's conditions read from it."""
    found: dict[str, set[str]] = {}
    for cond in pipeline.conditions:
        found.setdefault(cond.step, set()).add(cond.output)
    return {step: tuple(sorted(keys)) for step, keys in found.items()}


class PipelineBuilder:
    """Builds the kfp pipeline function for one IR pipeline; the DSL calls happen inside build()."""

    def __init__(self, ir: IR, pipeline: Pipeline) -> None:
        self.ir = ir
        self.pipeline = pipeline
        self.params = pipeline_params(ir, pipeline)
        self.outputs = condition_outputs(pipeline)
        self.conditions = {c.id: c for c in pipeline.conditions}
        kinds = {s.id: s.kind for s in pipeline.steps}
        for step_id, outputs in self.outputs.items():
            # Lowering gates only on evaluate and monitor, whose outputs have components; anything else would
            # leave the guarded steps ungated.
            assert kinds.get(step_id) == "builtin" and outputs in components.STEP_FUNCTIONS, (
                f"IR pipeline {pipeline.id}: conditions read {list(outputs)} from step {step_id!r} "
                f"({kinds.get(step_id, 'not in the pipeline')}), which no KFP step component publishes"
            )

    def pipeline_func(self):
        names = list(self.params.defaults)

        def body(*args):
            self.build(dict(zip(names, args, strict=True)))

        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        body.__signature__ = inspect.Signature(  # type: ignore[attr-defined]  # kfp reads it
            [
                inspect.Parameter(n, kind, default=d, annotation=t)
                for n, (t, d) in self.params.defaults.items()
            ]
        )
        body.__name__ = self.pipeline.task_id
        return dsl.pipeline(
            name=contracts.pipeline_name(self.ir.system.name, self.pipeline.id),
            description=self.pipeline.description,
            display_name=f"{self.ir.system.name} {self.pipeline.id}",
        )(body)

    def build(self, args: dict) -> None:
        tasks: dict[str, dsl.PipelineTask] = {}
        checks: dict[str, dsl.PipelineTask] = {}
        open_conditions: list[tuple[str, contextlib.ExitStack]] = []
        try:
            for step in self.pipeline.steps:
                # Keep the shared prefix of open dsl.If blocks, close the rest, open this step's.
                keep = 0
                while (
                    keep < len(open_conditions)
                    and keep < len(step.conditions)
                    and open_conditions[keep][0] == step.conditions[keep]
                ):
                    keep += 1
                for _, scope in reversed(open_conditions[keep:]):
                    scope.close()
                del open_conditions[keep:]
                for cond_id in step.conditions[keep:]:
                    scope = contextlib.ExitStack()
                    scope.enter_context(dsl.If(checks[cond_id].output == True, name=cond_id))  # noqa: E712
                    open_conditions.append((cond_id, scope))
                tasks[step.id] = self.step_task(step, args, tasks)
                for cond in self.pipeline.conditions:
                    if cond.step == step.id:
                        checks[cond.id] = self.check_task(
                            cond.id, cond.description, cond.output, tasks[step.id]
                        )
        finally:
            for _, scope in reversed(open_conditions):
                scope.close()

    def step_task(self, step: Step, args: dict, tasks: dict[str, dsl.PipelineTask]) -> dsl.PipelineTask:
        with contextlib.ExitStack() as stack:
            index: object = -1
            if step.fan_out:
                loop = dsl.ParallelFor(
                    items=list(range(step.fan_out.count)), parallelism=step.fan_out.parallelism, name=step.id
                )
                index = stack.enter_context(loop)
            task = self.call(step, args, index)
            for upstream in step.depends_on:
                task.after(tasks[upstream])
            configure(task, step, self.ir)
        return task

    def call(self, step: Step, args: dict, index: object) -> dsl.PipelineTask:
        # User steps run the runtime's step contract too: it stages their inputs and checks their outputs.
        run_root, run_id = args[RUN_ROOT_PARAM], dsl.PIPELINE_JOB_ID_PLACEHOLDER
        comp = components.step_component(self.outputs.get(step.id, ()), step.image, step.id)
        return comp(
            command=list(step.command),
            step=step.id,
            ir=args[IR_PARAM],
            run_root=run_root,
            run_id=run_id,
            index_arg=step.fan_out.index_arg if step.fan_out else "",
            index=index,
            data={name: args[param] for name, param in self.params.data.items()},
            hparams={key: args[param] for key, param in self.params.hparams.items()}
            if step.action in ("tune-trial", "train")
            else {},
        )

    def check_task(self, cond_id: str, description: str, output: str, source: dsl.PipelineTask):
        # kfp.local resolves only a task's single `Output` in dsl.If, so each IR condition republishes the
        # step's boolean output through a tiny task named after the condition.
        image = self.ir.images.get("runtime") or next(iter(self.ir.images.values()))
        task = components.condition_component(image, f"check-{cond_id}")(value=source.outputs[output])
        task.set_display_name(f"Check: {description}")
        task.set_caching_options(False)
        return task


def configure(task: dsl.PipelineTask, step: Step, ir: IR) -> None:
    """Placement, labels, retries, timeout, caching, env and display name from the IR step."""
    task.set_display_name(step.display_name)
    place(task, step.placement)
    labels = {**ir.system.labels, contracts.SYSTEM_LABEL: ir.system.name, contracts.STEP_LABEL: step.id}
    for key, value in sorted(labels.items()):
        kubernetes.add_pod_label(task, label_key=key, label_value=value)
    if step.retries:
        task.set_retry(
            num_retries=step.retries, backoff_duration=f"{step.retry_backoff_seconds}s", backoff_factor=2.0
        )
    if step.timeout_seconds:
        kubernetes.set_timeout(task, step.timeout_seconds)
    task.set_caching_options(step.cache)
    for key, value in sorted(step.env.items()):
        task.set_env_variable(key, value)


def place(task: dsl.PipelineTask, placement: Placement) -> None:
    """The IR placement as written: requests = limits, the accelerator, the pool's selector and tolerations.

    KFP's driver turns the accelerator type into the key of the pod's `resources.limits`, so the type is the
    Kubernetes extended resource the device plugin advertises (`gpu.resource`), never the GPU product, which
    selects the pool.
    """
    task.set_cpu_request(placement.cpu).set_cpu_limit(placement.cpu)
    task.set_memory_request(placement.memory).set_memory_limit(placement.memory)
    if placement.gpu is not None:
        task.set_accelerator_type(placement.gpu.resource).set_accelerator_limit(placement.gpu.count)
    for key, value in sorted(placement.node_selector.items()):
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    for taint in placement.tolerations:
        kubernetes.add_toleration(
            task, key=taint.key, operator="Equal", value=taint.value, effect=taint.effect
        )


def compile_pipeline(ir: IR, pipeline: Pipeline) -> str:
    """The KFP v2 YAML for one IR pipeline, from kfp's compiler (it writes files only, so via a temp dir)."""
    # kfp calls inspect.stack() in every resource setter, so its cost grows with the caller's stack depth
    # (CLI, pytest): build and compile on a fresh thread, whose stack is shallow.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlspec-kfp") as pool:
        return pool.submit(_compile, ir, pipeline).result()


def _compile(ir: IR, pipeline: Pipeline) -> str:
    func = PipelineBuilder(ir, pipeline).pipeline_func()
    with tempfile.TemporaryDirectory(prefix="mlspec-kfp-") as tmp:
        path = Path(tmp) / "pipeline.yaml"
        compiler.Compiler().compile(func, str(path))
        return _shorten_ir_comment(path.read_text(encoding="utf-8"))


def _shorten_ir_comment(text: str) -> str:
    """kfp's header comment repeats every parameter default on one line: for the IR, tens of thousands of
    characters. The default itself stays in root.inputDefinitions, where YAML folds it into short lines."""
    prefix = f"#    {IR_PARAM}: str [Default: "
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.startswith("#"):
            break
        if line.startswith(prefix):
            lines[i] = prefix + "the IR this pipeline was compiled from, as JSON; see root.inputDefinitions]"
    return "\n".join(lines)
