"""The IR's platform rows that Terraform owns: EKS add-ons, and what the Cluster Autoscaler needs from AWS.

- `vpc-cni` as a managed add-on with the network policy agent on, so the generated NetworkPolicies are
  enforced; `metrics-server` as the EKS community add-on. Each at the version EKS qualifies for the
  cluster's Kubernetes version (`aws_eks_addon_version`, not "most recent"): pinned by the cluster version.
- The Cluster Autoscaler's IRSA role: describe calls on "*" (they take no resource), scaling calls only on
  auto scaling groups tagged as this cluster's (`k8s.io/cluster-autoscaler/<cluster>: owned`, which EKS
  managed node groups carry), and `eks:DescribeNodegroup` on this cluster's node groups.
- Node-template tags on each pool's auto scaling group, so that the autoscaler can scale a pool up from
  zero nodes knowing its labels, taints and accelerators (Cluster Autoscaler AWS provider, "scaling a node
  group to 0"). EKS does not copy node group tags to the group, hence `aws_autoscaling_group_tag`.
"""

from __future__ import annotations

import json

from mlspec.ir.model import IR, NodePool, PlatformComponent
from mlspec.units import identifier
from mlspec_terraform.cdk import Construct, attr, cdktf, data, resource
from mlspec_terraform.identity import OidcRefs, irsa_trust
from mlspec_terraform.policy import condition, document, statement

TEMPLATE_TAG = "k8s.io/cluster-autoscaler/node-template"
ADDONS = {"vpc-cni": "vpc_cni", "metrics-server": "metrics_server"}
AUTOSCALER_DESCRIBE = [
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
    "autoscaling:DescribeTags",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
]
AUTOSCALER_SCALE = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]


def terraform_rows(ir: IR) -> list[PlatformComponent]:
    return [c for c in ir.platform if c.installed_by == "terraform" and c.id in ADDONS]


def build_addons(scope: Construct, ir: IR, cluster_name: str, depends_on: list[str]) -> None:
    infra = ir.infrastructure
    assert infra is not None
    for component in terraform_rows(ir):
        name = ADDONS[component.id]
        version = data(
            scope,
            "aws_eks_addon_version",
            name,
            {"addon_name": component.id, "kubernetes_version": infra.cluster_version, "most_recent": False},
        )
        config: dict = {
            "cluster_name": cluster_name,
            "addon_name": component.id,
            "addon_version": attr(version, "version"),
            # EKS installs a self-managed vpc-cni at creation: the managed add-on takes it over.
            "resolve_conflicts_on_create": "OVERWRITE",
            "resolve_conflicts_on_update": "PRESERVE",
            "depends_on": depends_on,
        }
        if component.id == "vpc-cni":
            config["configuration_values"] = json.dumps({"enableNetworkPolicy": "true"}, sort_keys=True)
        resource(scope, "aws_eks_addon", name, config)


def build_autoscaler_role(scope: Construct, ir: IR, oidc: OidcRefs, node_group_arns: list[str]) -> str | None:
    """The Cluster Autoscaler's IRSA role, named as the IR says; returns its ARN reference."""
    component = ir.component("cluster-autoscaler")
    infra = ir.infrastructure
    if component is None or component.role_name is None or infra is None or component.service_account is None:
        return None
    namespace, name = component.service_account.split("/", 1)
    role = resource(
        scope,
        "aws_iam_role",
        "cluster_autoscaler",
        {
            "name": component.role_name,
            "assume_role_policy": irsa_trust(scope, "cluster_autoscaler", oidc, namespace, name),
        },
    )
    statements = [
        statement("Describe", AUTOSCALER_DESCRIBE, ["*"]),
        statement(
            "ScaleThisClustersGroups",
            AUTOSCALER_SCALE,
            ["*"],
            conditions=[
                condition(
                    "StringEquals",
                    f"aws:ResourceTag/k8s.io/cluster-autoscaler/{infra.cluster_name}",
                    ["owned"],
                )
            ],
        ),
        statement("DescribeThisClustersNodegroups", ["eks:DescribeNodegroup"], node_group_arns),
    ]
    resource(
        scope,
        "aws_iam_role_policy",
        "cluster_autoscaler",
        {
            "name": "cluster-autoscaler",
            "role": attr(role, "id"),
            "policy": document(scope, "cluster_autoscaler", statements),
        },
    )
    return attr(role, "arn")


def node_template_tags(pool: NodePool) -> dict[str, str]:
    """Tag key -> value that describe a node of this pool to the autoscaler before one exists."""
    tags = {f"{TEMPLATE_TAG}/label/{key}": value for key, value in sorted(pool.labels.items())}
    for taint in pool.taints:
        tags[f"{TEMPLATE_TAG}/taint/{taint.key}"] = f"{taint.value}:{taint.effect}"
    if pool.gpu:
        tags[f"{TEMPLATE_TAG}/resources/{pool.gpu.resource}"] = str(pool.gpu.per_node)
    return tags


def build_node_template_tags(
    scope: Construct, ir: IR, node_groups: dict[str, cdktf.TerraformResource]
) -> None:
    if ir.component("cluster-autoscaler") is None or ir.infrastructure is None:
        return
    for pool in ir.infrastructure.node_pools:
        if pool.max <= pool.min:
            continue
        group = attr(node_groups[pool.id], "resources[0].autoscaling_groups[0].name")
        for key, value in node_template_tags(pool).items():
            resource(
                scope,
                "aws_autoscaling_group_tag",
                identifier(f"{pool.task_id}_{key.removeprefix(TEMPLATE_TAG + '/')}"),
                {
                    "autoscaling_group_name": group,
                    "tag": [{"key": key, "value": value, "propagate_at_launch": False}],
                },
            )
