"""A tiny backend used by the seam tests, discovered through a test-only entry point."""

from __future__ import annotations

from mlspec.backends import FEATURES, Artifact, BaseBackend, EmitContext
from mlspec.ir.model import IR


class FakeBackend(BaseBackend):
    """Expresses everything except serving caches and canary rollouts."""

    name = "fake"
    version = "0.0.1"
    capabilities = {f: f not in ("serving.cache", "rollout.canary") for f in FEATURES}
    not_applicable = frozenset(
        {"infrastructure.aws", "infrastructure.gcp", "infrastructure.gpu_pool", "infrastructure.state"}
    )

    def generate(self, ir: IR, ctx: EmitContext) -> list[Artifact]:
        steps = "\n".join(s.id for s in ir.pipelines[0].steps)
        return [
            Artifact("steps.txt", steps + "\n"),
            Artifact("nested/pipeline.yaml", f"name: {ir.system.name}\n"),
        ]


class BrokenBackend(BaseBackend):
    name = "broken"
    version = "0"
    capabilities = dict.fromkeys(FEATURES, True)

    def generate(self, ir: IR, ctx: EmitContext) -> list[Artifact]:
        raise RuntimeError("backend crashed halfway")
