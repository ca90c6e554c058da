"""The cluster's OIDC provider and one IRSA role per IR service account, each with least-privilege bucket access."""

from __future__ import annotations

from mlspec.ir.model import IR, ServiceAccount
from mlspec_terraform.cdk import Construct, attr, cdktf, resource
from mlspec_terraform.policy import condition, document, statement


def build_identity(
    scope: Construct, ir: IR, oidc_issuer: str, bucket_arn: str, kms_key_arn: str
) -> dict[str, str]:
    """IRSA roles named and scoped exactly as the IR says. Returns service account id -> role ARN reference."""
    assert ir.infrastructure is not None
    provider = resource(
        scope,
        "aws_iam_openid_connect_provider",
        "cluster",
        {
            "url": oidc_issuer,
            "client_id_list": ["sts.amazonaws.com"],
        },
    )
    issuer = cdktf.Fn.replace(attr(provider, "url"), "https://", "")
    prefix = ir.infrastructure.artifacts_prefix
    return {
        sa.id: _irsa_role(scope, sa, attr(provider, "arn"), issuer, bucket_arn, prefix, kms_key_arn)
        for sa in ir.service_accounts
    }


def _irsa_role(
    scope: Construct,
    sa: ServiceAccount,
    provider_arn: str,
    issuer: str,
    bucket_arn: str,
    prefix: str,
    kms_key_arn: str,
) -> str:
    name = f"irsa_{sa.id}"
    trust = document(
        scope,
        f"{name}_assume",
        [
            statement(
                "AssumeFromServiceAccount",
                ["sts:AssumeRoleWithWebIdentity"],
                principals=[{"type": "Federated", "identifiers": [provider_arn]}],
                conditions=[
                    condition(
                        "StringEquals", f"{issuer}:sub", [f"system:serviceaccount:{sa.namespace}:{sa.name}"]
                    ),
                    condition("StringEquals", f"{issuer}:aud", ["sts.amazonaws.com"]),
                ],
            )
        ],
    )
    role = resource(scope, "aws_iam_role", name, {"name": sa.role_name, "assume_role_policy": trust})
    objects = f"{bucket_arn}/{prefix}/*"
    statements = [
        statement(
            "ListSystemPrefix",
            ["s3:ListBucket"],
            [bucket_arn],
            conditions=[condition("StringLike", "s3:prefix", [prefix, f"{prefix}/*"])],
        ),
        statement("ReadSystemObjects", sa.object_read_actions, [objects]),
        *(
            [statement("WriteSystemObjects", sa.object_write_actions, [objects])]
            if sa.object_write_actions
            else []
        ),
        statement("UseArtifactsKey", sa.key_actions, [kms_key_arn]),
    ]
    resource(
        scope,
        "aws_iam_role_policy",
        name,
        {
            "name": f"artifacts-{sa.bucket_access}",
            "role": attr(role, "id"),
            "policy": document(scope, name, statements),
        },
    )
    return attr(role, "arn")
