"""The model server's core objects: Namespace, ServiceAccounts, ConfigMap, pod template, Deployment,
Service, HorizontalPodAutoscaler and PodDisruptionBudget."""

from __future__ import annotations

import hashlib

from kubernetes import client as k

from mlspec import contracts
from mlspec.ir.model import IR, ServiceAccount, Serving
from mlspec.ir.policy import MAX_SURGE_PERCENT
from mlspec_kubernetes import pod
from mlspec_kubernetes.meta import CONFIG_DIR, IR_FILE, labels, metadata, selector

RPS_METRIC = "mlspec_requests_per_second"  # served by prometheus-adapter from mlspec_requests_total
PSS_VERSION_LABELS = ("enforce", "audit", "warn")


def namespace(ir: IR, mesh: bool = False) -> k.V1Namespace:
    pss = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in PSS_VERSION_LABELS}
    if mesh:  # shadow and a-b route through Istio sidecars (needs the Istio CNI plugin under PSS restricted)
        pss["istio-injection"] = "enabled"
    meta = k.V1ObjectMeta(
        name=ir.system.namespace, labels={**labels(ir, ir.system.namespace, "namespace"), **pss}
    )
    return k.V1Namespace(api_version="v1", kind="Namespace", metadata=meta)


def service_account(ir: IR, sa: ServiceAccount) -> k.V1ServiceAccount:
    # IRSA: the EKS pod identity webhook projects the web-identity token into pods of an annotated
    # ServiceAccount itself, so the Kubernetes API token is never needed and is not mounted.
    annotations = {"eks.amazonaws.com/role-arn": sa.role_arn} if sa.role_arn else None
    meta = metadata(ir, sa.name, sa.id, annotations)
    return k.V1ServiceAccount(
        api_version="v1", kind="ServiceAccount", metadata=meta, automount_service_account_token=False
    )


def config_map(ir: IR, name: str, ir_json: str) -> k.V1ConfigMap:
    return k.V1ConfigMap(
        api_version="v1",
        kind="ConfigMap",
        metadata=metadata(ir, name, "config"),
        data={contracts.IR_FILE: ir_json},
    )


def config_volume(config_name: str) -> tuple[k.V1Volume, k.V1VolumeMount]:
    source = k.V1ConfigMapVolumeSource(
        name=config_name, items=[k.V1KeyToPath(key=contracts.IR_FILE, path=contracts.IR_FILE)]
    )
    return (
        k.V1Volume(name="config", config_map=source),
        k.V1VolumeMount(name="config", mount_path=CONFIG_DIR, read_only=True),
    )


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def server_pod_template(
    ir: IR, name: str, variant: str | None, config_name: str, ir_json: str, model_uri: str | None = None
) -> k.V1PodTemplateSpec:
    """The hardened server pod. A changed IR changes the checksum annotation, hence a new revision."""
    s = ir.serving
    assert s is not None
    args = ["serve", IR_FILE, "--host", "0.0.0.0", "--port", str(s.port)]
    if model_uri:
        args += ["--model", model_uri]
    tmp, tmp_mount = pod.tmp_volume()
    cfg, cfg_mount = config_volume(config_name)
    container = k.V1Container(
        name="server",
        image=ir.images["runtime"],
        image_pull_policy="Always",
        command=["mlspec"],
        args=args,
        ports=[k.V1ContainerPort(name=contracts.PORT_NAME, container_port=s.port, protocol="TCP")],
        env=[
            k.V1EnvVar(name="HOME", value="/tmp"),
            # logged with every prediction; a Rollout's stable and canary revisions both serve the champion
            k.V1EnvVar(name=contracts.VARIANT_ENV, value=variant or contracts.CHAMPION),
        ],
        resources=pod.resources(s.placement),
        security_context=pod.container_security_context(),
        volume_mounts=[cfg_mount, tmp_mount],
        **pod.http_probes(gpu=s.placement.gpu is not None),
    )
    spec = k.V1PodSpec(
        service_account_name=ir.service_account(s.service_account).name,
        automount_service_account_token=False,
        enable_service_links=False,
        security_context=pod.pod_security_context(),
        containers=[container],
        volumes=[cfg, tmp],
        **pod.scheduling(s.placement),
        topology_spread_constraints=pod.spread(selector(ir, name)),
        termination_grace_period_seconds=30,
    )
    extra = (
        {contracts.VARIANT_LABEL: variant} if variant else {}
    )  # Rollouts label their variants via canary/stableMetadata
    meta = k.V1ObjectMeta(
        labels=labels(ir, name, "server", **extra),
        annotations={contracts.CONFIG_SHA_ANNOTATION: checksum(ir_json)},
    )
    return k.V1PodTemplateSpec(metadata=meta, spec=spec)


def autoscaled(s: Serving) -> bool:
    return s.replicas_max > s.replicas_min


def deployment(
    ir: IR, name: str, template: k.V1PodTemplateSpec, replicas: int | None, component: str = "server"
) -> k.V1Deployment:
    strategy = k.V1DeploymentStrategy(
        type="RollingUpdate",
        # the surge lint sizes the serving pool for (mlspec.ir.policy.peak_server_pods, MS224)
        rolling_update=k.V1RollingUpdateDeployment(max_surge=f"{MAX_SURGE_PERCENT}%", max_unavailable=0),
    )
    spec = k.V1DeploymentSpec(
        replicas=replicas,
        selector=k.V1LabelSelector(match_labels=selector(ir, name)),
        template=template,
        strategy=strategy,
        revision_history_limit=5,
    )
    return k.V1Deployment(
        api_version="apps/v1", kind="Deployment", metadata=metadata(ir, name, component), spec=spec
    )


def service(
    ir: IR, name: str, target: str, port: int, component: str = "server", port_name: str = contracts.PORT_NAME
) -> k.V1Service:
    spec = k.V1ServiceSpec(
        type="ClusterIP",
        selector=selector(ir, target),
        ports=[k.V1ServicePort(name=port_name, port=port, target_port=port_name, protocol="TCP")],
    )
    return k.V1Service(api_version="v1", kind="Service", metadata=metadata(ir, name, component), spec=spec)


def hpa(
    ir: IR, name: str, target_api: str, target_kind: str, min_replicas: int | None = None
) -> k.V2HorizontalPodAutoscaler:
    s = ir.serving
    assert s is not None
    metrics = []
    if s.target_cpu_percent:
        metrics.append(
            k.V2MetricSpec(
                type="Resource",
                resource=k.V2ResourceMetricSource(
                    name="cpu",
                    target=k.V2MetricTarget(type="Utilization", average_utilization=s.target_cpu_percent),
                ),
            )
        )
    if s.target_rps_per_replica:
        metrics.append(
            k.V2MetricSpec(
                type="Pods",
                pods=k.V2PodsMetricSource(
                    metric=k.V2MetricIdentifier(name=RPS_METRIC),
                    target=k.V2MetricTarget(
                        type="AverageValue", average_value=_quantity(s.target_rps_per_replica)
                    ),
                ),
            )
        )
    behavior = k.V2HorizontalPodAutoscalerBehavior(
        scale_down=k.V2HPAScalingRules(
            stabilization_window_seconds=300,
            policies=[k.V2HPAScalingPolicy(type="Percent", value=50, period_seconds=60)],
        ),
        scale_up=k.V2HPAScalingRules(
            stabilization_window_seconds=0,
            policies=[k.V2HPAScalingPolicy(type="Percent", value=100, period_seconds=30)],
        ),
    )
    spec = k.V2HorizontalPodAutoscalerSpec(
        scale_target_ref=k.V2CrossVersionObjectReference(api_version=target_api, kind=target_kind, name=name),
        min_replicas=min_replicas or s.replicas_min,
        max_replicas=s.replicas_max,
        metrics=metrics or None,
        behavior=behavior,
    )
    return k.V2HorizontalPodAutoscaler(
        api_version="autoscaling/v2",
        kind="HorizontalPodAutoscaler",
        metadata=metadata(ir, name, "server"),
        spec=spec,
    )


def _quantity(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{round(value * 1000)}m"


def pdb(ir: IR, name: str, component: str = "server") -> k.V1PodDisruptionBudget:
    # maxUnavailable rather than minAvailable: a one-replica workload must still allow node drains.
    spec = k.V1PodDisruptionBudgetSpec(
        max_unavailable=1, selector=k.V1LabelSelector(match_labels=selector(ir, name))
    )
    return k.V1PodDisruptionBudget(
        api_version="policy/v1", kind="PodDisruptionBudget", metadata=metadata(ir, name, component), spec=spec
    )
