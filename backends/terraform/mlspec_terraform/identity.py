"""The cluster's OIDC provider and one IRSA role per IR service account, each with least-privilege bucket access."""

from __future__ import annotations

from dataclasses import dataclass

from mlspec.ir.model import IR, ServiceAccount
from mlspec_terraform.cdk import Construct, attr, cdktf, resource
from mlspec_terraform.policy import condition, document, statement

READ_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion"]
WRITE_ACTIONS = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]


def artifacts_prefix(ir: IR) -> str:
    """The key prefix inside the artifacts bucket that belongs to this system (from IR.artifacts_root)."""
    assert ir.infrastructure is not None
    root = f"s3://{ir.infrastructure.artifacts_bucket}/"
    if ir.artifacts_root.startswith(root) and ir.artifacts_root[len(root) :].strip("/"):
        return ir.artifacts_root[len(root) :].strip("/")
    return ir.system.name


@dataclass(frozen=True)
class OidcRefs:
    provider_arn: str
    issuer: str  # without https://, as IRSA trust conditions name it


def irsa_trust(scope: Construct, name: str, oidc: OidcRefs, namespace: str, service_account: str) -> str:
    """A trust policy that lets exactly one Kubernetes ServiceAccount assume the role (IRSA)."""
    return document(
        scope,
        f"{name}_assume",
        [
            statement(
                "AssumeFromServiceAccount",
                ["sts:AssumeRoleWithWebIdentity"],
                principals=[{"type": "Federated", "identifiers": [oidc.provider_arn]}],
                conditions=[
                    condition(
                        "StringEquals",
                        f"{oidc.issuer}:sub",
                        [f"system:serviceaccount:{namespace}:{service_account}"],
                    ),
                    condition("StringEquals", f"{oidc.issuer}:aud", ["sts.amazonaws.com"]),
                ],
            )
        ],
    )


def build_identity(
    scope: Construct, ir: IR, oidc_issuer: str, bucket_arn: str, kms_key_arn: str
) -> tuple[dict[str, str], OidcRefs]:
    """IRSA roles named exactly as the IR says. Returns service account id -> role ARN reference, and the
    cluster's OIDC provider for other IRSA roles."""
    provider = resource(
        scope,
        "aws_iam_openid_connect_provider",
        "cluster",
        {
            "url": oidc_issuer,
            "client_id_list": ["sts.amazonaws.com"],
        },
    )
    oidc = OidcRefs(attr(provider, "arn"), cdktf.Fn.replace(attr(provider, "url"), "https://", ""))
    prefix = artifacts_prefix(ir)
    roles: dict[str, str] = {
        sa.id: _irsa_role(scope, sa, oidc, bucket_arn, prefix, kms_key_arn) for sa in ir.service_accounts
    }
    return roles, oidc


def _irsa_role(
    scope: Construct,
    sa: ServiceAccount,
    oidc: OidcRefs,
    bucket_arn: str,
    prefix: str,
    kms_key_arn: str,
) -> str:
    name = f"irsa_{sa.id}"
    trust = irsa_trust(scope, name, oidc, sa.namespace, sa.name)
    role = resource(scope, "aws_iam_role", name, {"name": sa.role_name, "assume_role_policy": trust})
    writes = sa.bucket_access == "read-write"
    statements = [
        statement(
            "ListSystemPrefix",
            ["s3:ListBucket"],
            [bucket_arn],
            conditions=[condition("StringLike", "s3:prefix", [prefix, f"{prefix}/*"])],
        ),
        statement("ReadSystemObjects", READ_ACTIONS, [f"{bucket_arn}/{prefix}/*"]),
        statement(
            "UseArtifactsKey", ["kms:Decrypt", *(["kms:GenerateDataKey"] if writes else [])], [kms_key_arn]
        ),
    ]
    if writes:
        statements.insert(2, statement("WriteSystemObjects", WRITE_ACTIONS, [f"{bucket_arn}/{prefix}/*"]))
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
