"""The Airflow backend: the capability table, the execution mode, and the files it emits.

Emits into generated/<system>/airflow/:
  <system>_training.py    the training DAG (cron and/or retrain-asset scheduled when Airflow owns the loop)
  <system>_monitoring.py  the monitoring DAG, when the IR has monitoring and names Airflow its owner (one
                          monitor per system and environment writes the trigger state)
  ir.json                 the IR the runtime steps read (the DAGs find it beside themselves)
One execution mode per compile: `kubernetes` (a KubernetesPodOperator per step) or `local` (the worker runs
each step as a subprocess), taken from the emit option `airflow_mode`, else from the IR.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from mlspec.backends import (
    ORCHESTRATION,
    Artifact,
    BaseBackend,
    EmitContext,
    Feature,
    Support,
    capability_table,
)
from mlspec.ir.model import IR
from mlspec_airflow.dag import MODES, build_dag
from mlspec_airflow.render import render

# Training that spans nodes: in kubernetes mode the train task's pod launches the job the kubernetes target
# declares and waits for it; local mode runs the same world of processes on the worker.
_CAPABILITIES = capability_table(
    full=(*ORCHESTRATION, Feature.TRAINING_DISTRIBUTED),
    impossible=(Feature.STEP_CACHE,),
)


class AirflowBackend(BaseBackend):
    name = "airflow"
    version = "2"
    capabilities: ClassVar = _CAPABILITIES
    # Per mode: local mode runs steps on the worker, which cannot be given a GPU.
    mode_capabilities: ClassVar[dict[str, dict[Feature, Support]]] = {
        "kubernetes": _CAPABILITIES,
        "local": {**_CAPABILITIES, Feature.STEP_GPU: Support.IMPOSSIBLE},
    }
    reasons: ClassVar = {
        Feature.STEP_CACHE: "Airflow has no task result cache: every DAG run re-executes every task",
        Feature.STEP_GPU: "local mode runs steps on the worker, which cannot be given a GPU",
    }

    def mode(self, ir: IR, options: Mapping[str, str]) -> str:
        mode = options.get("airflow_mode") or ir.airflow_mode
        if mode not in MODES:
            raise ValueError(f"airflow_mode must be one of {', '.join(MODES)}, not {mode!r}")
        return mode

    def capabilities_for(self, ir: IR, options: Mapping[str, str]) -> dict[Feature, Support]:
        return self.mode_capabilities[self.mode(ir, options)]

    def generate(self, ir: IR, ctx: EmitContext) -> list[Artifact]:
        mode = self.mode(ir, ctx.options)
        artifacts = [Artifact("ir.json", ir.to_json())]
        for pipeline in ir.pipelines:
            if pipeline.id == "monitoring" and (ir.monitoring is None or ir.monitoring.owner != self.name):
                continue
            view = build_dag(ir, pipeline, mode)
            artifacts.append(Artifact(f"{view.file_stem}.py", render("dag.py.j2", view=view)))
        return artifacts
