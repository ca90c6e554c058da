"""NetworkPolicies: deny everything, then allow exactly the flows the system needs."""

from __future__ import annotations

from urllib.parse import urlparse

from kubernetes import client as k

from mlspec.contracts import REDIS_PORT, STEP_LABEL, SYSTEM_LABEL
from mlspec.ir.model import IR
from mlspec.ir.platform import MONITORING_NAMESPACE, PUSHGATEWAY_PORT
from mlspec_kubernetes.meta import metadata, selector, serving_of

ISTIOD_PORT = 15012


def _policy(
    ir: IR,
    name: str,
    pod_labels: dict[str, str] | None,
    ingress=None,
    egress=None,
    types=("Ingress", "Egress"),
) -> k.V1NetworkPolicy:
    spec = k.V1NetworkPolicySpec(
        pod_selector=k.V1LabelSelector(match_labels=pod_labels),
        policy_types=list(types),
        ingress=ingress,
        egress=egress,
    )
    return k.V1NetworkPolicy(
        api_version="networking.k8s.io/v1",
        kind="NetworkPolicy",
        metadata=metadata(ir, name, "network"),
        spec=spec,
    )


def _ports(*ports: tuple[int | str, str]) -> list[k.V1NetworkPolicyPort]:
    return [k.V1NetworkPolicyPort(port=port, protocol=proto) for port, proto in ports]


def _external_egress(ir: IR, mesh: bool) -> list[k.V1NetworkPolicyEgressRule]:
    """HTTPS for S3, STS (IRSA token exchange) and the registry; the tracking server's own port if any."""
    ports = [(443, "TCP")]
    tracking = urlparse(ir.registry.tracking_uri)
    if tracking.scheme in ("http", "https") and tracking.port and tracking.port != 443:
        ports.append((tracking.port, "TCP"))
    rules = [k.V1NetworkPolicyEgressRule(ports=_ports(*ports))]
    if mesh:
        rules.append(
            k.V1NetworkPolicyEgressRule(
                to=[
                    k.V1NetworkPolicyPeer(
                        namespace_selector=k.V1LabelSelector(
                            match_labels={"kubernetes.io/metadata.name": "istio-system"}
                        )
                    )
                ],
                ports=_ports((ISTIOD_PORT, "TCP")),
            )
        )
    return rules


def policies(
    ir: IR,
    servers: list[str],
    cache: str | None,
    jobs: list[str],
    mesh: bool,
    pipeline_pods: bool = False,
    analysis: tuple[str, str] | None = None,
    monitor: str | None = None,
) -> list:
    """`jobs`: the CronJobs' names; `analysis`: (the analysis CronJob, the Prometheus address it reads);
    `monitor`: the monitor CronJob among them."""
    s = serving_of(ir)
    out = [
        _policy(ir, "default-deny", None),
        _policy(
            ir,
            "allow-dns",
            None,
            egress=[
                k.V1NetworkPolicyEgressRule(
                    to=[
                        k.V1NetworkPolicyPeer(
                            namespace_selector=k.V1LabelSelector(
                                match_labels={"kubernetes.io/metadata.name": "kube-system"}
                            )
                        )
                    ],
                    ports=_ports((53, "UDP"), (53, "TCP")),
                )
            ],
            types=("Egress",),
        ),
    ]
    for name in servers:
        # Clients, the mesh and Prometheus (it scrapes /metrics on the serving port) from inside the cluster.
        ingress = [
            k.V1NetworkPolicyIngressRule(
                _from=[k.V1NetworkPolicyPeer(namespace_selector=k.V1LabelSelector())],
                ports=_ports((s.port, "TCP")),
            )
        ]
        egress = _external_egress(ir, mesh)
        if cache:
            egress.append(
                k.V1NetworkPolicyEgressRule(
                    to=[
                        k.V1NetworkPolicyPeer(
                            pod_selector=k.V1LabelSelector(match_labels=selector(ir, cache))
                        )
                    ],
                    ports=_ports((REDIS_PORT, "TCP")),
                )
            )
        out.append(_policy(ir, name, selector(ir, name), ingress=ingress, egress=egress))
    if cache:
        peers = [
            k.V1NetworkPolicyPeer(pod_selector=k.V1LabelSelector(match_labels=selector(ir, n)))
            for n in servers
        ]
        out.append(
            _policy(
                ir,
                cache,
                selector(ir, cache),
                types=("Ingress",),
                ingress=[k.V1NetworkPolicyIngressRule(_from=peers, ports=_ports((REDIS_PORT, "TCP")))],
            )
        )
    for job in jobs:
        # the loop's CronJobs: S3, STS and the registry (the monitor's API calls go to the API server on 443);
        # the rollout analysis also reads Prometheus, the monitor pushes its gauges to the Pushgateway
        egress = _external_egress(ir, mesh=False)
        port = urlparse(analysis[1]).port if analysis and analysis[0] == job else None
        if port and port != 443:
            egress.append(k.V1NetworkPolicyEgressRule(ports=_ports((port, "TCP"))))
        if job == monitor and ir.component("pushgateway") is not None:
            egress.append(
                k.V1NetworkPolicyEgressRule(
                    to=[
                        k.V1NetworkPolicyPeer(
                            namespace_selector=k.V1LabelSelector(
                                match_labels={"kubernetes.io/metadata.name": MONITORING_NAMESPACE}
                            ),
                            pod_selector=k.V1LabelSelector(
                                match_labels={"app.kubernetes.io/name": "pushgateway"}
                            ),
                        )
                    ],
                    ports=_ports((PUSHGATEWAY_PORT, "TCP")),
                )
            )
        out.append(_policy(ir, job, selector(ir, job), types=("Egress",), egress=egress))
    if pipeline_pods:
        # Pipeline step pods that orchestrators start in this namespace (Airflow's KubernetesPodOperator
        # labels them mlspec.io/system and mlspec.io/step) reach S3, STS and the registry, nothing else.
        out.append(
            _policy(
                ir,
                f"{ir.system.name}-pipeline-steps",
                None,
                types=("Egress",),
                egress=_external_egress(ir, mesh=False),
            )
        )
        out[-1].spec.pod_selector = k.V1LabelSelector(
            match_labels={SYSTEM_LABEL: ir.system.name},
            match_expressions=[k.V1LabelSelectorRequirement(key=STEP_LABEL, operator="Exists")],
        )
    return out


def peers_policy(ir: IR, name: str, pods: dict[str, str]) -> k.V1NetworkPolicy:
    """Pods that talk to each other on any port (distributed training: the rendezvous, then NCCL's or gloo's
    own ports), and to S3, STS and the registry."""
    peers = [k.V1NetworkPolicyPeer(pod_selector=k.V1LabelSelector(match_labels=pods))]
    return _policy(
        ir,
        name,
        pods,
        ingress=[k.V1NetworkPolicyIngressRule(_from=peers)],
        egress=[k.V1NetworkPolicyEgressRule(to=peers), *_external_egress(ir, mesh=False)],
    )
