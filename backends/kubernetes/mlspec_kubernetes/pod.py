"""Pod hardening at the Pod Security Standards "restricted" level, resources, probes and scheduling."""

from __future__ import annotations

from kubernetes import client as k

from mlspec.ir.model import IR, NodePool, Resources
from mlspec_kubernetes.meta import UID

DEFAULT_CPU = "500m"
DEFAULT_MEMORY = "512Mi"


def pod_security_context() -> k.V1PodSecurityContext:
    return k.V1PodSecurityContext(
        run_as_non_root=True,
        run_as_user=UID,
        run_as_group=UID,
        fs_group=UID,
        seccomp_profile=k.V1SeccompProfile(type="RuntimeDefault"),
    )


def container_security_context() -> k.V1SecurityContext:
    return k.V1SecurityContext(
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        run_as_user=UID,
        run_as_group=UID,
        capabilities=k.V1Capabilities(drop=["ALL"]),
        seccomp_profile=k.V1SeccompProfile(type="RuntimeDefault"),
    )


def gpu_resource_name(gpu_type: str | None) -> str:
    return "amd.com/gpu" if (gpu_type or "").startswith("amd") else "nvidia.com/gpu"


def resources(res: Resources) -> k.V1ResourceRequirements:
    """Requests equal limits (Guaranteed QoS): predictable latency and no CPU-throttling surprises."""
    amounts = {"cpu": res.cpu or DEFAULT_CPU, "memory": res.memory or DEFAULT_MEMORY}
    limits = dict(amounts)
    if res.gpu_count:
        limits[gpu_resource_name(res.gpu_type)] = str(res.gpu_count)
    return k.V1ResourceRequirements(requests=dict(amounts), limits=limits)


def node_pool_for(ir: IR, res: Resources) -> NodePool | None:
    """The IR node pool a workload targets: its named pool, else the pool of its GPU type."""
    pool = ir.node_pool(res.node_pool)
    if pool is None and res.gpu_count and ir.infrastructure:
        pools = [p for p in ir.infrastructure.node_pools if p.gpu_count]
        pool = next((p for p in pools if p.gpu_type == res.gpu_type), pools[0] if pools else None)
    return pool


def tolerations(pool: NodePool | None) -> list[k.V1Toleration] | None:
    if pool is None or not pool.taints:
        return None
    return [k.V1Toleration(key=t.key, operator="Equal", value=t.value, effect=t.effect) for t in pool.taints]


def spread(match_labels: dict[str, str]) -> list[k.V1TopologySpreadConstraint]:
    # ScheduleAnyway: spreading must never block a scale-out during an incident.
    return [
        k.V1TopologySpreadConstraint(
            max_skew=1,
            topology_key=key,
            when_unsatisfiable="ScheduleAnyway",
            label_selector=k.V1LabelSelector(match_labels=dict(match_labels)),
        )
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]


def tmp_volume() -> tuple[k.V1Volume, k.V1VolumeMount]:
    return (
        k.V1Volume(name="tmp", empty_dir=k.V1EmptyDirVolumeSource(size_limit="1Gi")),
        k.V1VolumeMount(name="tmp", mount_path="/tmp"),
    )


def http_probes(port: int, gpu: bool) -> dict[str, k.V1Probe]:
    """Startup allows for the model download and load (longer on GPU); liveness only after startup."""

    def probe(path: str, period: int, failures: int, timeout: int = 2) -> k.V1Probe:
        return k.V1Probe(
            http_get=k.V1HTTPGetAction(path=path, port="http"),
            period_seconds=period,
            timeout_seconds=timeout,
            failure_threshold=failures,
            success_threshold=1,
        )

    return {
        "startup_probe": probe("/v2/health/ready", 5, 120 if gpu else 60),
        "readiness_probe": probe("/v2/health/ready", 5, 3),
        "liveness_probe": probe("/v2/health/live", 10, 3),
    }
