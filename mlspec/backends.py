"""The backend seam: the Backend protocol, discovery through entry points, and the unsupported() path.

A backend reads the IR only. It declares what it can express as a capability table; every IR feature it
cannot express becomes a diagnostic (an error unless --allow-unsupported), never a silent drop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from importlib.metadata import EntryPoint, entry_points
from typing import ClassVar, Protocol, runtime_checkable

from mlspec.diagnostics import Diagnostic, Location, MlspecError, Severity, did_you_mean
from mlspec.ir.model import IR

ENTRY_POINT_GROUP = "mlspec.backends"
KeyPath = tuple[str | int, ...]


class Feature(StrEnum):
    """Every IR feature a backend may or may not express."""

    PIPELINE_TRAINING = "pipeline.training"
    PIPELINE_MONITORING = "pipeline.monitoring"
    STEP_USER = "step.user"
    STEP_GPU = "step.gpu"
    STEP_RETRIES = "step.retries"
    STEP_TIMEOUT = "step.timeout"
    STEP_CACHE = "step.cache"
    GATES = "gates"
    TUNING_FAN_OUT = "tuning.fan_out"
    TRAINING_DISTRIBUTED = "training.distributed"
    TRIGGER_SCHEDULE = "trigger.schedule"
    TRIGGER_DRIFT = "trigger.drift"
    TRIGGER_PERFORMANCE = "trigger.performance"
    TRIGGER_VOLUME = "trigger.volume"
    TRIGGER_DATA_QUALITY = "trigger.data_quality"
    SERVING = "serving"
    SERVING_GPU = "serving.gpu"
    SERVING_AUTOSCALING = "serving.autoscaling"
    ROLLOUT_ROLLING = "rollout.rolling"
    ROLLOUT_CANARY = "rollout.canary"
    ROLLOUT_BLUE_GREEN = "rollout.blue-green"
    ROLLOUT_SHADOW = "rollout.shadow"
    ROLLOUT_A_B = "rollout.a-b"
    ROLLOUT_EXPERIMENT_DURATION = "rollout.experiment_duration"
    SERVING_CACHE = "serving.cache"
    SERVING_SLO = "serving.slo"
    INFRASTRUCTURE_NONE = "infrastructure.none"
    INFRASTRUCTURE_AWS = "infrastructure.aws"
    INFRASTRUCTURE_GCP = "infrastructure.gcp"
    INFRASTRUCTURE_NO_ACCOUNT_ID = "infrastructure.no_account_id"
    INFRASTRUCTURE_GPU_POOL = "infrastructure.gpu_pool"
    INFRASTRUCTURE_AMD_GPU_POOL = "infrastructure.amd_gpu_pool"
    INFRASTRUCTURE_STATE = "infrastructure.state"
    # a tainted pool the Cluster Autoscaler scales up from zero nodes: it must learn the taints from AWS
    INFRASTRUCTURE_TAINTED_POOL_FROM_ZERO = "infrastructure.tainted_pool_from_zero"


FEATURES = tuple(Feature)


class Support(Enum):
    """A backend's support for a feature: a state, not a boolean (dbt's capability model)."""

    FULL = "full"
    NOT_YET = "not built yet"  # the target could express it; this backend does not yet
    IMPOSSIBLE = "the engine cannot"  # the target system has no way to express it
    NOT_APPLICABLE = "not its concern"  # e.g. serving for an orchestrator: another target expresses it

    @property
    def compiles(self) -> bool:
        return self in (Support.FULL, Support.NOT_APPLICABLE)


def capability_table(
    *,
    full: tuple[Feature, ...] = (),
    not_yet: tuple[Feature, ...] = (),
    impossible: tuple[Feature, ...] = (),
) -> dict[Feature, Support]:
    """A complete table: the listed states, every other feature NOT_APPLICABLE (another target's concern)."""
    table = dict.fromkeys(Feature, Support.NOT_APPLICABLE)
    for features, support in (
        (full, Support.FULL),
        (not_yet, Support.NOT_YET),
        (impossible, Support.IMPOSSIBLE),
    ):
        for feature in features:
            if table[feature] is not Support.NOT_APPLICABLE:
                raise ValueError(f"feature {feature} is listed twice in a capability table")
            table[feature] = support
    return table


ORCHESTRATION = (
    Feature.PIPELINE_TRAINING,
    Feature.PIPELINE_MONITORING,
    Feature.STEP_USER,
    Feature.STEP_GPU,
    Feature.STEP_RETRIES,
    Feature.STEP_TIMEOUT,
    Feature.GATES,
    Feature.TUNING_FAN_OUT,
    Feature.TRIGGER_SCHEDULE,
    Feature.TRIGGER_DRIFT,
    Feature.TRIGGER_PERFORMANCE,
    Feature.TRIGGER_VOLUME,
    Feature.TRIGGER_DATA_QUALITY,
)


@dataclass(frozen=True)
class Usage:
    """One use of a feature by an IR: where in the IR, and the spec key path that causes it."""

    feature: Feature
    where: str
    spec_path: KeyPath


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
    # spec key path -> its position in the spec file (compile passes the loaded spec's source map)
    locate: Callable[[KeyPath], Location] | None = None

    def unsupported(
        self, backend: str, feature: str, message: str, where: str = "", spec_path: KeyPath = ()
    ) -> None:
        self.diagnostics.append(
            unsupported_diagnostic(
                backend,
                feature,
                message,
                where,
                self.locate(spec_path) if self.locate else Location(self.spec_path),
                self.allow_unsupported,
                spec_path,
            )
        )


def unsupported_diagnostic(
    backend: str,
    feature: str,
    message: str,
    where: str,
    location: Location,
    allow: bool = False,
    spec_path: KeyPath = (),
) -> Diagnostic:
    """MS301: the one shape of a backend's "cannot express" finding, from compile and from lint alike."""
    text = f"{backend} cannot express {feature}: {message}" + (f" (at {where})" if where else "")
    return Diagnostic(
        "MS301",
        text,
        location,
        severity=Severity.WARNING if allow else Severity.ERROR,
        hint=None
        if allow
        else f"drop {backend} from targets, change the spec, or compile with --allow-unsupported",
        key_path=spec_path,
    )


@runtime_checkable
class Backend(Protocol):
    name: str
    version: str
    capabilities: Mapping[Feature, Support]

    def emit(self, ir: IR, ctx: EmitContext) -> list[Artifact]: ...


def features_used(ir: IR) -> Iterator[Usage]:
    """Every use of a feature by this IR, located at the spec key that causes it."""
    user_index = {}
    for pipeline in ir.pipelines:
        user_index.update({s.id: i for i, s in enumerate(s for s in pipeline.steps if s.kind == "user")})
    for pipeline in ir.pipelines:
        yield Usage(Feature(f"pipeline.{pipeline.id}"), f"pipelines.{pipeline.id}", (pipeline.id,))
        for step in pipeline.steps:
            where = f"pipelines.{pipeline.id}.steps.{step.id}"
            spec_step: KeyPath = ("steps", user_index[step.id]) if step.kind == "user" else ("training",)
            if step.kind == "user":
                yield Usage(Feature.STEP_USER, where, spec_step)
            if step.placement.gpu:
                yield Usage(Feature.STEP_GPU, where, (*spec_step, "resources", "gpu"))
            if step.retries:
                yield Usage(Feature.STEP_RETRIES, where, (*spec_step, "retries"))
            if step.timeout_seconds:
                yield Usage(Feature.STEP_TIMEOUT, where, (*spec_step, "timeout"))
            if step.cache:
                yield Usage(Feature.STEP_CACHE, where, (*spec_step, "cache"))
            if step.fan_out:
                yield Usage(Feature.TUNING_FAN_OUT, where, ("training", "tuning"))
        if any(c.gates for c in pipeline.conditions):
            yield Usage(Feature.GATES, f"pipelines.{pipeline.id}.conditions", ("evaluation", "gates"))
    distribution = ir.training.distribution
    if distribution is not None and distribution.nodes > 1:
        yield Usage(
            Feature.TRAINING_DISTRIBUTED, "training.distribution", ("training", "distributed", "workers")
        )
    if ir.retraining:
        for index, trigger in enumerate(ir.retraining.triggers):
            yield Usage(
                Feature(f"trigger.{trigger.kind}"),
                f"retraining.triggers.{trigger.id}",
                ("retraining", "triggers", index),
            )
    if ir.serving:
        s = ir.serving
        yield Usage(Feature.SERVING, "serving", ("serving",))
        if s.placement.gpu:
            yield Usage(Feature.SERVING_GPU, "serving.placement", ("serving", "accelerator"))
        if s.replicas_max > s.replicas_min:
            yield Usage(Feature.SERVING_AUTOSCALING, "serving.replicas", ("serving", "replicas"))
        yield Usage(
            Feature(f"rollout.{s.rollout.strategy}"),
            "serving.rollout.strategy",
            ("serving", "rollout", "strategy"),
        )
        if s.rollout.experiment_duration_seconds:
            yield Usage(
                Feature.ROLLOUT_EXPERIMENT_DURATION,
                "serving.rollout.experiment_duration_seconds",
                ("serving", "rollout", "experiment_duration"),
            )
        if s.cache:
            yield Usage(Feature.SERVING_CACHE, "serving.cache", ("serving", "cache"))
        if s.slo.objective:
            yield Usage(Feature.SERVING_SLO, "serving.slo", ("serving", "slo"))
    infra = ir.infrastructure
    if infra is None:
        yield Usage(Feature.INFRASTRUCTURE_NONE, "infrastructure", ("targets",))
        return
    yield Usage(Feature(f"infrastructure.{infra.cloud}"), "infrastructure.cloud", ("infrastructure", "cloud"))
    if infra.cloud == "aws" and infra.account_id is None:
        yield Usage(Feature.INFRASTRUCTURE_NO_ACCOUNT_ID, "infrastructure.account_id", ("infrastructure",))
    for pool in infra.node_pools:
        where, path = f"infrastructure.node_pools.{pool.id}", ("infrastructure", "node_pools", pool.id)
        if pool.gpu:
            yield Usage(Feature.INFRASTRUCTURE_GPU_POOL, where, path)
            if pool.gpu.vendor == "amd":
                yield Usage(Feature.INFRASTRUCTURE_AMD_GPU_POOL, where, (*path, "instance_type"))
        if pool.taints and pool.min == 0 < pool.max and ir.component("cluster-autoscaler"):
            yield Usage(Feature.INFRASTRUCTURE_TAINTED_POOL_FROM_ZERO, where, path)
    if infra.state:
        yield Usage(Feature.INFRASTRUCTURE_STATE, "infrastructure.state", ("infrastructure", "state"))


def unsupported_usages(ir: IR, capabilities: Mapping[Feature, Support]) -> Iterator[Usage]:
    """The usages this backend cannot compile, each feature at each place once."""
    seen = set()
    for usage in features_used(ir):
        support = capabilities.get(usage.feature, Support.NOT_YET)
        if not support.compiles and (usage.feature, usage.where) not in seen:
            seen.add((usage.feature, usage.where))
            yield usage


class BaseBackend:
    """Shared base: checks the capability table, then calls generate(). Subclasses override tables and generate().

    The table must name every Feature (a test checks): FULL, NOT_YET, IMPOSSIBLE or NOT_APPLICABLE.
    """

    name: ClassVar[str] = "base"
    version: ClassVar[str] = "0"
    capabilities: ClassVar[Mapping[Feature, Support]] = {}
    # Why a feature is not supported, shown in MS301 after the state (optional, per feature).
    reasons: ClassVar[Mapping[Feature, str]] = {}

    def capabilities_for(self, ir: IR, options: Mapping[str, str]) -> Mapping[Feature, Support]:
        """The capability table for this compile (a backend with modes picks the mode's table)."""
        return self.capabilities

    def reason(self, feature: Feature, support: Support) -> str:
        extra = self.reasons.get(feature)
        return f"{support.value}" + (f": {extra}" if extra else "")

    def check(self, ir: IR, options: Mapping[str, str]) -> Iterator[tuple[Usage, str]]:
        """(usage, why) for every feature of this IR this backend cannot express: what lint predicts."""
        capabilities = self.capabilities_for(ir, options)
        for usage in unsupported_usages(ir, capabilities):
            yield usage, self.reason(usage.feature, capabilities.get(usage.feature, Support.NOT_YET))

    def emit(self, ir: IR, ctx: EmitContext) -> list[Artifact]:
        for usage, why in self.check(ir, ctx.options):
            ctx.unsupported(self.name, usage.feature, why, usage.where, usage.spec_path)
        return self.generate(ir, ctx)

    def unsupported(self, ctx: EmitContext, feature: str, message: str, where: str = "") -> None:
        ctx.unsupported(self.name, feature, message, where)

    def generate(self, ir: IR, ctx: EmitContext) -> list[Artifact]:
        raise NotImplementedError


class IRBackend(BaseBackend):
    """The in-core target: the IR itself as JSON, for inspection and for other tools."""

    name = "ir"
    version = "2"
    capabilities = dict.fromkeys(FEATURES, Support.FULL)

    def generate(self, ir: IR, ctx: EmitContext) -> list[Artifact]:
        return [Artifact("ir.json", ir.to_json())]


# The backends this project ships, each a distribution `mlspec-<name>` and an extra `mlspec[<name>]`.
KNOWN_BACKENDS = ("kubeflow", "airflow", "terraform", "kubernetes", "cloudformation", "container", "ci")


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
        if name in KNOWN_BACKENDS:
            hint = (
                f"install it with: pip install 'mlspec[{name}]' (from a checkout: pip install -e "
                f"backends/{name}); installed: {', '.join(sorted(backends))}"
            )
        else:
            hint = did_you_mean(name, {*backends, *KNOWN_BACKENDS}) or (
                f"installed: {', '.join(sorted(backends))}; known: {', '.join(KNOWN_BACKENDS)}"
            )
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
