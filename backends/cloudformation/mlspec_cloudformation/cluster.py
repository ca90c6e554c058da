"""The EKS cluster and one managed node group per IR node pool, with their IAM roles."""

from __future__ import annotations

from typing import Any

from mlspec.ir import platform as pf
from mlspec.ir.model import IR, NodePool
from mlspec_cloudformation.cfn import Resource, Template, get_att, logical_id, managed_policy_arn, ref
from mlspec_cloudformation.policy import assume_role
from mlspec_cloudformation.storage import KEY
from mlspec_cloudformation.tags import tag_list, tag_map

CLUSTER = "Cluster"
LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
CLUSTER_POLICIES = ["AmazonEKSClusterPolicy"]
NODE_POLICIES = ["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"]
TAINT_EFFECTS = {
    "NoSchedule": "NO_SCHEDULE",
    "PreferNoSchedule": "PREFER_NO_SCHEDULE",
    "NoExecute": "NO_EXECUTE",
}
# (parameter suffix, NodePool field, smallest value EKS accepts)
SIZES = (("Min", "min", 0), ("Max", "max", 1), ("Desired", "desired", 0))


def pool_ids(ir: IR) -> dict[str, str]:
    """Pool id -> its logical-id stem (`a100-train` -> `A100Train`); pools whose stems collide get their index."""
    assert ir.infrastructure is not None
    pools = ir.infrastructure.node_pools
    stems = [logical_id(p.id) for p in pools]
    return {
        p.id: stem if stems.count(stem) == 1 else f"{stem}{i}"
        for i, (p, stem) in enumerate(zip(pools, stems, strict=True))
    }


def nodegroup_id(stem: str) -> str:
    return f"Nodegroup{stem}"


def size_parameter(stem: str, size: str) -> str:
    return f"{stem}Nodes{size}"


def build_cluster(template: Template, ir: IR, subnet_ids: Any) -> None:
    infra = ir.infrastructure
    assert infra is not None
    template.section(
        f"EKS cluster {infra.cluster_name}: private API endpoint, every control-plane log, secrets under the key"
    )
    template.add(
        "ClusterRole",
        Resource(
            "AWS::IAM::Role",
            {
                "RoleName": infra.cluster_role_name,
                "AssumeRolePolicyDocument": assume_role("eks.amazonaws.com"),
                "ManagedPolicyArns": [managed_policy_arn(p) for p in CLUSTER_POLICIES],
                "Tags": tag_list(ir),
            },
        ),
    )
    template.add(
        "ClusterLogGroup",
        Resource(
            "AWS::Logs::LogGroup",
            {
                "LogGroupName": infra.cluster_log_group,
                "RetentionInDays": infra.log_retention_days,
                "KmsKeyId": get_att(KEY, "Arn"),
                "Tags": tag_list(ir),
            },
            comment="Created before the cluster, so that its retention and encryption apply from the first line.",
            deletion_policy="Delete",
        ),
    )
    template.add(
        CLUSTER,
        Resource(
            "AWS::EKS::Cluster",
            {
                "Name": infra.cluster_name,
                "Version": infra.cluster_version,
                "RoleArn": get_att("ClusterRole", "Arn"),
                "ResourcesVpcConfig": {
                    "SubnetIds": subnet_ids,
                    "EndpointPrivateAccess": True,
                    "EndpointPublicAccess": False,
                },
                "Logging": {"ClusterLogging": {"EnabledTypes": [{"Type": t} for t in LOG_TYPES]}},
                "EncryptionConfig": [{"Provider": {"KeyArn": get_att(KEY, "Arn")}, "Resources": ["secrets"]}],
                "Tags": tag_list(ir),
            },
            depends_on=["ClusterLogGroup"],
        ),
    )
    template.section("Node groups: one per IR node pool, with the pool's labels, taints and node image")
    template.add(
        "NodeRole",
        Resource(
            "AWS::IAM::Role",
            {
                "RoleName": infra.node_role_name,
                "AssumeRolePolicyDocument": assume_role("ec2.amazonaws.com"),
                "ManagedPolicyArns": [managed_policy_arn(p) for p in NODE_POLICIES],
                "Tags": tag_list(ir),
            },
        ),
    )
    stems = pool_ids(ir)
    for pool in infra.node_pools:
        _size_parameters(template, pool, stems[pool.id])
        template.add(nodegroup_id(stems[pool.id]), _node_group(ir, pool, stems[pool.id], subnet_ids))


def _size_parameters(template: Template, pool: NodePool, stem: str) -> None:
    for size, attr, smallest in SIZES:
        template.parameters[size_parameter(stem, size)] = {
            "Type": "Number",
            "Default": getattr(pool, attr),
            "MinValue": smallest,
            "Description": f"{size} nodes in pool {pool.id} (the spec says {getattr(pool, attr)}).",
        }


def _node_group(ir: IR, pool: NodePool, stem: str, subnet_ids: Any) -> Resource:
    if pool.gpu:
        about = (
            f"{pool.gpu.per_node} x {pool.gpu.product} per node ({pool.gpu.resource}), AMI {pool.ami_type}"
        )
    else:
        about = f"no accelerator, AMI {pool.ami_type}"
    return Resource(
        "AWS::EKS::Nodegroup",
        {
            "ClusterName": ref(CLUSTER),
            "NodegroupName": pool.group_name,
            "NodeRole": get_att("NodeRole", "Arn"),
            "Subnets": subnet_ids,
            "InstanceTypes": [pool.instance_type],
            "AmiType": pool.ami_type,
            "CapacityType": "SPOT" if pool.spot else "ON_DEMAND",
            "DiskSize": pool.disk_size_gb,
            "ScalingConfig": {
                "MinSize": ref(size_parameter(stem, "Min")),
                "MaxSize": ref(size_parameter(stem, "Max")),
                "DesiredSize": ref(size_parameter(stem, "Desired")),
            },
            "UpdateConfig": {"MaxUnavailable": 1},
            "Labels": dict(pool.labels),
            **(
                {
                    "Taints": [
                        {"Key": t.key, "Value": t.value, "Effect": TAINT_EFFECTS[t.effect]}
                        for t in pool.taints
                    ]
                }
                if pool.taints
                else {}
            ),
            "Tags": tag_map(ir, _autoscaler_tags(ir, pool)),
        },
        comment=f"Pool {pool.id}: {pool.instance_type}, {about}",
    )


def _autoscaler_tags(ir: IR, pool: NodePool) -> dict[str, str]:
    """What the Cluster Autoscaler cannot learn from the group's labels and taints while the pool has no node:
    its accelerators, as node-template tags it reads through eks:DescribeNodegroup. (The Terraform output
    puts them on the group's auto scaling group, which CloudFormation cannot tag.)"""
    if ir.component("cluster-autoscaler") is None or not pf.autoscaled(pool):
        return {}
    return pf.node_template_resource_tags(pool)
