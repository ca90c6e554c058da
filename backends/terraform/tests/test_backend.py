"""The backend seam, determinism, and that the Terraform output says what the IR says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mlspec_terraform import TerraformBackend

from mlspec.backends import EmitContext, load_backend

ROOT = Path(__file__).resolve().parents[3]


def test_entry_point_loads_the_backend():
    assert isinstance(load_backend("terraform"), TerraformBackend)


def test_two_compiles_are_byte_identical(churn_ir, churn_tf):
    again = {a.path: a.content for a in TerraformBackend().emit(churn_ir, EmitContext())}
    assert again == churn_tf


def test_compile_in_a_fresh_process_is_byte_identical(churn_tf, tmp_path):
    """Another interpreter (other hash seed, other cdktf node process) yields the same bytes."""
    code = (
        "import mlspec, sys; from mlspec.backends import EmitContext; from mlspec_terraform import TerraformBackend;"
        "ir = mlspec.lower(mlspec.load('specs/churn.yaml'));"
        "sys.stdout.write([a.content for a in TerraformBackend().emit(ir, EmitContext()) if a.path == 'main.tf.json'][0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={
            "PYTHONHASHSEED": "123",
            "PATH": "/usr/bin:/usr/local/bin",
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
            # a checkout that is not the installed one (a git worktree) imports its own code
            **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
        },
    )
    assert out.stdout == churn_tf["main.tf.json"]


def test_no_absolute_paths_or_cdktf_metadata(churn_tf, churn_doc):
    text = churn_tf["main.tf.json"]
    assert "/tmp" not in text and str(ROOT) not in text and "/home" not in text
    assert "cdktf" not in text.lower() and "TfToken" not in text
    assert churn_doc["terraform"]["backend"] == {
        "s3": {
            "bucket": "acme-terraform-state",
            "key": "mlspec/churn/default/terraform.tfstate",
            "region": "us-east-1",
            "dynamodb_table": "terraform-locks",
            "encrypt": True,
        }
    }
    assert churn_doc["terraform"]["required_providers"]["aws"] == {
        "source": "hashicorp/aws",
        "version": ">= 5.100, < 6.0",
    }


# The EKS AMI of each IR image family, as the AWS provider names them (validated in test_engines.py).
AMI_TYPES = {
    "standard": "AL2023_x86_64_STANDARD",
    "nvidia": "AL2023_x86_64_NVIDIA",
    "neuron": "AL2023_x86_64_NEURON",
}
TF_EFFECTS = {
    "NoSchedule": "NO_SCHEDULE",
    "PreferNoSchedule": "PREFER_NO_SCHEDULE",
    "NoExecute": "NO_EXECUTE",
}


def assert_node_groups_equal_the_ir_pools(ir, doc):
    groups = doc["resource"]["aws_eks_node_group"]
    assert set(groups) == {p.task_id for p in ir.infrastructure.node_pools}
    for pool in ir.infrastructure.node_pools:
        group = groups[pool.task_id]
        assert group["labels"] == pool.labels
        assert group["taint"] == [
            {"key": t.key, "value": t.value, "effect": TF_EFFECTS[t.effect]} for t in pool.taints
        ]
        assert group["scaling_config"] == [
            {"min_size": pool.min, "max_size": pool.max, "desired_size": pool.desired}
        ]
        assert group["instance_types"] == [pool.instance_type]
        assert group["ami_type"] == AMI_TYPES[pool.image_family]
        assert group["disk_size"] == pool.disk_size_gb
        assert group["capacity_type"] == ("SPOT" if pool.spot else "ON_DEMAND")
        assert pool.node_selector.items() <= group["labels"].items()


def test_node_groups_equal_the_ir_pools(churn_ir, churn_doc):
    assert_node_groups_equal_the_ir_pools(churn_ir, churn_doc)
    gpu = churn_ir.node_pool("gpu")
    assert gpu is not None and gpu.image_family == "nvidia"
    assert churn_doc["resource"]["aws_eks_node_group"]["gpu"]["taint"] == [
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}
    ]
    # The GPU training step selects this pool through the same labels the node group carries.
    train = next(s for s in churn_ir.pipeline("training").steps if s.id == "train")
    assert train.placement.node_pool == gpu.id and train.placement.gpu.resource == gpu.gpu.resource


def test_every_image_family_gets_its_ami(families_ir, families_doc, families_tf):
    assert {p.image_family for p in families_ir.infrastructure.node_pools} == set(AMI_TYPES)
    assert_node_groups_equal_the_ir_pools(families_ir, families_doc)
    inf = families_ir.node_pool("inf")
    assert families_doc["resource"]["aws_eks_node_group"]["inf"]["ami_type"] == "AL2023_x86_64_NEURON"
    assert (
        f"| inf | inf2.xlarge | 1 aws-inferentia2 (`{inf.gpu.resource}`) | AL2023_x86_64_NEURON |"
        in (families_tf["README.md"])
    )


def test_bucket_repository_cluster_and_roles_equal_the_ir(churn_ir, churn_doc):
    infra = churn_ir.infrastructure
    res = churn_doc["resource"]
    assert res["aws_s3_bucket"]["artifacts"]["bucket"] == infra.artifacts_bucket
    assert res["aws_ecr_repository"]["models"]["name"] == infra.container_registry
    assert res["aws_eks_cluster"]["main"]["name"] == infra.cluster_name
    assert res["aws_eks_cluster"]["main"]["version"] == infra.cluster_version
    lifecycle = res["aws_s3_bucket_lifecycle_configuration"]["artifacts"]["rule"][0]
    assert lifecycle["noncurrent_version_expiration"] == [{"noncurrent_days": infra.noncurrent_version_days}]
    roles = {r["name"] for r in res["aws_iam_role"].values()}
    for sa in churn_ir.service_accounts:
        assert sa.role_name in roles
        assert sa.role_arn.endswith(f":role/{sa.role_name}")
        assert churn_doc["output"][f"{sa.id}_role_arn"]["value"] == f"${{aws_iam_role.irsa_{sa.id}.arn}}"
        trust = churn_doc["data"]["aws_iam_policy_document"][f"irsa_{sa.id}_assume"]["statement"][0]
        assert [c["values"] for c in trust["condition"] if c["variable"].endswith(":sub")] == [
            [f"system:serviceaccount:{sa.namespace}:{sa.name}"]
        ]
    for name in ("cluster_name", "cluster_endpoint", "artifacts_bucket", "repository_url"):
        assert name in churn_doc["output"]


def test_bucket_access_is_least_privilege_per_service_account(churn_ir, churn_doc):
    """Training and monitoring read and write the system's prefix; the server reads it and writes only its
    prediction log (s3://acme-ml-artifacts/churn/predictions), never deleting."""
    prefix = churn_ir.infrastructure.artifacts_prefix
    assert prefix == "churn"
    objects = f"${{aws_s3_bucket.artifacts.arn}}/{prefix}/*"
    written = {"training": objects, "monitoring": objects, "serving": objects[:-1] + "predictions/*"}
    assert churn_ir.serving.prediction_log == "s3://acme-ml-artifacts/churn/predictions"
    for sa in churn_ir.service_accounts:
        statements = churn_doc["data"]["aws_iam_policy_document"][f"irsa_{sa.id}"]["statement"]
        by_sid = {s["sid"]: s for s in statements}
        assert by_sid["ReadSystemObjects"]["resources"] == [objects]
        assert by_sid["WriteSystemObjects"]["resources"] == [written[sa.id]]
        assert ("s3:DeleteObject" in by_sid["WriteSystemObjects"]["actions"]) == (sa.id != "serving")
        assert by_sid["UseArtifactsKey"]["actions"] == ["kms:Decrypt", "kms:GenerateDataKey"]
        for s in statements:
            assert "*" not in s["resources"] and all(not a.endswith(":*") for a in s["actions"])


def test_existing_network_is_used_not_created(churn_ir):
    infra = churn_ir.infrastructure
    net = infra.network.model_copy(update={"vpc_id": "vpc-0abc", "subnet_ids": ["subnet-1", "subnet-2"]})
    ir = churn_ir.model_copy(update={"infrastructure": infra.model_copy(update={"network": net})})
    doc = json.loads(
        next(a.content for a in TerraformBackend().emit(ir, EmitContext()) if a.path == "main.tf.json")
    )
    assert "aws_vpc" not in doc["resource"] and "aws_nat_gateway" not in doc["resource"]
    assert doc["resource"]["aws_eks_cluster"]["main"]["vpc_config"][0]["subnet_ids"] == [
        "subnet-1",
        "subnet-2",
    ]


def test_gcp_is_reported_unsupported_through_the_seam(churn_ir):
    infra = churn_ir.infrastructure.model_copy(update={"cloud": "gcp"})
    ir = churn_ir.model_copy(update={"infrastructure": infra})
    ctx = EmitContext()
    assert TerraformBackend().emit(ir, ctx) == []
    assert [d.code for d in ctx.diagnostics] == ["MS301"]
    assert "infrastructure.gcp" in ctx.diagnostics[0].message
    assert ctx.diagnostics[0].severity.name == "ERROR"


def test_no_infrastructure_is_reported_from_the_capability_table(churn_ir):
    ir = churn_ir.model_copy(update={"infrastructure": None})
    ctx = EmitContext()
    assert TerraformBackend().emit(ir, ctx) == []
    (diag,) = ctx.diagnostics
    assert diag.code == "MS301" and "infrastructure.none" in diag.message
    assert [u.feature for u, _ in TerraformBackend().check(ir, {})] == ["infrastructure.none"]


def test_stack_embeds_in_a_users_app(churn_ir, tmp_path):
    import cdktf
    from mlspec_terraform import MLPlatformStack

    app = cdktf.App(outdir=str(tmp_path))
    MLPlatformStack(app, "ml-platform", churn_ir)
    app.synth()
    synthesized = json.loads((tmp_path / "stacks" / "ml-platform" / "cdk.tf.json").read_text())
    assert synthesized["resource"]["aws_eks_cluster"]["main"]["name"] == "ml-prod"
