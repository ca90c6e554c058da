"""A tiny backend used by the seam tests, discovered through a test-only entry point."""

from __future__ import annotations

from mlspec.backends import FEATURES, Artifact, BaseBackend, EmitContext, Feature, Support
from mlspec.ir.model import IR


class FakeBackend(BaseBackend):
    """Expresses everything except serving caches (not yet) and canary rollouts (impossible)."""

    name = "fake"
    version = "0.0.1"
    capabilities = {
        **dict.fromkeys(FEATURES, Support.FULL),
        Feature.SERVING_CACHE: Support.NOT_YET,
        Feature.ROLLOUT_CANARY: Support.IMPOSSIBLE,
        **dict.fromkeys((f for f in FEATURES if f.startswith("infrastructure.")), Support.NOT_APPLICABLE),
    }

    def generate(self, ir: IR, ctx: EmitContext) -> list[Artifact]:
        steps = "\n".join(s.id for s in ir.pipelines[0].steps)
        return [
            Artifact("steps.txt", steps + "\n"),
            Artifact("nested/pipeline.yaml", f"name: {ir.system.name}\n"),
        ]


class BrokenBackend(BaseBackend):
    name = "broken"
    version = "0"
    capabilities = dict.fromkeys(FEATURES, Support.FULL)

    def generate(self, ir: IR, ctx: EmitContext) -> list[Artifact]:
        raise RuntimeError("backend crashed halfway")
