"""The cluster's OIDC provider and one IRSA role per IR service account, each with least-privilege bucket access."""

from __future__ import annotations

from dataclasses import dataclass

from mlspec.ir.model import IR, ServiceAccount
from mlspec_terraform.cdk import Construct, attr, cdktf, resource
from mlspec_terraform.policy import condition, document, statement


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
    """IRSA roles named and scoped exactly as the IR says. Returns service account id -> role ARN
    reference, and the cluster's OIDC provider for other IRSA roles."""
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
    oidc = OidcRefs(attr(provider, "arn"), cdktf.Fn.replace(attr(provider, "url"), "https://", ""))
    prefix = ir.infrastructure.artifacts_prefix
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
    objects = f"{bucket_arn}/{prefix}/*"
    written = objects if sa.write_prefix is None else f"{bucket_arn}/{prefix}/{sa.write_prefix}/*"
    statements = [
        statement(
            "ListSystemPrefix",
            ["s3:ListBucket"],
            [bucket_arn],
            conditions=[condition("StringLike", "s3:prefix", [prefix, f"{prefix}/*"])],
        ),
        statement("ReadSystemObjects", sa.object_read_actions, [objects]),
        *(
            [statement("WriteSystemObjects", sa.object_write_actions, [written])]
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
