"""The platform KMS key, the artifacts bucket and the image repository."""

from __future__ import annotations

from mlspec.ir.model import IR
from mlspec_cloudformation.cfn import ACCOUNT, PARTITION, REGION, Resource, Template, get_att, ref, sub
from mlspec_cloudformation.policy import document, statement
from mlspec_cloudformation.tags import tag_list

KEY = "PlatformKey"
BUCKET = "ArtifactsBucket"
REPOSITORY = "Repository"
MULTIPART_UPLOAD_DAYS = 7  # stale multipart uploads are aborted after a week


def build_key(template: Template, ir: IR) -> str:
    """One customer-managed key for EKS secrets, the bucket, the registry and the log groups."""
    infra = ir.infrastructure
    assert infra is not None
    template.section("Encryption: one customer-managed key for secrets, artifacts, images and logs")
    # A key policy's Resource "*" means "this key". The account administers the key; IAM policies (the
    # cluster role, the IRSA roles) then grant its use. CloudWatch Logs may use it for this account's groups.
    policy = document(
        statement(
            "AccountAdministers",
            ["kms:*"],
            "*",
            principal={"AWS": sub(f"arn:{PARTITION}:iam::{ACCOUNT}:root")},
        ),
        statement(
            "CloudWatchLogsEncrypt",
            ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            "*",
            principal={"Service": sub(f"logs.{REGION}.amazonaws.com")},
            condition={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": sub(
                        f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:*"
                    )
                }
            },
        ),
    )
    template.add(
        KEY,
        Resource(
            "AWS::KMS::Key",
            {
                "Description": f"mlspec platform key for {infra.cluster_name}",
                "EnableKeyRotation": True,
                "PendingWindowInDays": infra.kms_deletion_window_days,
                "KeyPolicy": policy,
                "Tags": tag_list(ir),
            },
            deletion_policy="Delete",
        ),
    )
    template.add(
        "PlatformKeyAlias",
        Resource("AWS::KMS::Alias", {"AliasName": infra.kms_key_alias, "TargetKeyId": ref(KEY)}),
    )
    return KEY


def build_storage(template: Template, ir: IR) -> None:
    infra = ir.infrastructure
    assert infra is not None
    key_arn = get_att(KEY, "Arn")
    template.section("Storage: the artifacts bucket and the image repository")
    template.add(
        BUCKET,
        Resource(
            "AWS::S3::Bucket",
            {
                "BucketName": infra.artifacts_bucket,
                "VersioningConfiguration": {"Status": "Enabled"},
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {
                            "ServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": key_arn,
                            },
                            "BucketKeyEnabled": True,
                        }
                    ]
                },
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            "Id": "expire-noncurrent-versions",
                            "Status": "Enabled",
                            "NoncurrentVersionExpiration": {"NoncurrentDays": infra.noncurrent_version_days},
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": MULTIPART_UPLOAD_DAYS},
                        }
                    ]
                },
                "Tags": tag_list(ir),
            },
            deletion_policy="Delete",
        ),
    )
    bucket_arn = get_att(BUCKET, "Arn")
    template.add(
        "ArtifactsBucketPolicy",
        Resource(
            "AWS::S3::BucketPolicy",
            {
                "Bucket": ref(BUCKET),
                "PolicyDocument": document(
                    statement(
                        "DenyInsecureTransport",
                        ["s3:*"],
                        [bucket_arn, sub("${ArtifactsBucket.Arn}/*")],
                        effect="Deny",
                        principal="*",
                        condition={"Bool": {"aws:SecureTransport": "false"}},
                    )
                ),
            },
        ),
    )
    template.add(
        REPOSITORY,
        Resource(
            "AWS::ECR::Repository",
            {
                "RepositoryName": infra.container_registry,
                "ImageTagMutability": "IMMUTABLE",
                "ImageScanningConfiguration": {"ScanOnPush": True},
                "EncryptionConfiguration": {"EncryptionType": "KMS", "KmsKey": key_arn},
                "Tags": tag_list(ir),
            },
            deletion_policy="Delete",
        ),
    )
