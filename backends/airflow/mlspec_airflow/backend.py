"""The Airflow backend: the capability table, the execution mode, and the files it emits.

Emits into generated/<system>/airflow/:
  <system>_training.py    the training DAG (cron and/or retrain-asset scheduled)
  <system>_monitoring.py  the monitoring DAG, when the IR has a monitoring pipeline
  ir.json                 the IR the runtime steps read (the DAGs find it beside themselves)
One execution mode per compile: `kubernetes` (a KubernetesPodOperator per step) or `local` (the worker runs
each step as a subprocess), taken from the emit option `airflow_mode`, else from the IR.
"""

from __future__ import annotations

from typing import ClassVar

from mlspec.backends import FEATURES, Artifact, BaseBackend, EmitContext
from mlspec.ir.model import IR
from mlspec_airflow.dag import MODES, build_dag
from mlspec_airflow.render import render

_CAPABILITIES = {
    "pipeline.training": True,
    "pipeline.monitoring": True,
    "step.user": True,
    "step.gpu": True,
    "step.retries": True,
    "step.timeout": True,
    "step.cache": False,  # Airflow has no task result cache: every run re-executes every task
    "gates": True,
    "tuning.fan_out": True,
    "training.distributed": False,  # one pod (or one subprocess) per step; no multi-worker training job
    "trigger.schedule": True,
    "trigger.drift": True,
    "trigger.performance": True,
    "trigger.volume": True,
}


class AirflowBackend(BaseBackend):
    name = "airflow"
    version = "1"
    capabilities: ClassVar[dict[str, bool]] = _CAPABILITIES
    # Per mode: local mode runs steps on the worker, which cannot be given a GPU.
    mode_capabilities: ClassVar[dict[str, dict[str, bool]]] = {
        "kubernetes": _CAPABILITIES,
        "local": {**_CAPABILITIES, "step.gpu": False},
    }
    not_applicable = frozenset(
        f for f in FEATURES if f.startswith(("serving", "rollout.", "infrastructure."))
    )

    def mode(self, ir: IR, ctx: EmitContext) -> str:
        mode = ctx.options.get("airflow_mode") or ir.airflow_mode
        if mode not in MODES:
            raise ValueError(f"airflow_mode must be one of {', '.join(MODES)}, not {mode!r}")
        return mode

    def capabilities_for(self, ir: IR, ctx: EmitContext) -> dict[str, bool]:
        return self.mode_capabilities[self.mode(ir, ctx)]

    def generate(self, ir: IR, ctx: EmitContext) -> list[Artifact]:
        mode = self.mode(ir, ctx)
        self._report_cache(ir, ctx)
        artifacts = [Artifact("ir.json", ir.to_json())]
        for pipeline in ir.pipelines:
            view = build_dag(ir, pipeline, mode, lambda *a: self.unsupported(ctx, *a))
            artifacts.append(Artifact(f"{view.file_stem}.py", render("dag.py.j2", view=view)))
        return artifacts

    def _report_cache(self, ir: IR, ctx: EmitContext) -> None:
        # features_used() does not list step.cache; a cached step would silently re-run, so report it here.
        for pipeline in ir.pipelines:
            for step in pipeline.steps:
                where = f"pipelines.{pipeline.id}.steps.{step.id}"
                mine = f"{self.name} cannot express step.cache"
                already = any(d.message.startswith(mine) and where in d.message for d in ctx.diagnostics)
                if step.cache and not already:
                    self.unsupported(ctx, "step.cache", "Airflow re-runs every task on every DAG run", where)
