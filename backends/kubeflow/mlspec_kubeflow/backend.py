"""The Kubeflow backend: capability table plus generate(); the kfp work lives in pipeline.py."""

from __future__ import annotations

from typing import ClassVar

from mlspec.backends import ORCHESTRATION, Artifact, BaseBackend, EmitContext, Feature, capability_table
from mlspec.ir.model import IR

# Training that spans nodes: the train task runs the runtime's train step, which launches the job the
# kubernetes target declares (training.distribution.template) and waits for it.
# The package file of each IR pipeline (lowering makes only these two).
PACKAGES = {"training": "pipeline.yaml", "monitoring": "monitor.yaml"}


class KubeflowBackend(BaseBackend):
    name = "kubeflow"
    version = "2"
    # Data triggers are evaluated by the monitoring pipeline's monitor step, which gates trigger-retrain.
    capabilities: ClassVar = capability_table(
        full=(*ORCHESTRATION, Feature.STEP_CACHE, Feature.TRAINING_DISTRIBUTED),
    )

    def generate(self, ir: IR, ctx: EmitContext) -> list[Artifact]:
        from mlspec_kubeflow import schedule
        from mlspec_kubeflow.pipeline import compile_pipeline

        # Lint (MS205) refuses data triggers without monitoring, so the monitoring pipeline evaluates them.
        data_triggers = [
            t.id for t in (ir.retraining.triggers if ir.retraining else []) if t.kind != "schedule"
        ]
        assert not data_triggers or ir.pipeline("monitoring") is not None, (
            f"IR has retraining triggers {data_triggers} but no monitoring pipeline to evaluate them"
        )
        artifacts = []
        for pipeline in ir.pipelines:
            assert pipeline.id in PACKAGES, f"IR pipeline {pipeline.id!r} has no KFP package name"
            if pipeline.id == "monitoring" and (ir.monitoring is None or ir.monitoring.owner != self.name):
                continue  # another target's monitor owns the trigger state
            artifacts.append(Artifact(PACKAGES[pipeline.id], compile_pipeline(ir, pipeline)))
        artifacts += schedule.recurring_runs(ir, PACKAGES, owner=self.name)
        artifacts.append(Artifact("README.md", schedule.readme(ir, PACKAGES, [a.path for a in artifacts])))
        return artifacts
