"""The output proved by terraform itself (validate with the real provider; apply/destroy against moto) and checkov."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import terraform

ROOT = Path(__file__).resolve().parents[3]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
SECURITY_DOC = ROOT / "docs" / "security.md"
# Services the generated stack calls; each pointed at moto.
SERVICES = ("ec2", "eks", "iam", "kms", "s3", "ecr", "sts", "cloudwatchlogs")

pytestmark = pytest.mark.engine


def initialized(path: Path, files: dict[str, str], cli_config: Path) -> Path:
    """A copy of the output with the aws provider installed from the filesystem mirror (no network)."""
    for name, text in files.items():
        (path / name).write_text(text)
    terraform(["init", "-backend=false", "-input=false"], path, cli_config)
    return path


def validate(path: Path, cli_config: Path) -> None:
    out = terraform(["validate", "-json"], path, cli_config)
    result = json.loads(out.stdout)
    assert result["valid"] and result["error_count"] == 0 and result["warning_count"] == 0, result
    lock = (path / ".terraform.lock.hcl").read_text()
    assert 'version     = "5.100.0"' in lock


def test_terraform_validate_with_the_real_provider(tmp_path, churn_tf, tf_cli_config):
    validate(initialized(tmp_path, churn_tf, tf_cli_config), tf_cli_config)


def test_every_ami_type_is_one_the_provider_accepts(tmp_path, families_tf, families_doc, tf_cli_config):
    """The provider validates ami_type against its list: standard, NVIDIA and Neuron pools all pass."""
    amis = {g["ami_type"] for g in families_doc["resource"]["aws_eks_node_group"].values()}
    assert amis == {"AL2023_x86_64_STANDARD", "AL2023_x86_64_NVIDIA", "AL2023_x86_64_NEURON"}
    validate(initialized(tmp_path, families_tf, tf_cli_config), tf_cli_config)


def accepted_checks() -> dict[str, str]:
    """CHECK_ID -> reason from the `## Terraform` section of docs/security.md."""
    text = SECURITY_DOC.read_text()
    section = text.split("## Terraform", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^- (CKV2?_[A-Z0-9_]+): (.+)$", section, flags=re.MULTILINE))


def test_checkov_finds_nothing_beyond_the_documented_exceptions(churn_tf, tmp_path):
    if not CHECKOV.exists():
        pytest.fail(f"checkov is not installed at {CHECKOV}")
    (tmp_path / "main.tf.json").write_text(churn_tf["main.tf.json"])
    proc = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(tmp_path),
            "--framework",
            "terraform_json",
            "--skip-download",
            "--compact",
            "--quiet",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    summary = reports[0]["summary"]
    assert summary["parsing_errors"] == 0 and summary["passed"] > 100, summary
    failed = {(c["check_id"], c["resource"]) for r in reports for c in r["results"]["failed_checks"]}
    accepted = accepted_checks()
    assert accepted, "docs/security.md lists no accepted checks: the parser is broken"
    unexplained = sorted(f for f in failed if f[0] not in accepted)
    assert not unexplained, f"checkov failures not accepted in docs/security.md: {unexplained}"


def moto_override(endpoint: str) -> dict:
    return {
        # Local state in the test's folder instead of the spec's S3 backend.
        "terraform": {"backend": {"local": {"path": "terraform.tfstate"}}},
        "provider": {
            "aws": {
                "access_key": "testing",
                "secret_key": "testing",
                "s3_use_path_style": True,
                "skip_credentials_validation": True,
                "skip_metadata_api_check": True,
                # Left on: the provider asks moto's STS for the account, so allowed_account_ids is enforced.
                "skip_requesting_account_id": False,
                "endpoints": [dict.fromkeys(SERVICES, endpoint)],
            }
        },
    }


# Resource types moto 5.2 has no API for: EKS add-ons (no CreateAddon) and tags on
# the auto scaling group of an EKS node group (moto's node groups name a group that its autoscaling backend
# does not hold). `terraform validate` with the real provider covers them; the apply targets the rest.
NOT_IN_MOTO = ("aws_eks_addon", "aws_autoscaling_group_tag")


def moto_targets(doc: dict) -> list[str]:
    return sorted(
        f"{type_}.{name}"
        for type_, resources in doc["resource"].items()
        if type_ not in NOT_IN_MOTO
        for name in resources
    )


def test_the_platform_rows_moto_cannot_apply_are_there(churn_doc):
    """What the apply below leaves out is in the output, for every autoscaled pool and both add-ons."""
    assert set(churn_doc["resource"]["aws_eks_addon"]) == {"vpc_cni", "metrics_server"}
    tags = churn_doc["resource"]["aws_autoscaling_group_tag"]
    assert {t["tag"][0]["key"] for t in tags.values()} >= {
        "k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu",
        "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu",
        "k8s.io/cluster-autoscaler/node-template/label/mlspec.io/node-pool",
    }


def test_apply_and_destroy_against_moto(tf_dir, tf_cli_config, moto_server, churn_doc):
    (tf_dir / "override.tf.json").write_text(json.dumps(moto_override(moto_server), indent=2))
    terraform(["init", "-input=false"], tf_dir, tf_cli_config)
    targets = [f"-target={address}" for address in moto_targets(churn_doc)]
    planned = {
        r["address"]
        for r in json.loads(
            terraform(["show", "-json", _plan(tf_dir, tf_cli_config, targets)], tf_dir, tf_cli_config).stdout
        )["resource_changes"]
        if r["mode"] == "managed"
    }
    assert len(planned) >= 45
    assert (
        "aws_iam_role.cluster_autoscaler" in planned and "aws_iam_role_policy.cluster_autoscaler" in planned
    )

    terraform(
        ["apply", "-auto-approve", "-input=false", "-parallelism=20", "plan.tfplan"],
        tf_dir,
        tf_cli_config,
        timeout=420,
    )
    state = json.loads(terraform(["show", "-json"], tf_dir, tf_cli_config).stdout)
    created = {r["address"] for r in state["values"]["root_module"]["resources"] if r["mode"] == "managed"}
    assert created == planned, f"not created: {sorted(planned - created)}"
    outputs = state["values"]["outputs"]
    assert outputs["cluster_name"]["value"] == "ml-prod"
    assert outputs["artifacts_bucket"]["value"] == "acme-ml-artifacts"
    assert outputs["training_role_arn"]["value"] == "arn:aws:iam::123456789012:role/ml-prod-churn-training"
    gpu = next(
        r for r in state["values"]["root_module"]["resources"] if r["address"] == "aws_eks_node_group.gpu"
    )
    assert gpu["values"]["taint"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]

    assert (
        outputs["cluster_autoscaler_role_arn"]["value"]
        == "arn:aws:iam::123456789012:role/ml-prod-cluster-autoscaler"
    )

    terraform(
        ["destroy", "-auto-approve", "-input=false", "-parallelism=20", *targets],
        tf_dir,
        tf_cli_config,
        timeout=420,
    )
    after = json.loads(terraform(["show", "-json"], tf_dir, tf_cli_config).stdout)
    left = [
        r["address"]
        for r in after.get("values", {}).get("root_module", {}).get("resources", [])
        if r["mode"] == "managed"
    ]
    assert not left, f"resources left after destroy: {left}"  # a targeted destroy keeps data sources


def _plan(tf_dir: Path, cli_config: Path, targets: list[str]) -> str:
    terraform(["plan", "-input=false", "-out=plan.tfplan", *targets], tf_dir, cli_config)
    return "plan.tfplan"
