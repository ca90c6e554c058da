"""The platform under the generated artifacts: every controller, CRD, API and add-on they rely on, who
provides it and at which pinned version, and the one runtime image reference.

Decided once, in lowering, from what the IR uses; the Terraform backend provisions the rows it owns, the
Kubernetes backend writes the platform kustomization for its rows, both READMEs print the same table, and
`mlspec doctor` checks a cluster against it. Add a row here when a backend starts emitting a new kind: the
tests fail for any generated apiVersion/kind no row provides.
"""

from __future__ import annotations

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
MONITORING_NAMESPACE = "monitoring"
PROMETHEUS_NAME = "mlspec"  # the Prometheus CR; the operator serves it as prometheus-operated.monitoring.svc
PROMETHEUS_URL = f"http://prometheus-operated.{MONITORING_NAMESPACE}.svc:9090"


def cluster_autoscaler(cluster_version: str) -> Upstream:
    """The release for this Kubernetes minor, or the nearest one the catalog has."""
    if cluster_version in CLUSTER_AUTOSCALER:
        return CLUSTER_AUTOSCALER[cluster_version]
    minors = sorted(CLUSTER_AUTOSCALER, key=lambda v: int(v.split(".")[1]))
    wanted = int(cluster_version.split(".")[1])
    return CLUSTER_AUTOSCALER[min(minors, key=lambda v: abs(int(v.split(".")[1]) - wanted))]


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
        installed_by=installed_by,
        source=source,
        version=version,
        namespace=namespace,
        service_account=service_account,
        role_name=role_name,
        role_arn=role_arn,
    )


def decide(system: ir.IR) -> list[ir.PlatformComponent]:
    """Every prerequisite of this IR's artifacts, in install order (CRDs and controllers before users)."""
    infra = system.infrastructure
    aws = infra is not None and infra.cloud == "aws"
    terraform = aws and "terraform" in system.targets
    kubernetes = "kubernetes" in system.targets
    serving = system.serving if kubernetes else None
    out: list[ir.PlatformComponent] = []

    cluster_version = infra.cluster_version if infra else f">= {MIN_KUBERNETES}"
    out.append(
        _component(
            "kubernetes",
            "every workload; built-in kinds",
            "terraform" if terraform else "you",
            f"Amazon EKS cluster `{infra.cluster_name}`" if aws and infra else "your cluster",
            cluster_version,
            kinds=BUILTIN_KINDS,
        )
    )
    if kubernetes and aws:
        out.append(
            _component(
                "vpc-cni",
                "enforces the NetworkPolicies with its network policy agent",
                "terraform" if terraform else "you",
                "EKS add-on `vpc-cni` with enableNetworkPolicy",
                f"EKS default for Kubernetes {infra.cluster_version}" if infra else "EKS default",
            )
        )
    if serving and serving.replicas_max > serving.replicas_min and serving.target_cpu_percent:
        out.append(
            _component(
                "metrics-server",
                "CPU metrics for the HorizontalPodAutoscaler",
                "terraform" if terraform else "kubernetes",
                "EKS community add-on `metrics-server`"
                if terraform
                else f"kubernetes-sigs/metrics-server release manifest {METRICS_SERVER_VERSION}",
                f"EKS default for Kubernetes {infra.cluster_version}"
                if terraform and infra
                else METRICS_SERVER_VERSION,
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
                + (" + IRSA role and node-template tags" if terraform else ""),
                upstream.tag.removeprefix("cluster-autoscaler-"),
                namespace=CLUSTER_AUTOSCALER_SA[0],
                service_account="/".join(CLUSTER_AUTOSCALER_SA),
                role_name=role if terraform else None,
                role_arn=f"arn:aws:iam::{infra.account_id}:role/{role}"
                if terraform and infra.account_id
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
                "scrapes the server (ServiceMonitor), evaluates the SLO rules (PrometheusRule), "
                "answers the rollout analysis",
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
        if strategy in ("shadow", "a-b"):
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


def markdown_table(components: list[ir.PlatformComponent]) -> list[str]:
    """The prerequisites table both READMEs print: kind -> what provides it -> version."""
    who = {
        "cluster": "Kubernetes",
        "terraform": "Terraform (`terraform/main.tf.json`)",
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
