"""The cluster's OIDC provider and one IRSA role per IR service account, with least-privilege bucket access."""

from __future__ import annotations

import json
from typing import Any

from mlspec.ir.model import IR, ServiceAccount
from mlspec_cloudformation.cfn import Resource, Template, get_att, literal, logical_id, select, split, sub
from mlspec_cloudformation.cluster import CLUSTER
from mlspec_cloudformation.policy import VERSION, document, statement
from mlspec_cloudformation.storage import BUCKET, KEY
from mlspec_cloudformation.tags import tag_list

OIDC_PROVIDER = "OidcProvider"
AUDIENCE = "sts.amazonaws.com"


def role_id(sa: ServiceAccount) -> str:
    return logical_id(sa.id, "role")


def build_identity(template: Template, ir: IR) -> None:
    template.section(
        "IAM roles for service accounts (IRSA): the cluster's OIDC provider, one role per account"
    )
    template.add(
        OIDC_PROVIDER,
        Resource(
            "AWS::IAM::OIDCProvider",
            {
                "Url": get_att(CLUSTER, "OpenIdConnectIssuerUrl"),
                "ClientIdList": [AUDIENCE],
                "Tags": tag_list(ir),
            },
        ),
    )
    for sa in ir.service_accounts:
        template.add(role_id(sa), _irsa_role(ir, sa))


def trust_policy(namespace: str, name: str) -> str:
    """The trust policy as a !Sub template: its condition keys start with the issuer, which only the
    deployed cluster knows, and a mapping key cannot be an intrinsic function; so the document is a string."""
    subject = literal(f"system:serviceaccount:{namespace}:{name}")
    doc = {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "AssumeFromServiceAccount",
                "Effect": "Allow",
                "Principal": {"Federated": "${OidcProvider}"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {"${Issuer}:sub": subject, "${Issuer}:aud": AUDIENCE}},
            }
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def irsa_role(
    ir: IR,
    role_name: str,
    service_account: tuple[str, str],
    policy_name: str,
    statements: list[dict[str, Any]],
    comment: str,
) -> Resource:
    """An IAM role that only the Kubernetes ServiceAccount (namespace, name) of this cluster may assume."""
    # the issuer host and path: https://oidc.eks.<region>.amazonaws.com/id/<id> without the scheme
    issuer = select(1, split("//", get_att(CLUSTER, "OpenIdConnectIssuerUrl")))
    return Resource(
        "AWS::IAM::Role",
        {
            "RoleName": role_name,
            "AssumeRolePolicyDocument": sub(trust_policy(*service_account), {"Issuer": issuer}),
            "Policies": [{"PolicyName": policy_name, "PolicyDocument": document(*statements)}],
            "Tags": tag_list(ir),
        },
        comment=comment,
    )


def _irsa_role(ir: IR, sa: ServiceAccount) -> Resource:
    infra = ir.infrastructure
    assert infra is not None
    prefix = infra.artifacts_prefix
    objects = sub(f"${{{BUCKET}.Arn}}/{literal(prefix)}/*")
    statements = [
        statement(
            "ListSystemPrefix",
            ["s3:ListBucket"],
            [get_att(BUCKET, "Arn")],
            condition={"StringLike": {"s3:prefix": [prefix, f"{prefix}/*"]}},
        ),
        statement("ReadSystemObjects", sa.object_read_actions, [objects]),
    ]
    if sa.object_write_actions:
        where = prefix if sa.write_prefix is None else f"{prefix}/{sa.write_prefix}"
        written = sub(f"${{{BUCKET}.Arn}}/{literal(where)}/*")
        statements.append(statement("WriteSystemObjects", sa.object_write_actions, [written]))
    statements.append(statement("UseArtifactsKey", sa.key_actions, [get_att(KEY, "Arn")]))
    return irsa_role(
        ir,
        sa.role_name,
        (sa.namespace, sa.name),
        f"artifacts-{sa.bucket_access}",
        statements,
        f"ServiceAccount {sa.namespace}/{sa.name}: {sa.bucket_access} under s3://{infra.artifacts_bucket}/{prefix}/",
    )
