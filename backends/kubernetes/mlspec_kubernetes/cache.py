"""The prediction cache: a hardened single-replica Redis (losing it costs hit rate, not correctness)."""

from __future__ import annotations

from kubernetes import client as k

from mlspec.contracts import REDIS_PORT
from mlspec.ir.model import IR
from mlspec_kubernetes import pod
from mlspec_kubernetes.meta import labels, serving_of
from mlspec_kubernetes.workloads import deployment, service

DEFAULT_IMAGE = "docker.io/library/redis:7.4.2-alpine"
CPU, MEMORY_MI = "500m", 512
MAXMEMORY_MB = int(MEMORY_MI * 0.8)  # headroom under the container limit for Redis' own overhead


def objects(ir: IR, image: str) -> list:
    cache = serving_of(ir).cache
    if cache is None:
        return []
    name = cache.service
    data = k.V1Volume(name="data", empty_dir=k.V1EmptyDirVolumeSource(size_limit="1Gi"))
    tmp, tmp_mount = pod.tmp_volume()
    container = k.V1Container(
        name="redis",
        image=image,
        image_pull_policy="Always",
        command=["redis-server"],
        # No persistence and LRU eviction: a cache, not a store; protected mode is replaced by NetworkPolicy.
        args=[
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/data",
            "--port",
            str(REDIS_PORT),
            "--maxmemory",
            f"{MAXMEMORY_MB}mb",
            "--maxmemory-policy",
            "allkeys-lru",
            "--protected-mode",
            "no",
        ],
        ports=[k.V1ContainerPort(name="redis", container_port=REDIS_PORT, protocol="TCP")],
        resources=k.V1ResourceRequirements(
            requests={"cpu": CPU, "memory": f"{MEMORY_MI}Mi"}, limits={"cpu": CPU, "memory": f"{MEMORY_MI}Mi"}
        ),
        security_context=pod.container_security_context(),
        volume_mounts=[k.V1VolumeMount(name="data", mount_path="/data"), tmp_mount],
        readiness_probe=k.V1Probe(
            _exec=k.V1ExecAction(command=["redis-cli", "ping"]),
            period_seconds=5,
            timeout_seconds=2,
            failure_threshold=3,
        ),
        liveness_probe=k.V1Probe(
            tcp_socket=k.V1TCPSocketAction(port="redis"),
            period_seconds=10,
            timeout_seconds=2,
            failure_threshold=3,
        ),
    )
    # Next to a CPU server (on its pool, if pinned); never on a GPU server's accelerator nodes.
    placement = serving_of(ir).placement
    scheduling = pod.scheduling(placement) if placement.gpu is None else {}
    spec = k.V1PodSpec(
        automount_service_account_token=False,
        enable_service_links=False,
        security_context=pod.pod_security_context(),
        containers=[container],
        volumes=[data, tmp],
        **scheduling,
    )
    template = k.V1PodTemplateSpec(metadata=k.V1ObjectMeta(labels=labels(ir, name, "cache")), spec=spec)
    return [
        deployment(ir, name, template, 1, component="cache"),
        service(ir, name, name, REDIS_PORT, component="cache", port_name="redis"),
    ]
