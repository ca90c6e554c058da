"""Pod hardening at the Pod Security Standards "restricted" level, probes, and the IR placement as
resources and scheduling."""

from __future__ import annotations

from typing import Any

from kubernetes import client as k

from mlspec import contracts
from mlspec.ir.model import Placement
from mlspec_kubernetes.meta import UID


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


def resources(placement: Placement) -> k.V1ResourceRequirements:
    """Requests equal limits (Guaranteed QoS): predictable latency and no CPU-throttling surprises.
    A GPU is the extended resource the placement names (its vendor's device-plugin resource)."""
    amounts = {"cpu": placement.cpu, "memory": placement.memory}
    if placement.gpu is not None:
        amounts[placement.gpu.resource] = str(placement.gpu.count)
    return k.V1ResourceRequirements(requests=dict(amounts), limits=dict(amounts))


def scheduling(placement: Placement) -> dict[str, Any]:
    """node_selector and tolerations of a pod spec: the placement's pool, or nothing when unpinned."""
    tolerations = [
        k.V1Toleration(key=t.key, operator="Equal", value=t.value, effect=t.effect)
        for t in placement.tolerations
    ]
    return {"node_selector": dict(placement.node_selector) or None, "tolerations": tolerations or None}


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


def http_probes(gpu: bool) -> dict[str, k.V1Probe]:
    """Startup allows for the model download and load (longer on GPU); liveness only after startup."""

    def probe(path: str, period: int, failures: int, timeout: int = 2) -> k.V1Probe:
        return k.V1Probe(
            http_get=k.V1HTTPGetAction(path=path, port=contracts.PORT_NAME),
            period_seconds=period,
            timeout_seconds=timeout,
            failure_threshold=failures,
            success_threshold=1,
        )

    return {
        "startup_probe": probe(contracts.HEALTH_READY_PATH, 5, 120 if gpu else 60),
        "readiness_probe": probe(contracts.HEALTH_READY_PATH, 5, 3),
        "liveness_probe": probe(contracts.HEALTH_LIVE_PATH, 10, 3),
    }
