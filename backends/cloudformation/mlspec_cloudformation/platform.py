"""The IR's platform rows that an infrastructure target owns, built from the same decisions as the Terraform
output (`mlspec.ir.platform`, `mlspec.ir.policy`): the EKS add-ons and the Cluster Autoscaler's IRSA role.

What the autoscaler needs to scale a pool up from zero nodes, it reads from the pool's managed node group
through eks:DescribeNodegroup (allowed by the role below): the group's labels and taints, and the
accelerator tags that cluster.py puts on the group. The Terraform output also tags the group's auto scaling
group, which EKS creates and CloudFormation cannot tag; the autoscaler releases before 1.31 misread the
taints EKS returns, which the backend reports as `infrastructure.tainted_pool_from_zero` (backend.py).
"""

from __future__ import annotations

from mlspec.ir import platform as pf
from mlspec.ir import policy
from mlspec.ir.model import IR
from mlspec_cloudformation.cfn import Resource, Template, get_att, logical_id, ref
from mlspec_cloudformation.cluster import CLUSTER, nodegroup_id, pool_ids
from mlspec_cloudformation.identity import irsa_role
from mlspec_cloudformation.policy import statement
from mlspec_cloudformation.tags import tag_list

AUTOSCALER_ROLE = "ClusterAutoscalerRole"


def addon_id(addon: str) -> str:
    """vpc-cni -> AddonVpcCni."""
    return logical_id("addon", addon)


def build_platform(template: Template, ir: IR) -> str | None:
    """The add-ons and the autoscaler's role; returns the role's logical id (None without an autoscaler)."""
    infra = ir.infrastructure
    assert infra is not None
    addons = pf.eks_addons(ir)
    autoscaler = ir.component("cluster-autoscaler")
    if not addons and (autoscaler is None or autoscaler.role_name is None):
        return None
    template.section("Platform: EKS add-ons and the Cluster Autoscaler's IRSA role")
    stems = pool_ids(ir)
    node_groups = [nodegroup_id(stems[pool.id]) for pool in infra.node_pools]
    for component in addons:
        properties = {
            "ClusterName": ref(CLUSTER),
            "AddonName": component.id,
            "ResolveConflicts": pf.ADDON_RESOLVE_CONFLICTS,
        }
        configuration = pf.addon_configuration(component.id)
        if configuration:
            properties["ConfigurationValues"] = configuration
        properties["Tags"] = tag_list(ir)
        template.add(
            addon_id(component.id),
            Resource(
                "AWS::EKS::Addon",
                properties,
                # after the nodes, so that the add-on's pods can start and the add-on becomes active
                depends_on=node_groups,
                comment=f"{component.source}: {component.purpose}; version: {component.version}.",
            ),
        )
    if autoscaler is None or autoscaler.role_name is None or autoscaler.service_account is None:
        return None
    namespace, name = autoscaler.service_account.split("/", 1)
    statements = [
        statement("Describe", list(policy.AUTOSCALER_DESCRIBE_ACTIONS), ["*"]),
        statement(
            "ScaleThisClustersGroups",
            list(policy.AUTOSCALER_SCALE_ACTIONS),
            ["*"],
            condition={
                "StringEquals": {
                    f"aws:ResourceTag/{pf.autoscaler_cluster_tag(infra.cluster_name)}": ["owned"]
                }
            },
        ),
        statement(
            "DescribeThisClustersNodegroups",
            list(policy.AUTOSCALER_NODEGROUP_ACTIONS),
            [get_att(group, "Arn") for group in node_groups],
        ),
    ]
    template.add(
        AUTOSCALER_ROLE,
        irsa_role(
            ir,
            autoscaler.role_name,
            (namespace, name),
            policy.AUTOSCALER_POLICY_NAME,
            statements,
            f"ServiceAccount {autoscaler.service_account}: the Cluster Autoscaler scales only the auto scaling "
            f"groups tagged {pf.autoscaler_cluster_tag(infra.cluster_name)}: owned, and reads this cluster's "
            "node groups (their labels, taints and accelerator tags while a pool has no node).",
        ),
    )
    return AUTOSCALER_ROLE
