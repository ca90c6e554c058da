"""The IR's platform rows that an infrastructure target owns: EKS add-ons, and what the Cluster Autoscaler
needs from AWS. Every decision here is the IR's (`mlspec.ir.platform`, `mlspec.ir.policy`); the CloudFormation
backend builds the same rows from the same decisions.

- `vpc-cni` as a managed add-on with the network policy agent on, so the generated NetworkPolicies are
  enforced; `metrics-server` as the EKS community add-on. No `addon_version`: EKS installs its default
  version for the cluster's Kubernetes version when it creates the add-on.
- The Cluster Autoscaler's IRSA role: describe calls on "*" (they take no resource), scaling calls only on
  auto scaling groups tagged as this cluster's (`k8s.io/cluster-autoscaler/<cluster>: owned`, which EKS
  managed node groups carry), and `eks:DescribeNodegroup` on this cluster's node groups.
- Node-template tags on each pool's auto scaling group, so that the autoscaler can scale a pool up from
  zero nodes knowing its labels, taints and accelerators (Cluster Autoscaler AWS provider, "scaling a node
  group to 0"). EKS does not copy node group tags to the group, hence `aws_autoscaling_group_tag`.
"""

from __future__ import annotations

from mlspec.ir import platform as pf
from mlspec.ir import policy
from mlspec.ir.model import IR
from mlspec.units import identifier
from mlspec_terraform.cdk import Construct, attr, cdktf, resource
from mlspec_terraform.identity import OidcRefs, irsa_trust
from mlspec_terraform.policy import condition, document, statement


def build_addons(scope: Construct, ir: IR, cluster_name: str, depends_on: list[str]) -> None:
    for component in pf.eks_addons(ir):
        config: dict = {
            "cluster_name": cluster_name,
            "addon_name": component.id,
            "resolve_conflicts_on_create": pf.ADDON_RESOLVE_CONFLICTS,
            "resolve_conflicts_on_update": pf.ADDON_RESOLVE_CONFLICTS,
            "depends_on": depends_on,
        }
        configuration = pf.addon_configuration(component.id)
        if configuration:
            config["configuration_values"] = configuration
        resource(scope, "aws_eks_addon", identifier(component.id), config)


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
        statement("Describe", list(policy.AUTOSCALER_DESCRIBE_ACTIONS), ["*"]),
        statement(
            "ScaleThisClustersGroups",
            list(policy.AUTOSCALER_SCALE_ACTIONS),
            ["*"],
            conditions=[
                condition(
                    "StringEquals",
                    f"aws:ResourceTag/{pf.autoscaler_cluster_tag(infra.cluster_name)}",
                    ["owned"],
                )
            ],
        ),
        statement(
            "DescribeThisClustersNodegroups", list(policy.AUTOSCALER_NODEGROUP_ACTIONS), node_group_arns
        ),
    ]
    resource(
        scope,
        "aws_iam_role_policy",
        "cluster_autoscaler",
        {
            "name": policy.AUTOSCALER_POLICY_NAME,
            "role": attr(role, "id"),
            "policy": document(scope, "cluster_autoscaler", statements),
        },
    )
    return attr(role, "arn")


def build_node_template_tags(
    scope: Construct, ir: IR, node_groups: dict[str, cdktf.TerraformResource]
) -> None:
    if ir.component("cluster-autoscaler") is None or ir.infrastructure is None:
        return
    for pool in ir.infrastructure.node_pools:
        if not pf.autoscaled(pool):
            continue
        group = attr(node_groups[pool.id], "resources[0].autoscaling_groups[0].name")
        for key, value in pf.node_template_tags(pool).items():
            resource(
                scope,
                "aws_autoscaling_group_tag",
                identifier(f"{pool.task_id}_{key.removeprefix(pf.NODE_TEMPLATE_TAG + '/')}"),
                {
                    "autoscaling_group_name": group,
                    "tag": [{"key": key, "value": value, "propagate_at_launch": False}],
                },
            )
