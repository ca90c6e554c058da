"""The whole AWS platform for one IR as one CloudFormation template: parameters, rules, resources, outputs."""

from __future__ import annotations

from mlspec.ir import platform as pf
from mlspec.ir.model import IR
from mlspec_cloudformation.cfn import Template, equals, get_att, logical_id, ref, render
from mlspec_cloudformation.cluster import CLUSTER, SIZES, build_cluster, pool_ids, size_parameter
from mlspec_cloudformation.identity import build_identity, role_id
from mlspec_cloudformation.network import SUBNET_IDS_PARAMETER, ZONES_PARAMETER, build_network
from mlspec_cloudformation.platform import build_platform
from mlspec_cloudformation.storage import BUCKET, REPOSITORY, build_key, build_storage

AUTOSCALER_OUTPUT = "ClusterAutoscalerRoleArn"


def output_name(sa_id: str) -> str:
    """The stack output that carries a service account's role ARN: training -> TrainingRoleArn."""
    return logical_id(sa_id, "role", "arn")


def build(ir: IR, header: list[str]) -> Template:
    infra = ir.infrastructure
    assert infra is not None and infra.cloud == "aws"
    env = f" ({ir.system.environment})" if ir.system.environment else ""
    template = Template(
        description=(
            f"mlspec {ir.system.name}{env}: VPC, EKS cluster {infra.cluster_name} with node pools "
            f"{', '.join(p.id for p in infra.node_pools)}, artifacts bucket, image repository, IRSA roles"
            + (", EKS add-ons" if pf.eks_addons(ir) else "")
        ),
        header=header,
    )
    # cfn-lint checks resource types and properties against the region the template is meant for.
    template.metadata["cfn-lint"] = {"config": {"regions": [infra.region]}}
    template.rules["DeployTarget"] = {
        "Assertions": [
            {
                "Assert": equals(ref("AWS::Region"), infra.region),
                "AssertDescription": f"This template is compiled for region {infra.region}.",
            },
            *(
                [
                    {
                        "Assert": equals(ref("AWS::AccountId"), infra.account_id),
                        "AssertDescription": f"This template is compiled for account {infra.account_id}.",
                    }
                ]
                if infra.account_id
                else []
            ),
        ]
    }
    build_key(template, ir)
    subnet_ids = build_network(template, ir)
    build_storage(template, ir)
    build_cluster(template, ir, subnet_ids)
    build_identity(template, ir)
    autoscaler_role = build_platform(template, ir)
    template.metadata["AWS::CloudFormation::Interface"] = _interface(ir, template.parameters)

    template.output("ClusterName", ref(CLUSTER), "Name of the EKS cluster.")
    template.output("ClusterEndpoint", get_att(CLUSTER, "Endpoint"), "Private API endpoint of the cluster.")
    template.output("ArtifactsBucket", ref(BUCKET), "The artifacts bucket (runs, models, prediction logs).")
    template.output("RepositoryUri", get_att(REPOSITORY, "RepositoryUri"), "The image repository.")
    for sa in ir.service_accounts:
        template.output(
            output_name(sa.id),
            get_att(role_id(sa), "Arn"),
            f"IRSA role of ServiceAccount {sa.namespace}/{sa.name} (its eks.amazonaws.com/role-arn).",
        )
    autoscaler = ir.component("cluster-autoscaler")
    if autoscaler_role and autoscaler:
        template.output(
            AUTOSCALER_OUTPUT,
            get_att(autoscaler_role, "Arn"),
            f"IRSA role of ServiceAccount {autoscaler.service_account} (the Cluster Autoscaler).",
        )
    return template


def _interface(ir: IR, parameters: dict) -> dict:
    """Parameter groups and labels for the CloudFormation console."""
    assert ir.infrastructure is not None
    stems = pool_ids(ir)
    groups = [
        {
            "Label": {"default": f"Node pool {pool.id} ({pool.instance_type})"},
            "Parameters": [size_parameter(stems[pool.id], size) for size, _, _ in SIZES],
        }
        for pool in ir.infrastructure.node_pools
    ]
    network = [name for name in (ZONES_PARAMETER, SUBNET_IDS_PARAMETER) if name in parameters]
    groups.insert(0, {"Label": {"default": "Network"}, "Parameters": network})
    return {"ParameterGroups": groups}


def render_template(ir: IR, header: list[str]) -> str:
    return render(build(ir, header))
