"""Encryption key, artifacts bucket and container registry."""

from __future__ import annotations

import json
from dataclasses import dataclass

from mlspec.ir.model import Infrastructure
from mlspec_terraform.cdk import Construct, attr, data, resource
from mlspec_terraform.policy import condition, document, statement


@dataclass(frozen=True)
class StorageRefs:
    kms_key_arn: str
    bucket_arn: str
    bucket_name: str
    repository_url: str


def build_kms_key(scope: Construct, infra: Infrastructure) -> str:
    """One customer-managed key for EKS secrets, the bucket, the registry and the log groups. Returns its ARN."""
    identity = data(scope, "aws_caller_identity", "current", {})
    partition = data(scope, "aws_partition", "current", {})
    account = attr(identity, "account_id")
    part = attr(partition, "partition")
    root = f"arn:{part}:iam::{account}:root"
    logs_arn = f"arn:{part}:logs:{infra.region}:{account}:log-group:*"
    # A key policy's Resource "*" means "this key"; it is written inline rather than as an
    # aws_iam_policy_document so that IAM-policy checks (meant for identity policies) do not misread it.
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                # The account administers the key; IAM policies (cluster role, IRSA roles) then grant its use.
                {
                    "Sid": "AccountAdministers",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "CloudWatchLogsEncrypt",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{infra.region}.amazonaws.com"},
                    "Action": [
                        "kms:Encrypt*",
                        "kms:Decrypt*",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:Describe*",
                    ],
                    "Resource": "*",
                    "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": logs_arn}},
                },
            ],
        },
        sort_keys=True,
    )
    key = resource(
        scope,
        "aws_kms_key",
        "platform",
        {
            "description": f"mlspec platform key for {infra.cluster_name}",
            "enable_key_rotation": True,
            "deletion_window_in_days": infra.kms_deletion_window_days,
            "policy": policy,
        },
    )
    resource(
        scope,
        "aws_kms_alias",
        "platform",
        {
            "name": infra.kms_key_alias,
            "target_key_id": attr(key, "key_id"),
        },
    )
    return attr(key, "arn")


def build_storage(scope: Construct, infra: Infrastructure, kms_key_arn: str) -> StorageRefs:
    bucket = resource(scope, "aws_s3_bucket", "artifacts", {"bucket": infra.artifacts_bucket})
    bucket_id = attr(bucket, "id")
    resource(
        scope,
        "aws_s3_bucket_public_access_block",
        "artifacts",
        {
            "bucket": bucket_id,
            "block_public_acls": True,
            "block_public_policy": True,
            "ignore_public_acls": True,
            "restrict_public_buckets": True,
        },
    )
    resource(
        scope,
        "aws_s3_bucket_versioning",
        "artifacts",
        {
            "bucket": bucket_id,
            "versioning_configuration": [{"status": "Enabled"}],
        },
    )
    resource(
        scope,
        "aws_s3_bucket_server_side_encryption_configuration",
        "artifacts",
        {
            "bucket": bucket_id,
            "rule": [
                {
                    "apply_server_side_encryption_by_default": [
                        {"sse_algorithm": "aws:kms", "kms_master_key_id": kms_key_arn}
                    ],
                    "bucket_key_enabled": True,
                }
            ],
        },
    )
    resource(
        scope,
        "aws_s3_bucket_lifecycle_configuration",
        "artifacts",
        {
            "bucket": bucket_id,
            "rule": [
                {
                    "id": "expire-noncurrent-versions",
                    "status": "Enabled",
                    "filter": [{}],
                    "noncurrent_version_expiration": [{"noncurrent_days": infra.noncurrent_version_days}],
                    "abort_incomplete_multipart_upload": [{"days_after_initiation": 7}],
                }
            ],
            "depends_on": ["aws_s3_bucket_versioning.artifacts"],
        },
    )
    arn = attr(bucket, "arn")
    resource(
        scope,
        "aws_s3_bucket_policy",
        "artifacts",
        {
            "bucket": bucket_id,
            "policy": document(
                scope,
                "artifacts_bucket",
                [
                    statement(
                        "DenyInsecureTransport",
                        ["s3:*"],
                        [arn, f"{arn}/*"],
                        effect="Deny",
                        principals=[{"type": "*", "identifiers": ["*"]}],
                        conditions=[condition("Bool", "aws:SecureTransport", ["false"])],
                    )
                ],
            ),
            "depends_on": ["aws_s3_bucket_public_access_block.artifacts"],
        },
    )
    repository = resource(
        scope,
        "aws_ecr_repository",
        "models",
        {
            "name": infra.container_registry,
            "image_tag_mutability": "IMMUTABLE",
            "image_scanning_configuration": [{"scan_on_push": True}],
            "encryption_configuration": [{"encryption_type": "KMS", "kms_key": kms_key_arn}],
        },
    )
    return StorageRefs(kms_key_arn, arn, bucket_id, attr(repository, "repository_url"))
