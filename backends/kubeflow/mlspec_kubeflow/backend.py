"""The Kubeflow backend: capability table plus generate(); the kfp work lives in pipeline.py."""

from __future__ import annotations

from typing import ClassVar

from mlspec.backends import FEATURES, Artifact, BaseBackend, EmitContext
from mlspec.ir.model import IR


class KubeflowBackend(BaseBackend):
    name = "kubeflow"
    version = "1"
    capabilities: ClassVar = {
        "pipeline.training": True,
        "pipeline.monitoring": True,
        "step.user": True,
        "step.gpu": True,
        "step.retries": True,
        "step.timeout": True,
        "step.cache": True,
        "gates": True,
        "tuning.fan_out": True,
        # A KFP v2 task is one pod; multi-worker training needs a PyTorchJob (Training Operator), not KFP.
        "training.distributed": False,
        "trigger.schedule": True,
        # Data triggers are evaluated by the monitoring pipeline's monitor step (see generate()).
        "trigger.drift": True,
        "trigger.performance": True,
        "trigger.volume": True,
        "trigger.data_quality": True,
    }
    not_applicable = frozenset(
        f for f in FEATURES if f.startswith(("serving", "rollout.", "infrastructure."))
    )

    def generate(self, ir: IR, ctx: EmitContext) -> list[Artifact]:
        from mlspec_kubeflow import schedule
        from mlspec_kubeflow.pipeline import compile_pipeline

        blocked = self._check(ir, ctx)
        files = {"training": "pipeline.yaml", "monitoring": "monitor.yaml"}
        artifacts = []
        for pipeline in ir.pipelines:
            if pipeline.id in blocked:
                continue  # reported by _check; a pipeline without its gates would register ungated models
            if pipeline.id not in files:
                self.unsupported(
                    ctx,
                    f"pipeline.{pipeline.id}",
                    "no KFP pipeline for this pipeline kind",
                    f"pipelines.{pipeline.id}",
                )
                continue
            artifacts.append(Artifact(files[pipeline.id], compile_pipeline(ir, pipeline)))
        artifacts += schedule.recurring_runs(ir, files)
        artifacts.append(Artifact("README.md", schedule.readme(ir, files, [a.path for a in artifacts])))
        return artifacts

    def _check(self, ir: IR, ctx: EmitContext) -> set[str]:
        """Reports what the capability table cannot see; returns the pipelines that cannot be compiled."""
        from mlspec_kubeflow.components import STEP_FUNCTIONS
        from mlspec_kubeflow.pipeline import condition_outputs

        if ir.retraining and ir.pipeline("monitoring") is None:
            for trigger in ir.retraining.triggers:
                if trigger.kind != "schedule":
                    self.unsupported(
                        ctx,
                        f"trigger.{trigger.kind}",
                        "needs the monitoring pipeline, which the IR lacks (set monitoring in the spec)",
                        f"retraining.triggers.{trigger.id}",
                    )
        blocked = set()
        for pipeline in ir.pipelines:
            where = f"pipelines.{pipeline.id}"
            accounts = sorted({s.service_account for s in pipeline.steps})
            if len(accounts) > 1:
                # KFP runs every pod of a run under the run's one service account.
                self.unsupported(
                    ctx,
                    "step.service_account",
                    f"steps use service accounts {accounts}; a KFP run has one",
                    where,
                )
            for step_id, outputs in condition_outputs(pipeline).items():
                step = next((s for s in pipeline.steps if s.id == step_id), None)
                if step is None or step.kind == "user" or outputs not in STEP_FUNCTIONS:
                    self.unsupported(
                        ctx,
                        "gates",
                        f"condition outputs {list(outputs)} of step {step_id} have no KFP step component",
                        f"{where}.conditions",
                    )
                    blocked.add(pipeline.id)
        return blocked
