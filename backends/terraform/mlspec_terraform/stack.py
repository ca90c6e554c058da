"""MLPlatformStack: the whole AWS platform for one IR, as a CDKTF stack a team can embed in its own app."""

from __future__ import annotations

from mlspec import contracts
from mlspec.ir.model import IR
from mlspec_terraform.cdk import (
    AWS,
    AWS_PROVIDER_SOURCE,
    Construct,
    attr,
    cdktf,
)
from mlspec_terraform.cluster import build_cluster
from mlspec_terraform.identity import build_identity
from mlspec_terraform.network import build_network
from mlspec_terraform.platform import build_addons, build_autoscaler_role, build_node_template_tags
from mlspec_terraform.storage import build_kms_key, build_storage

MANAGED_BY_TAG = contracts.MANAGED_BY_TAG


class MLPlatformStack(cdktf.TerraformStack):
    """VPC, EKS with one managed node group per IR node pool, S3 artifacts bucket, ECR, IRSA roles, outputs.

    `MLPlatformStack(app, "ml-platform", ir)` inside any cdktf.App; requires ir.infrastructure with cloud "aws".
    """

    def __init__(self, scope: Construct, id: str, ir: IR, *, remote_state: bool = True) -> None:
        super().__init__(scope, id)
        infra = ir.infrastructure
        if infra is None or infra.cloud != "aws":
            raise ValueError(
                "MLPlatformStack builds AWS infrastructure only (IR.infrastructure.cloud == 'aws')"
            )
        provider = cdktf.TerraformProvider(
            self,
            "aws",
            terraform_resource_type="aws",
            terraform_generator_metadata=AWS,
            terraform_provider_source=AWS_PROVIDER_SOURCE,
        )
        provider.add_override("region", infra.region)
        if infra.account_id:
            provider.add_override("allowed_account_ids", [infra.account_id])
        provider.add_override(
            "default_tags",
            [
                {
                    "tags": {
                        contracts.SYSTEM_LABEL: ir.system.name,
                        MANAGED_BY_TAG: contracts.MANAGED_BY,
                        **ir.system.labels,
                    }
                }
            ],
        )
        if remote_state and infra.state is not None:
            cdktf.S3Backend(
                self,
                bucket=infra.state.bucket,
                key=infra.state.key,
                region=infra.state.region,
                dynamodb_table=infra.state.lock_table,
                encrypt=True,
            )

        kms_key_arn = build_kms_key(self, infra)
        network = build_network(self, infra, kms_key_arn)
        storage = build_storage(self, infra, kms_key_arn)
        cluster = build_cluster(self, infra, network.private_subnet_ids, kms_key_arn)
        roles, oidc = build_identity(self, ir, cluster.oidc_issuer, storage.bucket_arn, kms_key_arn)
        node_groups = [f"aws_eks_node_group.{p.task_id}" for p in infra.node_pools]
        build_addons(self, ir, cluster.name, node_groups)
        autoscaler = build_autoscaler_role(
            self, ir, oidc, [attr(g, "arn") for g in cluster.node_groups.values()]
        )
        build_node_template_tags(self, ir, cluster.node_groups)

        outputs = {
            "cluster_name": cluster.name,
            "cluster_endpoint": cluster.endpoint,
            "artifacts_bucket": storage.bucket_name,
            "repository_url": storage.repository_url,
            **{f"{sa_id}_role_arn": arn for sa_id, arn in roles.items()},
        }
        if autoscaler:
            outputs["cluster_autoscaler_role_arn"] = autoscaler
        for name, value in outputs.items():
            cdktf.TerraformOutput(self, name, value=value)
