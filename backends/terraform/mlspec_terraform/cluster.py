"""The EKS cluster and one managed node group per IR node pool, with their IAM roles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlspec.ir.model import Infrastructure
from mlspec_terraform.cdk import Construct, attr, resource
from mlspec_terraform.policy import assume_role

LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
TAINT_EFFECTS = {
    "NoSchedule": "NO_SCHEDULE",
    "PreferNoSchedule": "PREFER_NO_SCHEDULE",
    "NoExecute": "NO_EXECUTE",
}
CLUSTER_POLICIES = ["AmazonEKSClusterPolicy"]
NODE_POLICIES = ["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"]


@dataclass(frozen=True)
class ClusterRefs:
    name: str
    endpoint: str
    oidc_issuer: str
    node_groups: dict[str, Any]  # pool id -> aws_eks_node_group


def _role(
    scope: Construct, name: str, role_name: str, service: str, policies: list[str]
) -> tuple[str, list[str]]:
    role = resource(
        scope,
        "aws_iam_role",
        name,
        {
            "name": role_name,
            "assume_role_policy": assume_role(scope, f"{name}_assume", service),
        },
    )
    attachments = []
    for policy in policies:
        attachment = f"{name}_{policy.lower()}"
        resource(
            scope,
            "aws_iam_role_policy_attachment",
            attachment,
            {
                "role": attr(role, "name"),
                "policy_arn": f"arn:${{data.aws_partition.current.partition}}:iam::aws:policy/{policy}",
            },
        )
        attachments.append(f"aws_iam_role_policy_attachment.{attachment}")
    return attr(role, "arn"), attachments


def build_cluster(
    scope: Construct, infra: Infrastructure, subnet_ids: list[str], kms_key_arn: str
) -> ClusterRefs:
    name = infra.cluster_name
    cluster_role, cluster_deps = _role(
        scope, "cluster", infra.cluster_role_name, "eks.amazonaws.com", CLUSTER_POLICIES
    )
    # Created before the cluster so that its retention and encryption apply from the first log line.
    resource(
        scope,
        "aws_cloudwatch_log_group",
        "cluster",
        {
            "name": infra.cluster_log_group,
            "retention_in_days": infra.log_retention_days,
            "kms_key_id": kms_key_arn,
        },
    )
    cluster = resource(
        scope,
        "aws_eks_cluster",
        "main",
        {
            "name": name,
            "version": infra.cluster_version,
            "role_arn": cluster_role,
            "vpc_config": [
                {"subnet_ids": subnet_ids, "endpoint_private_access": True, "endpoint_public_access": False}
            ],
            "enabled_cluster_log_types": LOG_TYPES,
            "encryption_config": [{"resources": ["secrets"], "provider": [{"key_arn": kms_key_arn}]}],
            "depends_on": [*cluster_deps, "aws_cloudwatch_log_group.cluster"],
        },
    )
    node_role, node_deps = _role(scope, "nodes", infra.node_role_name, "ec2.amazonaws.com", NODE_POLICIES)
    groups = {}
    for pool in infra.node_pools:
        groups[pool.id] = resource(
            scope,
            "aws_eks_node_group",
            pool.task_id,
            {
                "cluster_name": attr(cluster, "name"),
                "node_group_name": pool.group_name,
                "node_role_arn": node_role,
                "subnet_ids": subnet_ids,
                "instance_types": [pool.instance_type],
                # the AMI whose driver serves the pool's accelerator (IR image_family -> EKS AMI type)
                "ami_type": pool.ami_type,
                "capacity_type": "SPOT" if pool.spot else "ON_DEMAND",
                "disk_size": pool.disk_size_gb,
                "scaling_config": [
                    {"min_size": pool.min, "max_size": pool.max, "desired_size": pool.desired}
                ],
                "update_config": [{"max_unavailable": 1}],
                "labels": dict(pool.labels),
                "taint": [
                    {"key": t.key, "value": t.value, "effect": TAINT_EFFECTS[t.effect]} for t in pool.taints
                ],
                # The cluster autoscaler owns the size between min and max once the group exists.
                "lifecycle": {"ignore_changes": ["scaling_config[0].desired_size"]},
                "depends_on": node_deps,
            },
        )
    return ClusterRefs(
        attr(cluster, "name"), attr(cluster, "endpoint"), attr(cluster, "identity[0].oidc[0].issuer"), groups
    )
