"""The backend seam: the Backend protocol, discovery through entry points, and the unsupported() path.

A backend reads the IR only. It declares what it can express as a capability table; every IR feature it
cannot express becomes a diagnostic (an error unless --allow-unsupported), never a silent drop.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import ClassVar, Protocol, runtime_checkable

from mlspec.diagnostics import Diagnostic, Location, MlspecError, Severity, did_you_mean
from mlspec.ir.model import IR

ENTRY_POINT_GROUP = "mlspec.backends"

# Every IR feature a backend may or may not express. Capability tables map these to True/False.
FEATURES = (
    "pipeline.training",
    "pipeline.monitoring",
    "step.user",
    "step.gpu",
    "step.retries",
    "step.timeout",
    "step.cache",
    "gates",
    "tuning.fan_out",
    "training.distributed",
    "trigger.schedule",
    "trigger.drift",
    "trigger.performance",
    "trigger.volume",
    "trigger.data_quality",
    "serving",
    "serving.gpu",
    "serving.autoscaling",
    "rollout.rolling",
    "rollout.canary",
    "rollout.blue-green",
    "rollout.shadow",
    "rollout.a-b",
    "serving.cache",
    "serving.slo",
    "infrastructure.aws",
    "infrastructure.gcp",
    "infrastructure.gpu_pool",
    "infrastructure.state",
)


@dataclass(frozen=True)
class Artifact:
    path: str  # relative POSIX path inside the target's output folder
    content: str | bytes

    def data(self) -> bytes:
        return self.content.encode("utf-8") if isinstance(self.content, str) else self.content


@dataclass
class EmitContext:
    allow_unsupported: bool = False
    spec_path: str = "mlops.yaml"
    diagnostics: list[Diagnostic] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)

    def unsupported(self, backend: str, feature: str, message: str, where: str = "") -> None:
        severity = Severity.WARNING if self.allow_unsupported else Severity.ERROR
        text = f"{backend} cannot express {feature}: {message}" + (f" (at {where})" if where else "")
        self.diagnostics.append(
            Diagnostic(
                "MS301",
                text,
                Location(self.spec_path),
                severity=severity,
                hint=None if self.allow_unsupported else "pass --allow-unsupported to compile without it",
            )
        )


@runtime_checkable
class Backend(Protocol):
    name: str
    version: str
    capabilities: Mapping[str, bool]

    def emit(self, ir: IR, ctx: EmitContext) -> list[Artifact]: ...


def features_used(ir: IR) -> Iterator[tuple[str, str]]:
    """(feature, where) for every feature of FEATURES that this IR uses."""
    for pipeline in ir.pipelines:
        yield f"pipeline.{pipeline.id}", f"pipelines.{pipeline.id}"
        for step in pipeline.steps:
            where = f"pipelines.{pipeline.id}.steps.{step.id}"
            if step.kind == "user":
                yield "step.user", where
            if step.resources.gpu_count:
                yield "step.gpu", where
            if step.retries:
                yield "step.retries", where
            if step.timeout_seconds:
                yield "step.timeout", where
            if step.fan_out:
                yield "tuning.fan_out", where
        if pipeline.conditions and any(c.gates for c in pipeline.conditions):
            yield "gates", f"pipelines.{pipeline.id}.conditions"
    if ir.training.workers > 1:
        yield "training.distributed", "training.workers"
    if ir.retraining:
        for trigger in ir.retraining.triggers:
            yield f"trigger.{trigger.kind}", f"retraining.triggers.{trigger.id}"
    if ir.serving:
        yield "serving", "serving"
        if ir.serving.accelerator == "gpu":
            yield "serving.gpu", "serving.accelerator"
        if ir.serving.replicas_max > ir.serving.replicas_min:
            yield "serving.autoscaling", "serving.replicas"
        yield f"rollout.{ir.serving.rollout.strategy}", "serving.rollout.strategy"
        if ir.serving.cache:
            yield "serving.cache", "serving.cache"
        if ir.serving.slo:
            yield "serving.slo", "serving.slo"
    if ir.infrastructure:
        yield f"infrastructure.{ir.infrastructure.cloud}", "infrastructure.cloud"
        if any(p.gpu_type for p in ir.infrastructure.node_pools):
            yield "infrastructure.gpu_pool", "infrastructure.node_pools"
        if ir.infrastructure.state:
            yield "infrastructure.state", "infrastructure.state"


class BaseBackend:
    """Shared base: checks the capability table, then calls generate(). Subclasses override tables and generate()."""

    name: ClassVar[str] = "base"
    version: ClassVar[str] = "0"
    # Features this backend cares about; those absent or False here are reported when the IR uses them.
    capabilities: ClassVar[Mapping[str, bool]] = {}
    # Features outside this backend's concern: silently not its job (e.g. infrastructure for Airflow).
    not_applicable: ClassVar[frozenset[str]] = frozenset()

    def emit(self, ir: IR, ctx: EmitContext) -> list[Artifact]:
        reported = set()
        for feature, where in features_used(ir):
            if feature in self.not_applicable or self.capabilities.get(feature, False):
                continue
            if (feature, where) not in reported:
                reported.add((feature, where))
                self.unsupported(ctx, feature, "not in this backend's capability table", where)
        return self.generate(ir, ctx)

    def unsupported(self, ctx: EmitContext, feature: str, message: str, where: str = "") -> None:
        ctx.unsupported(self.name, feature, message, where)

    def generate(self, ir: IR, ctx: EmitContext) -> list[Artifact]:
        raise NotImplementedError


class IRBackend(BaseBackend):
    """The in-core target: the IR itself as JSON, for inspection and for other tools."""

    name = "ir"
    version = "1"
    capabilities = dict.fromkeys(FEATURES, True)

    def generate(self, ir: IR, ctx: EmitContext) -> list[Artifact]:
        return [Artifact("ir.json", ir.to_json())]


def available_backends() -> dict[str, type | EntryPoint]:
    """Backend name -> its class (in-core) or its entry point, loaded only when used (heavy imports)."""
    found: dict[str, type | EntryPoint] = {"ir": IRBackend}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in found:
            continue
        found[ep.name] = ep
    return found


def load_backend(name: str) -> Backend:
    backends = available_backends()
    if name not in backends:
        hint = did_you_mean(name, backends) or f"installed: {', '.join(sorted(backends))}"
        raise MlspecError(
            [Diagnostic("MS302", f"no backend named '{name}' is installed", Location("<cli>"), hint=hint)]
        )
    target = backends[name]
    cls = target if isinstance(target, type) else target.load()
    backend = cls()
    if not isinstance(backend, Backend):
        raise MlspecError(
            [
                Diagnostic(
                    "MS302", f"backend '{name}' does not implement the Backend protocol", Location("<cli>")
                )
            ]
        )
    return backend
