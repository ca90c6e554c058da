"""The platform kustomization: the IR's platform rows that the cluster must run before the system's manifests.

`platform/` installs, once per cluster, every component whose `installed_by` is "kubernetes": pinned upstream
release manifests (raw files at the commit of a release tag, so the URL can never change under the pin),
images pinned by tag through kustomize's `images:`, and the configuration the IR decides (node pools'
taints and labels for the device plugin, the autoscaler's cluster and IRSA role, the Prometheus that selects
mlspec's ServiceMonitors and rules, the adapter rule that serves requests per second to the HPA).
Istio publishes charts, not release manifests: `platform/istio/` installs its pinned charts through
kustomize's Helm support (`kubectl kustomize --enable-helm`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlspec import contracts
from mlspec.backends import Artifact
from mlspec.ir import platform as pf
from mlspec.ir.catalog import GPU_VENDORS
from mlspec.ir.model import IR, PlatformComponent
from mlspec_kubernetes.render import dump
from mlspec_kubernetes.workloads import RPS_METRIC

PROMETHEUS_OPERATOR_CRDS = (
    "alertmanagerconfigs",
    "alertmanagers",
    "podmonitors",
    "probes",
    "prometheusagents",
    "prometheuses",
    "prometheusrules",
    "scrapeconfigs",
    "servicemonitors",
    "thanosrulers",
)
PROMETHEUS_OPERATOR_FILES = (
    "prometheus-operator-cluster-role.yaml",
    "prometheus-operator-cluster-role-binding.yaml",
    "prometheus-operator-service-account.yaml",
    "prometheus-operator-deployment.yaml",
    "prometheus-operator-service.yaml",
)
# The adapter's deploy/manifests serve resource metrics (metrics.k8s.io) by default; metrics-server does that
# here, so the APIService and the resource-metrics roles are left out and a custom-metrics APIService added.
PROMETHEUS_ADAPTER_FILES = (
    "cluster-role-binding-delegator.yaml",
    "cluster-role-binding-hpa-custom-metrics.yaml",
    "cluster-role-binding.yaml",
    "cluster-role.yaml",
    "config-map.yaml",
    "deployment.yaml",
    "network-policy.yaml",
    "pod-disruption-budget.yaml",
    "role-binding-auth-reader.yaml",
    "service-account.yaml",
    "service.yaml",
)
ADAPTER_PROMETHEUS_ARG = 3  # index of --prometheus-url in the upstream Deployment's args (pinned commit)
PLATFORM_LABELS = {
    "app.kubernetes.io/managed-by": contracts.MANAGED_BY,
    "app.kubernetes.io/part-of": "mlspec-platform",
}


@dataclass
class Kustomization:
    resources: list[str] = field(default_factory=list)
    patches: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, str]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    def add(self, path: str, *objects: dict[str, Any]) -> None:
        self.files[path] = "---\n".join(dump(o) for o in objects)
        self.resources.append(path)

    def patch(self, path: str, body: Any, target: dict[str, str] | None = None) -> None:
        self.files[path] = dump(body)
        self.patches.append({"path": path, **({"target": target} if target else {})})

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
        doc["resources"] = self.resources
        if self.patches:
            doc["patches"] = self.patches
        if self.images:
            doc["images"] = sorted(self.images, key=lambda i: i["name"])
        return doc


def _meta(name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = dict(PLATFORM_LABELS)
    return meta


def _namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(name)}


def rows(ir: IR) -> list[PlatformComponent]:
    return [c for c in ir.platform if c.installed_by == "kubernetes"]


def artifacts(ir: IR) -> list[Artifact]:
    """platform/ (and platform/istio/ when the mesh is needed); nothing when no row is the cluster's."""
    k = Kustomization()
    builders = {
        "metrics-server": _metrics_server,
        "cluster-autoscaler": _cluster_autoscaler,
        "nvidia-device-plugin": _nvidia_device_plugin,
        "prometheus-operator": _prometheus,
        "prometheus-adapter": _prometheus_adapter,
        "pushgateway": _pushgateway,
        "dcgm-exporter": _dcgm_exporter,
        "argo-rollouts": _argo_rollouts,
    }
    out: list[Artifact] = []
    for component in rows(ir):
        if component.id in builders:
            builders[component.id](ir, component, k)
        elif component.id == "istio":
            out += _istio(component)
        elif component.id == "grafana":
            out += _grafana(component)
    if k.resources:
        out += [Artifact(f"platform/{p}", text) for p, text in sorted(k.files.items())]
        out.append(Artifact("platform/kustomization.yaml", dump(k.document())))
    return sorted(out, key=lambda a: a.path)


def _metrics_server(ir: IR, c: PlatformComponent, k: Kustomization) -> None:
    k.resources.append(pf.METRICS_SERVER_MANIFEST)


def _cluster_autoscaler(ir: IR, c: PlatformComponent, k: Kustomization) -> None:
    infra = ir.infrastructure
    assert infra is not None
    upstream = pf.cluster_autoscaler(infra.cluster_version)
    k.resources.append(upstream.url(pf.CLUSTER_AUTOSCALER_MANIFEST))
    k.images.append({"name": "registry.k8s.io/autoscaling/cluster-autoscaler", "newTag": f"v{c.version}"})
    command = [
        "./cluster-autoscaler",
        "--v=4",
        "--stderrthreshold=info",
        "--cloud-provider=aws",
        "--skip-nodes-with-local-storage=false",
        "--expander=least-waste",
        "--balance-similar-node-groups",
        f"--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/{infra.cluster_name}",
    ]
    k.patch(
        "patches/cluster-autoscaler-command.yaml",
        [{"op": "replace", "path": "/spec/template/spec/containers/0/command", "value": command}],
        {
            "group": "apps",
            "version": "v1",
            "kind": "Deployment",
            "name": "cluster-autoscaler",
            "namespace": "kube-system",
        },
    )
    if c.role_arn:
        k.patch(
            "patches/cluster-autoscaler-irsa.yaml",
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {
                    "name": "cluster-autoscaler",
                    "namespace": "kube-system",
                    "annotations": {"eks.amazonaws.com/role-arn": c.role_arn},
                },
            },
        )


def _nvidia_device_plugin(ir: IR, c: PlatformComponent, k: Kustomization) -> None:
    """The device plugin runs on the NVIDIA pools only, tolerating exactly their taints."""
    k.resources.append(pf.NVIDIA_DEVICE_PLUGIN.url("deployments/static/nvidia-device-plugin.yml"))
    k.patch(
        "patches/nvidia-device-plugin-placement.yaml",
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "nvidia-device-plugin-daemonset", "namespace": "kube-system"},
            "spec": {"template": {"spec": _nvidia_nodes(ir)}},
        },
    )


def _nvidia_nodes(ir: IR) -> dict[str, Any]:
    """Tolerations and node affinity of a DaemonSet that runs on the NVIDIA pools only."""
    pools = [
        p
        for p in (ir.infrastructure.node_pools if ir.infrastructure else [])
        if p.gpu and p.gpu.vendor == "nvidia"
    ]
    # the upstream manifest's own toleration: the vendor's resource name as the taint key
    resource = next(v.resource for v in GPU_VENDORS if v.name == "nvidia")
    tolerations: list[dict[str, str]] = [{"key": resource, "operator": "Exists", "effect": "NoSchedule"}]
    for pool in pools:
        for t in pool.taints:
            toleration = {"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect}
            if toleration not in tolerations and not (t.key == resource and t.effect == "NoSchedule"):
                tolerations.append(toleration)
    spec: dict[str, Any] = {"tolerations": tolerations}
    if pools:
        products = sorted({p.gpu.product for p in pools if p.gpu})
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": contracts.ACCELERATOR_LABEL, "operator": "In", "values": products}
                            ]
                        }
                    ]
                }
            }
        }
    return spec


def _prometheus(ir: IR, c: PlatformComponent, k: Kustomization) -> None:
    """The operator (upstream, namespace default) and one Prometheus + Alertmanager that evaluate mlspec's
    ServiceMonitors and PrometheusRules in every namespace; the AnalysisTemplate queries prometheus-operated."""
    up = pf.PROMETHEUS_OPERATOR
    k.resources += [
        up.url(f"example/prometheus-operator-crd/monitoring.coreos.com_{n}.yaml")
        for n in PROMETHEUS_OPERATOR_CRDS
    ]
    k.resources += [up.url(f"example/rbac/prometheus-operator/{f}") for f in PROMETHEUS_OPERATOR_FILES]
    ns = pf.MONITORING_NAMESPACE
    name = pf.PROMETHEUS_NAME
    managed = {"matchLabels": {"app.kubernetes.io/managed-by": contracts.MANAGED_BY}}
    security = {
        "runAsNonRoot": True,
        "runAsUser": 65534,
        "runAsGroup": 65534,
        "fsGroup": 65534,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    k.add("namespace-monitoring.yaml", _namespace(ns))
    k.add(
        "prometheus-rbac.yaml",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(f"{name}-prometheus", ns)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta(f"{name}-prometheus"),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["services", "endpoints", "pods"],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["get", "list", "watch"],
                },
                {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
                {"nonResourceURLs": ["/metrics", "/metrics/cadvisor"], "verbs": ["get"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta(f"{name}-prometheus"),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": f"{name}-prometheus",
            },
            "subjects": [{"kind": "ServiceAccount", "name": f"{name}-prometheus", "namespace": ns}],
        },
    )
    k.add(
        "prometheus-mlspec.yaml",
        {
            "apiVersion": f"{pf.MONITORING_API}",
            "kind": "Prometheus",
            "metadata": _meta(name, ns),
            "spec": {
                "replicas": 2,
                "serviceAccountName": f"{name}-prometheus",
                "serviceMonitorSelector": managed,
                "serviceMonitorNamespaceSelector": {},
                "ruleSelector": managed,
                "ruleNamespaceSelector": {},
                "retention": "15d",
                "securityContext": security,
                "resources": {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"memory": "2Gi"}},
                "alerting": {
                    "alertmanagers": [{"namespace": ns, "name": "alertmanager-operated", "port": "web"}]
                },
            },
        },
        {
            "apiVersion": f"{pf.MONITORING_API}",
            "kind": "Alertmanager",
            "metadata": _meta(name, ns),
            "spec": {
                "replicas": 2,
                "securityContext": security,
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "256Mi"}},
            },
        },
    )

    kubernetes = ir.component("kubernetes")
    if kubernetes is not None and kubernetes.metrics:
        k.add("servicemonitor-kubelet-cadvisor.yaml", _kubelet_cadvisor(kubernetes.metrics))


def _kubelet_cadvisor(metrics: list[str]) -> dict[str, Any]:
    """The kubelet's cAdvisor endpoint (the Service the operator keeps in kube-system, --kubelet-service),
    keeping only the container metrics the dashboards query."""
    return {
        "apiVersion": pf.MONITORING_API,
        "kind": "ServiceMonitor",
        "metadata": _meta("kubelet-cadvisor", pf.MONITORING_NAMESPACE),
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "kubelet"}},
            "namespaceSelector": {"matchNames": ["kube-system"]},
            "jobLabel": "app.kubernetes.io/name",
            "endpoints": [
                {
                    "port": "https-metrics",
                    "scheme": "https",
                    "path": "/metrics/cadvisor",
                    "interval": "30s",
                    "honorLabels": True,
                    "honorTimestamps": False,
                    "bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token",
                    # kubelets serve self-signed certificates on EKS; the token authenticates Prometheus
                    "tlsConfig": {"insecureSkipVerify": True},
                    "metricRelabelings": [
                        {"action": "keep", "sourceLabels": ["__name__"], "regex": "|".join(sorted(metrics))}
                    ],
                }
            ],
        },
    }


def _pushgateway(ir: IR, c: PlatformComponent, k: Kustomization) -> None:
    """One Pushgateway for the monitoring CronJobs' gauges; honorLabels keeps their job and system labels."""
    ns, name, port = pf.MONITORING_NAMESPACE, "pushgateway", pf.PUSHGATEWAY_PORT
    selector = {"app.kubernetes.io/name": name}
    labels = {**PLATFORM_LABELS, **selector}
    container = {
        "name": name,
        "image": f"{pf.PUSHGATEWAY_IMAGE}:{c.version}",
        "args": [f"--web.listen-address=:{port}"],
        "ports": [{"name": "http", "containerPort": port}],
        "readinessProbe": {"httpGet": {"path": "/-/ready", "port": "http"}},
        "livenessProbe": {"httpGet": {"path": "/-/healthy", "port": "http"}},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    k.add(
        "pushgateway.yaml",
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {**_meta(name, ns), "labels": labels},
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {**_meta(name, ns), "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": name,
                        "automountServiceAccountToken": False,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65534,
                            "runAsGroup": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [container],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {**_meta(name, ns), "labels": labels},
            "spec": {"selector": selector, "ports": [{"name": "http", "port": port, "targetPort": "http"}]},
        },
        {
            "apiVersion": pf.MONITORING_API,
            "kind": "ServiceMonitor",
            "metadata": {**_meta(name, ns), "labels": labels},
            "spec": {
                "selector": {"matchLabels": selector},
                "namespaceSelector": {"matchNames": [ns]},
                "endpoints": [{"port": "http", "interval": "30s", "honorLabels": True}],
            },
        },
    )


def _dcgm_exporter(ir: IR, c: PlatformComponent, k: Kustomization) -> None:
    """NVIDIA's DCGM exporter on the NVIDIA pools (upstream DaemonSet and Service in kube-system), scraped with
    honorLabels so that its pod and namespace labels name the GPU's workload, not the exporter."""
    k.files["dcgm-exporter/kustomization.yaml"] = dump(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": "kube-system",
            "resources": [pf.DCGM_EXPORTER.url("dcgm-exporter.yaml"), "servicemonitor.yaml"],
            "patches": [{"path": "placement.yaml"}],
        }
    )
    k.files["dcgm-exporter/placement.yaml"] = dump(
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "dcgm-exporter"},
            "spec": {"template": {"spec": _nvidia_nodes(ir)}},
        }
    )
    k.files["dcgm-exporter/servicemonitor.yaml"] = dump(
        {
            "apiVersion": pf.MONITORING_API,
            "kind": "ServiceMonitor",
            "metadata": _meta("dcgm-exporter"),
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/name": "dcgm-exporter"}},
                "endpoints": [
                    {
                        "port": "metrics",
                        "interval": "30s",
                        "honorLabels": True,
                        "metricRelabelings": [
                            {
                                "action": "keep",
                                "sourceLabels": ["__name__"],
                                "regex": "|".join(sorted(c.metrics)),
                            }
                        ],
                    }
                ],
            },
        }
    )
    k.resources.append("dcgm-exporter")


def _prometheus_adapter(ir: IR, c: PlatformComponent, k: Kustomization) -> None:
    up = pf.PROMETHEUS_ADAPTER
    k.resources += [up.url(f"deploy/manifests/{f}") for f in PROMETHEUS_ADAPTER_FILES]
    group, version = pf.CUSTOM_METRICS_API.split("/")
    k.add(
        "prometheus-adapter-custom-metrics.yaml",
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": _meta(f"{version}.{group}"),
            "spec": {
                "group": group,
                "version": version,
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
                "insecureSkipTLSVerify": True,
                "service": {"name": "prometheus-adapter", "namespace": pf.MONITORING_NAMESPACE},
            },
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta("custom-metrics-server-resources"),
            "rules": [{"apiGroups": [group], "resources": ["*"], "verbs": ["get", "list", "watch"]}],
        },
    )
    # Requests per second per pod, from the counter the server exports: the HPA's Pods metric.
    config = {
        "rules": [
            {
                "seriesQuery": f'{contracts.REQUESTS_TOTAL}{{namespace!="",pod!=""}}',
                "resources": {
                    "overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
                },
                "name": {"matches": f"^{contracts.REQUESTS_TOTAL}$", "as": RPS_METRIC},
                "metricsQuery": "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)",
            }
        ]
    }
    k.patch(
        "patches/prometheus-adapter-config.yaml",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "adapter-config", "namespace": pf.MONITORING_NAMESPACE},
            "data": {"config.yaml": dump(config)},
        },
    )
    k.patch(
        "patches/prometheus-adapter-prometheus-url.yaml",
        [
            {
                "op": "replace",
                "path": f"/spec/template/spec/containers/0/args/{ADAPTER_PROMETHEUS_ARG}",
                "value": f"--prometheus-url={pf.PROMETHEUS_URL}/",
            }
        ],
        {
            "group": "apps",
            "version": "v1",
            "kind": "Deployment",
            "name": "prometheus-adapter",
            "namespace": pf.MONITORING_NAMESPACE,
        },
    )


def _argo_rollouts(ir: IR, c: PlatformComponent, k: Kustomization) -> None:
    k.add("namespace-argo-rollouts.yaml", _namespace("argo-rollouts"))
    k.resources.append(pf.ARGO_ROLLOUTS.url("manifests/install.yaml"))
    # The install manifest names :latest even at a release commit; the release's own tag is pinned here.
    k.images.append({"name": "quay.io/argoproj/argo-rollouts", "newTag": c.version})


def _istio(c: PlatformComponent) -> list[Artifact]:
    """base (CRDs), cni (sidecars without NET_ADMIN, as Pod Security "restricted" requires) and istiod."""

    def chart(
        name: str, release: str, namespace: str, values: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": name,
            "repo": pf.ISTIO_CHARTS,
            "version": c.version,
            "releaseName": release,
            "namespace": namespace,
            "includeCRDs": True,
        }
        if values:
            entry["valuesInline"] = values
        return entry

    doc = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["namespace-istio-system.yaml"],
        "helmCharts": [
            chart("base", "istio-base", "istio-system"),
            chart("cni", "istio-cni", "istio-system"),
            chart("istiod", "istiod", "istio-system", {"pilot": {"cni": {"enabled": True}}}),
        ],
    }
    return [
        Artifact("platform/istio/kustomization.yaml", dump(doc)),
        Artifact("platform/istio/namespace-istio-system.yaml", dump(_namespace("istio-system"))),
    ]


def _grafana(c: PlatformComponent) -> list[Artifact]:
    """Grafana from its pinned chart (kustomize's Helm support), provisioned with the Prometheus above and a
    sidecar that loads every ConfigMap labelled grafana_dashboard=1 in any namespace. The admin credentials
    come from a Secret you create (the README says how), so no password is generated or committed."""
    label, value = pf.GRAFANA_DASHBOARD_LABEL
    values = {
        "admin": {
            "existingSecret": "grafana-admin",  # pragma: allowlist secret
            "userKey": "admin-user",
            "passwordKey": "admin-password",  # pragma: allowlist secret
        },
        "sidecar": {
            "dashboards": {"enabled": True, "label": label, "labelValue": value, "searchNamespace": "ALL"}
        },
        "datasources": {
            "datasources.yaml": {
                "apiVersion": 1,
                "datasources": [
                    {
                        "name": "Prometheus",
                        "type": "prometheus",
                        "uid": pf.GRAFANA_DATASOURCE_UID,
                        "url": pf.PROMETHEUS_URL,
                        "access": "proxy",
                        "isDefault": True,
                    }
                ],
            }
        },
        "testFramework": {"enabled": False},
    }
    doc = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "helmCharts": [
            {
                "name": "grafana",
                "repo": pf.GRAFANA_CHARTS,
                "version": pf.GRAFANA_CHART_VERSION,
                "releaseName": "grafana",
                "namespace": c.namespace or pf.MONITORING_NAMESPACE,
                "valuesInline": values,
            }
        ],
    }
    return [Artifact("platform/grafana/kustomization.yaml", dump(doc))]
