"""The platform under the generated artifacts: every controller, CRD, API and add-on they rely on, who
provides it and at which pinned version, and the one runtime image reference.

Decided once, in lowering, from what the IR uses; the infrastructure backends (Terraform, CloudFormation)
provision the rows installed by "infrastructure", the Kubernetes backend writes the platform kustomization
for its rows, the READMEs print the same table, and `mlspec doctor` checks a cluster against it. Add a row here when a backend starts emitting a new kind: the
tests fail for any generated apiVersion/kind no row provides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from mlspec.ir import model as ir

# ------------------------------------------------------------------------------------------------ API versions
# The custom resources the Kubernetes backend writes, spelled once: the rows below provide exactly these.
ROLLOUTS_API = "argoproj.io/v1alpha1"
MONITORING_API = "monitoring.coreos.com/v1"
ISTIO_API = "networking.istio.io/v1"
METRICS_API = "metrics.k8s.io/v1beta1"
CUSTOM_METRICS_API = "custom.metrics.k8s.io/v1beta1"

# Built-in kinds the generated manifests and the platform kustomization use (Kubernetes 1.29 and later).
BUILTIN_KINDS = (
    "v1/Namespace",
    "v1/ServiceAccount",
    "v1/ConfigMap",
    "v1/Service",
    "apps/v1/Deployment",
    "apps/v1/DaemonSet",
    "batch/v1/CronJob",
    "autoscaling/v2/HorizontalPodAutoscaler",
    "policy/v1/PodDisruptionBudget",
    "networking.k8s.io/v1/NetworkPolicy",
    "rbac.authorization.k8s.io/v1/ClusterRole",
    "rbac.authorization.k8s.io/v1/ClusterRoleBinding",
    "rbac.authorization.k8s.io/v1/Role",
    "rbac.authorization.k8s.io/v1/RoleBinding",
    "apiregistration.k8s.io/v1/APIService",
    "apiextensions.k8s.io/v1/CustomResourceDefinition",
)
MIN_KUBERNETES = "1.29"


# ------------------------------------------------------------------------------------------------ pinned upstreams
@dataclass(frozen=True)
class Upstream:
    """A file set of a public repository at the commit of one release tag (immutable URLs)."""

    repo: str
    tag: str
    commit: str

    def url(self, path: str) -> str:
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{path}"

    def label(self, path: str) -> str:
        return f"{self.repo} `{path}` at {self.tag} ({self.commit[:12]})"


# Commit ids carry detect-secrets' allowlist pragma: its entropy check reads them as secrets.
ARGO_ROLLOUTS = Upstream(
    "argoproj/argo-rollouts",
    "v1.9.1",
    "b6bd3bcf8f60d717a98763d26acc983db7f97cb0",  # pragma: allowlist secret
)
PROMETHEUS_OPERATOR = Upstream(
    "prometheus-operator/prometheus-operator",
    "v0.93.0",
    "f8fafd475f3d132e239432ae6172de60a6cb6516",  # pragma: allowlist secret
)
PROMETHEUS_ADAPTER = Upstream(
    "kubernetes-sigs/prometheus-adapter",
    "v0.12.0",
    "17cef511b1854441490bceeca7a710a04ce091ad",  # pragma: allowlist secret
)
NVIDIA_DEVICE_PLUGIN = Upstream(
    "NVIDIA/k8s-device-plugin",
    "v0.19.3",
    "570e776d6813cb9f3e9c8c105cf8d79989db6650",  # pragma: allowlist secret
)
DCGM_EXPORTER = Upstream("NVIDIA/dcgm-exporter", "4.5.3-4.8.2", "691c92762eb551313c825f6efe4ceeee20982801")
# Cluster Autoscaler releases follow the Kubernetes minor they are built and tested for.
CLUSTER_AUTOSCALER = {
    "1.29": Upstream(
        "kubernetes/autoscaler",
        "cluster-autoscaler-1.29.5",
        "d4bbc686ac02a77a6ad1362fe7bbda387e8f074a",  # pragma: allowlist secret
    ),
    "1.30": Upstream(
        "kubernetes/autoscaler",
        "cluster-autoscaler-1.30.7",
        "4be8b2d7d49352fc158fec8773186516eec126c8",  # pragma: allowlist secret
    ),
    "1.31": Upstream(
        "kubernetes/autoscaler",
        "cluster-autoscaler-1.31.5",
        "f0fb6c4b57c807f7544afbb2819ed2bf351f69c8",  # pragma: allowlist secret
    ),
    "1.32": Upstream(
        "kubernetes/autoscaler",
        "cluster-autoscaler-1.32.7",
        "f645beb1ec472b785e5c196b3768c0d93195a75a",  # pragma: allowlist secret
    ),
    "1.33": Upstream(
        "kubernetes/autoscaler",
        "cluster-autoscaler-1.33.6",
        "be4b5a18814a53539d0fe6299c92839152cae54c",  # pragma: allowlist secret
    ),
    "1.34": Upstream(
        "kubernetes/autoscaler",
        "cluster-autoscaler-1.34.5",
        "cb2123ed13148c38fbdb1ede42d8e99761ee2909",  # pragma: allowlist secret
    ),
    "1.35": Upstream(
        "kubernetes/autoscaler",
        "cluster-autoscaler-1.35.2",
        "2d42588803c71fe9b35dcd9e3669ac6bb550ca22",  # pragma: allowlist secret
    ),
    "1.36": Upstream(
        "kubernetes/autoscaler",
        "cluster-autoscaler-1.36.1",
        "35e8a280425c76a4040f57ae0fa232a952c02024",  # pragma: allowlist secret
    ),
}
CLUSTER_AUTOSCALER_MANIFEST = (
    "cluster-autoscaler/cloudprovider/aws/examples/cluster-autoscaler-autodiscover.yaml"
)
METRICS_SERVER_VERSION = "v0.8.1"
METRICS_SERVER_MANIFEST = f"https://github.com/kubernetes-sigs/metrics-server/releases/download/{METRICS_SERVER_VERSION}/components.yaml"
ISTIO_VERSION = "1.28.3"
ISTIO_CHARTS = "https://istio-release.storage.googleapis.com/charts"
NEURON_DEVICE_PLUGIN_VERSION = "2.x"

CLUSTER_AUTOSCALER_SA = ("kube-system", "cluster-autoscaler")
# The first release that translates the taint effects eks:DescribeNodegroup returns (NO_SCHEDULE ->
# NoSchedule; kubernetes/autoscaler 74a5500ab0, in cluster-autoscaler-1.31.0). Earlier releases keep EKS's
# spelling, which the scheduler's taint filter ignores: a tainted node group at zero nodes looks untainted.
AUTOSCALER_TRANSLATES_NODEGROUP_TAINTS = (1, 31)
MONITORING_NAMESPACE = "monitoring"
PROMETHEUS_NAME = "mlspec"  # the Prometheus CR; the operator serves it as prometheus-operated.monitoring.svc
PROMETHEUS_URL = f"http://prometheus-operated.{MONITORING_NAMESPACE}.svc:9090"
PUSHGATEWAY_IMAGE = "quay.io/prometheus/pushgateway"
PUSHGATEWAY_VERSION = "v1.11.3"
PUSHGATEWAY_PORT = 9091
PUSHGATEWAY_URL = f"http://pushgateway.{MONITORING_NAMESPACE}.svc:{PUSHGATEWAY_PORT}"
GRAFANA_CHARTS = "https://grafana.github.io/helm-charts"
# Grafana 11.6.1: the release whose dashboard model grafana-foundation-sdk (11.6) builds.
GRAFANA_CHART_VERSION = "8.16.0"
GRAFANA_VERSION = "11.6.1"
GRAFANA_DASHBOARD_LABEL = ("grafana_dashboard", "1")  # what the Grafana sidecar loads dashboards from
GRAFANA_DATASOURCE_UID = "mlspec-prometheus"  # the Prometheus data source Grafana is provisioned with

# Metrics the platform exposes that the generated dashboards query, by the row that provides them.
CADVISOR_METRICS = ("container_cpu_usage_seconds_total", "container_memory_working_set_bytes")
DCGM_METRICS = ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED")


def cluster_autoscaler(cluster_version: str) -> Upstream:
    """The release for this Kubernetes minor, or the nearest one the catalog has."""
    if cluster_version in CLUSTER_AUTOSCALER:
        return CLUSTER_AUTOSCALER[cluster_version]
    minors = sorted(CLUSTER_AUTOSCALER, key=lambda v: int(v.split(".")[1]))
    wanted = int(cluster_version.split(".")[1])
    return CLUSTER_AUTOSCALER[min(minors, key=lambda v: abs(int(v.split(".")[1]) - wanted))]


def autoscaler_reads_nodegroup_taints(cluster_version: str) -> bool:
    """Whether this cluster's Cluster Autoscaler reads a managed node group's taints right from EKS."""
    release = cluster_autoscaler(cluster_version).tag.removeprefix("cluster-autoscaler-")
    major, minor = release.split(".")[:2]
    return (int(major), int(minor)) >= AUTOSCALER_TRANSLATES_NODEGROUP_TAINTS


# ------------------------------------------------------------------------------------------------ AWS platform
# The targets that build the AWS platform; an account deploys one of them. Each provisions every row
# installed by "infrastructure": the EKS add-ons below, and the Cluster Autoscaler's IRSA role.
INFRASTRUCTURE_TARGETS = ("terraform", "cloudformation")
# EKS add-ons and their configuration values. No version: every target leaves it to EKS, which installs the
# default version it qualifies for the cluster's Kubernetes version when it creates the add-on. CloudFormation
# cannot look a version up, and a build string pinned here could name one EKS does not offer for the
# cluster's version; after a cluster upgrade, `aws eks update-addon` moves each add-on on (the READMEs say so).
EKS_ADDONS = {
    "vpc-cni": {"enableNetworkPolicy": "true"},  # the network policy agent enforces the NetworkPolicies
    "metrics-server": {},
}
# EKS installs a self-managed vpc-cni with the cluster: the managed add-on takes it over on creation, and on
# update the declared configuration wins over edits made in the cluster.
ADDON_RESOLVE_CONFLICTS = "OVERWRITE"


def eks_addons(system: ir.IR) -> list[ir.PlatformComponent]:
    """The add-on rows an infrastructure target installs, in install order."""
    return [c for c in system.platform if c.installed_by == "infrastructure" and c.id in EKS_ADDONS]


def addon_configuration(addon: str) -> str | None:
    """The add-on's configuration values as the JSON string EKS takes, or None for its defaults."""
    values = EKS_ADDONS[addon]
    return json.dumps(values, sort_keys=True) if values else None


# The Cluster Autoscaler's AWS provider reads a node group it has no node of yet from tags under this prefix
# (on the auto scaling group, and `resources/` on an EKS managed node group), and from the managed node
# group's own labels and taints (eks:DescribeNodegroup).
NODE_TEMPLATE_TAG = "k8s.io/cluster-autoscaler/node-template"


def autoscaler_cluster_tag(cluster_name: str) -> str:
    """The tag EKS puts on the auto scaling groups of this cluster's managed node groups (value `owned`)."""
    return f"k8s.io/cluster-autoscaler/{cluster_name}"


def autoscaled(pool: ir.NodePool) -> bool:
    return pool.max > pool.min


def node_template_tags(pool: ir.NodePool) -> dict[str, str]:
    """Tag key -> value that describe a node of this pool to the autoscaler before one exists."""
    tags = {f"{NODE_TEMPLATE_TAG}/label/{key}": value for key, value in sorted(pool.labels.items())}
    for taint in pool.taints:
        tags[f"{NODE_TEMPLATE_TAG}/taint/{taint.key}"] = f"{taint.value}:{taint.effect}"
    tags.update(node_template_resource_tags(pool))
    return tags


def node_template_resource_tags(pool: ir.NodePool) -> dict[str, str]:
    """The accelerators of a node of this pool, as tags (the part the autoscaler reads from a node group too)."""
    if not pool.gpu:
        return {}
    return {f"{NODE_TEMPLATE_TAG}/resources/{pool.gpu.resource}": str(pool.gpu.per_node)}


# ------------------------------------------------------------------------------------------------ decisions
def _component(
    id: str,
    purpose: str,
    installed_by: str,
    source: str,
    version: str,
    *,
    kinds: tuple[str, ...] = (),
    apis: tuple[str, ...] = (),
    resources: tuple[str, ...] = (),
    metrics: tuple[str, ...] = (),
    namespace: str | None = None,
    service_account: str | None = None,
    role_name: str | None = None,
    role_arn: str | None = None,
) -> ir.PlatformComponent:
    return ir.PlatformComponent(
        id=id,
        purpose=purpose,
        kinds=list(kinds),
        apis=list(apis),
        resources=list(resources),
        metrics=list(metrics),
        installed_by=installed_by,
        source=source,
        version=version,
        namespace=namespace,
        service_account=service_account,
        role_name=role_name,
        role_arn=role_arn,
    )


def _eks_default(infra: ir.Infrastructure | None) -> str:
    if infra is None:
        return "EKS default"
    return f"EKS default for Kubernetes {infra.cluster_version} when the add-on is created"


def decide(system: ir.IR) -> list[ir.PlatformComponent]:
    """Every prerequisite of this IR's artifacts, in install order (CRDs and controllers before users)."""
    infra = system.infrastructure
    aws = infra is not None and infra.cloud == "aws"
    provisioned = aws and any(t in system.targets for t in INFRASTRUCTURE_TARGETS)
    kubernetes = "kubernetes" in system.targets
    serving = system.serving if kubernetes else None
    out: list[ir.PlatformComponent] = []

    cluster_version = infra.cluster_version if infra else f">= {MIN_KUBERNETES}"
    out.append(
        _component(
            "kubernetes",
            "every workload; built-in kinds",
            "infrastructure" if provisioned else "you",
            f"Amazon EKS cluster `{infra.cluster_name}`" if aws and infra else "your cluster",
            cluster_version,
            kinds=BUILTIN_KINDS,
            metrics=CADVISOR_METRICS if serving else (),  # the kubelet's cAdvisor, for the dashboard
        )
    )
    if kubernetes and aws:
        out.append(
            _component(
                "vpc-cni",
                "enforces the NetworkPolicies with its network policy agent",
                "infrastructure" if provisioned else "you",
                "EKS add-on `vpc-cni` with enableNetworkPolicy",
                _eks_default(infra),
            )
        )
    if serving and serving.replicas_max > serving.replicas_min and serving.target_cpu_percent:
        out.append(
            _component(
                "metrics-server",
                "CPU metrics for the HorizontalPodAutoscaler",
                "infrastructure" if provisioned else "kubernetes",
                "EKS community add-on `metrics-server`"
                if provisioned
                else f"kubernetes-sigs/metrics-server release manifest {METRICS_SERVER_VERSION}",
                _eks_default(infra) if provisioned else METRICS_SERVER_VERSION,
                apis=(METRICS_API,),
                namespace="kube-system",
            )
        )
    if infra is not None and any(p.max > p.min for p in infra.node_pools):
        upstream = cluster_autoscaler(infra.cluster_version)
        role = f"{infra.cluster_name}-cluster-autoscaler"[:64]
        out.append(
            _component(
                "cluster-autoscaler",
                "scales every node pool between min and max, GPU pools from zero",
                "kubernetes" if aws else "you",
                upstream.label(CLUSTER_AUTOSCALER_MANIFEST)
                + (" + IRSA role and node-template tags" if provisioned else ""),
                upstream.tag.removeprefix("cluster-autoscaler-"),
                namespace=CLUSTER_AUTOSCALER_SA[0],
                service_account="/".join(CLUSTER_AUTOSCALER_SA),
                role_name=role if provisioned else None,
                role_arn=f"arn:aws:iam::{infra.account_id}:role/{role}"
                if provisioned and infra.account_id
                else None,
            )
        )
    vendors = {p.gpu.vendor for p in (infra.node_pools if infra else []) if p.gpu}
    vendors |= {s.placement.gpu.vendor for p in system.pipelines for s in p.steps if s.placement.gpu}
    if system.serving and system.serving.placement.gpu:
        vendors.add(system.serving.placement.gpu.vendor)
    if "nvidia" in vendors:
        out.append(
            _component(
                "nvidia-device-plugin",
                "advertises nvidia.com/gpu on the NVIDIA GPU nodes",
                "kubernetes",
                NVIDIA_DEVICE_PLUGIN.label("deployments/static/nvidia-device-plugin.yml"),
                NVIDIA_DEVICE_PLUGIN.tag,
                resources=("nvidia.com/gpu",),
                namespace="kube-system",
            )
        )
    if "aws" in vendors:
        out.append(
            _component(
                "neuron-device-plugin",
                "advertises aws.amazon.com/neuron on the Inferentia/Trainium nodes",
                "you",
                "AWS Neuron device plugin (Neuron Helm chart)",
                NEURON_DEVICE_PLUGIN_VERSION,
                resources=("aws.amazon.com/neuron",),
                namespace="kube-system",
            )
        )
    if "amd" in vendors:
        out.append(
            _component(
                "amd-gpu-device-plugin",
                "advertises amd.com/gpu on the AMD GPU nodes",
                "you",
                "ROCm k8s-device-plugin",
                "1.x",
                resources=("amd.com/gpu",),
                namespace="kube-system",
            )
        )
    if serving:
        out.append(
            _component(
                "prometheus-operator",
                "scrapes the server, the Pushgateway and the kubelet's cAdvisor (ServiceMonitors), evaluates "
                "the SLO rules (PrometheusRule), answers the rollout analysis",
                "kubernetes",
                PROMETHEUS_OPERATOR.label("example/") + " + a Prometheus and an Alertmanager",
                PROMETHEUS_OPERATOR.tag,
                kinds=tuple(
                    f"{MONITORING_API}/{k}"
                    for k in ("ServiceMonitor", "PrometheusRule", "Prometheus", "Alertmanager")
                ),
                namespace=MONITORING_NAMESPACE,
            )
        )
        if system.monitoring is not None:
            out.append(
                _component(
                    "pushgateway",
                    "holds the monitoring CronJob's last drift, data-quality and performance gauges "
                    "for Prometheus",
                    "kubernetes",
                    f"{PUSHGATEWAY_IMAGE} (Prometheus Pushgateway)",
                    PUSHGATEWAY_VERSION,
                    namespace=MONITORING_NAMESPACE,
                )
            )
        out.append(
            _component(
                "grafana",
                "shows the system's dashboard (ConfigMaps labelled "
                f"{GRAFANA_DASHBOARD_LABEL[0]}={GRAFANA_DASHBOARD_LABEL[1]}, loaded by its sidecar)",
                "kubernetes",
                f"grafana Helm chart {GRAFANA_CHART_VERSION} from {GRAFANA_CHARTS}",
                GRAFANA_VERSION,
                namespace=MONITORING_NAMESPACE,
            )
        )
        gpu = serving.placement.gpu
        if gpu is not None and gpu.vendor == "nvidia":
            out.append(
                _component(
                    "dcgm-exporter",
                    "GPU utilisation and memory of the serving pods, for the dashboard",
                    "kubernetes",
                    DCGM_EXPORTER.label("dcgm-exporter.yaml"),
                    DCGM_EXPORTER.tag,
                    metrics=DCGM_METRICS,
                    namespace="kube-system",
                )
            )
        if serving.replicas_max > serving.replicas_min and serving.target_rps_per_replica:
            out.append(
                _component(
                    "prometheus-adapter",
                    "requests per second per pod for the HorizontalPodAutoscaler",
                    "kubernetes",
                    PROMETHEUS_ADAPTER.label("deploy/manifests/"),
                    PROMETHEUS_ADAPTER.tag,
                    apis=(CUSTOM_METRICS_API,),
                    namespace=MONITORING_NAMESPACE,
                )
            )
        strategy = serving.rollout.strategy
        if strategy in ("canary", "blue-green"):
            out.append(
                _component(
                    "argo-rollouts",
                    f"progressive delivery (serving.rollout.strategy: {strategy}) and its analysis",
                    "kubernetes",
                    ARGO_ROLLOUTS.label("manifests/install.yaml"),
                    ARGO_ROLLOUTS.tag,
                    kinds=(f"{ROLLOUTS_API}/Rollout", f"{ROLLOUTS_API}/AnalysisTemplate"),
                    namespace="argo-rollouts",
                )
            )
        if strategy in ("shadow", "a-b", "canary"):  # canary: the challenger's share of the model traffic
            out.append(
                _component(
                    "istio",
                    f"traffic {'mirroring' if strategy == 'shadow' else 'split'} "
                    f"(serving.rollout.strategy: {strategy})",
                    "kubernetes",
                    f"Istio Helm charts base, cni, istiod from {ISTIO_CHARTS}",
                    ISTIO_VERSION,
                    kinds=(f"{ISTIO_API}/VirtualService",),
                    namespace="istio-system",
                )
            )
    if "kubeflow" in system.targets:
        out.append(
            _component(
                "kubeflow-pipelines",
                "runs the compiled pipelines (kubeflow/)",
                "you",
                "Kubeflow Pipelines (standalone or part of Kubeflow)",
                ">= 2.4",
            )
        )
    if "airflow" in system.targets:
        out.append(
            _component(
                "airflow",
                "runs the generated DAGs (airflow/)",
                "you",
                "Apache Airflow with apache-airflow-providers-cncf-kubernetes",
                ">= 3.0 (provider >= 10.5)",
            )
        )
    tracking = system.registry.tracking_uri
    if tracking.startswith(("http://", "https://")):
        out.append(
            _component(
                "mlflow",
                f"the model registry and tracking server at {tracking}",
                "you",
                "MLflow tracking server",
                ">= 3.0",
            )
        )
    return out


# ------------------------------------------------------------------------------------------------ runtime image
def split_reference(reference: str) -> tuple[str, str]:
    """(repository, tag) of an image reference; a digest or a missing tag gives tag 'latest'."""
    name = reference.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :]
    return name, "latest"


def ecr_repository_uri(infra: ir.Infrastructure) -> str | None:
    if infra.cloud != "aws" or infra.account_id is None:
        return None
    return f"{infra.account_id}.dkr.ecr.{infra.region}.amazonaws.com/{infra.container_registry}"


def mlspec_version() -> str:
    try:
        return version("mlspec")
    except PackageNotFoundError:  # a source checkout that is not installed
        return "0.1.0"


PYTHON = "3.11"


def image_reference(spec_reference: str, infra: ir.Infrastructure | None) -> str:
    """The image every target uses. With AWS infrastructure and an account, the image lives in the system's
    ECR repository (Terraform creates it, CI pushes to it) under the spec's tag; otherwise as the spec says."""
    ecr = ecr_repository_uri(infra) if infra else None
    if ecr is None:
        return spec_reference
    return f"{ecr}:{split_reference(spec_reference)[1]}"


def runtime_image(system: ir.IR) -> ir.RuntimeImage:
    """What the runtime image is and holds, from the IR (its reference is already images['runtime'])."""
    reference = system.images["runtime"]
    repository, tag = split_reference(reference)
    infra = system.infrastructure
    ecr = ecr_repository_uri(infra) if infra else None
    first = repository.split("/", 1)[0]
    registry = (
        first if "/" in repository and ("." in first or ":" in first or first == "localhost") else "docker.io"
    )
    kind = "ecr" if ecr is not None and repository == ecr else "ghcr" if registry == "ghcr.io" else "other"
    gpus = [s.placement.gpu for p in system.pipelines for s in p.steps if s.placement.gpu]
    if system.serving and system.serving.placement.gpu:
        gpus.append(system.serving.placement.gpu)
    extras = ["runtime"]
    if system.serving is not None:
        extras.append("serving")
    if system.monitoring is not None:
        extras.append("monitor")
    if "kubeflow" in system.targets:
        extras.append("kubeflow-runtime")
    return ir.RuntimeImage(
        reference=reference,
        repository=repository,
        tag=tag,
        registry=registry,
        registry_kind=kind,
        ecr_repository=infra.container_registry if kind == "ecr" and infra else None,
        region=infra.region if kind == "ecr" and infra else None,
        accelerator="cuda" if any(g.vendor == "nvidia" for g in gpus) else "cpu",
        extras=extras,
        python=PYTHON,
        mlspec_version=mlspec_version(),
    )


INFRASTRUCTURE_FILES = {
    "terraform": "Terraform (`terraform/main.tf.json`)",
    "cloudformation": "CloudFormation (`cloudformation/template.yaml`)",
}


def markdown_table(components: list[ir.PlatformComponent], targets: list[str]) -> list[str]:
    """The prerequisites table the READMEs print: kind -> what provides it -> version."""
    who = {
        "cluster": "Kubernetes",
        "infrastructure": " or ".join(f for t, f in INFRASTRUCTURE_FILES.items() if t in targets),
        "kubernetes": "the platform kustomization (`kubernetes/platform/`)",
        "you": "you (declared, not installed by mlspec)",
    }
    lines = [
        "| provides | component | what provides it | version | installed by | needed for |",
        "|---|---|---|---|---|---|",
    ]
    for c in components:
        provides = (
            [f"`{k}`" for k in c.kinds]
            + [f"API `{a}`" for a in c.apis]
            + [f"resource `{r}`" for r in c.resources]
        )
        shown = ", ".join(provides[:6]) + (
            f" and {len(provides) - 6} more built-in kinds" if len(provides) > 6 else ""
        )
        lines.append(
            f"| {shown or '-'} | {c.id} | {c.source} | {c.version} | {who[c.installed_by]} | {c.purpose} |"
        )
    return lines
