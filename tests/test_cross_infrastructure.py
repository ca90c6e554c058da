"""The Terraform JSON and the CloudFormation template build the same platform from the same IR.

For every spec in specs/ with infrastructure and every one of its environments (and two variants: a pool of
each node image family; an existing VPC without an account id), both outputs are reduced to what they mean
(node groups, network, bucket, repository, key, log groups, roles with their trust and scopes, EKS add-ons,
what the Cluster Autoscaler learns about a pool at zero nodes, outputs), each by its own reader below, and
the two meanings must be equal. Every Terraform resource type must have a CloudFormation counterpart (or a
stated reason), so a platform piece added to one backend alone fails here. The readers spell the two
formats (`${aws_s3_bucket.artifacts.arn}` against `!GetAtt ArtifactsBucket.Arn`); neither imports a backend.
"""

from __future__ import annotations

import json
import re
from functools import cache

import pytest
from helpers_core import ROOT

import mlspec

pytestmark = pytest.mark.slow

CHURN = (ROOT / "specs" / "churn.yaml").read_text("utf-8")
VARIANTS = {
    "families": CHURN.replace(
        "    gpu: {instance_type: g5.xlarge,",
        "    inf: {instance_type: inf2.xlarge, min: 0, max: 2}\n    gpu: {instance_type: g5.xlarge,",
    ),
    # without an account id the kubernetes target cannot annotate its ServiceAccounts (MS301): not listed
    "existing-network": CHURN.replace('  account_id: "123456789012"\n', "")
    .replace(
        "  storage: {artifacts_bucket: acme-ml-artifacts}",
        "  storage: {artifacts_bucket: acme-ml-artifacts}\n"
        "  network: {vpc_id: vpc-0abc1234, subnet_ids: [subnet-0aaa1111, subnet-0bbb2222]}",
    )
    .replace(re.search(r"^targets: .*$", CHURN, re.M)[0], "targets: [terraform, cloudformation]"),
}


def cases() -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for path in sorted((ROOT / "specs").glob("*.yaml")):
        spec = mlspec.load(path).spec
        if spec.infrastructure is not None:
            out += [(path.name, None), *((path.name, env) for env in spec.environments)]
    return out + [(name, None) for name in VARIANTS]


@cache
def compiled(source: str, env: str | None) -> tuple:
    """(IR, Terraform JSON, CloudFormation template as CloudFormation reads it)."""
    from cfnlint.decode import decode_str

    if source in VARIANTS:
        loaded = mlspec.loads(VARIANTS[source], "specs/churn.yaml")
    else:
        loaded = mlspec.load(ROOT / "specs" / source)
    result = mlspec.compile(loaded, ["terraform", "cloudformation"], env=env)
    files = {t: {a.path: a.data().decode() for a in arts} for t, arts in result.artifacts.items()}
    template, errors = decode_str(files["cloudformation"]["template.yaml"])
    assert not errors
    return result.ir, json.loads(files["terraform"]["main.tf.json"]), json.loads(json.dumps(template))


# ------------------------------------------------------------------------------------------------ Terraform
TF_REFS = {
    "${aws_s3_bucket.artifacts.arn}": "BUCKET",
    "${aws_kms_key.platform.arn}": "KEY",
}


def _tf_value(doc: dict, value: str) -> str:
    for ref, name in TF_REFS.items():
        value = value.replace(ref, name)
    group = re.fullmatch(r"\$\{aws_eks_node_group\.(\w+)\.arn\}", value)
    if group:
        return "NODEGROUP " + doc["resource"]["aws_eks_node_group"][group[1]]["node_group_name"]
    return value


def _tf_statements(doc: dict, name: str) -> dict:
    out = {}
    for s in doc["data"]["aws_iam_policy_document"][name]["statement"]:
        conditions = {c["test"]: {c["variable"]: c["values"]} for c in s.get("condition", [])}
        out[s["sid"]] = (s["actions"], [_tf_value(doc, r) for r in s.get("resources", [])], conditions)
    return out


def _tf_addons(doc: dict) -> dict:
    groups = doc["resource"]["aws_eks_node_group"]
    return {
        a["addon_name"]: {
            "version": a.get("addon_version"),
            "configuration": json.loads(a.get("configuration_values", "{}")),
            "conflicts": (a["resolve_conflicts_on_create"], a["resolve_conflicts_on_update"]),
            "after": sorted(groups[d.split(".")[1]]["node_group_name"] for d in a["depends_on"]),
        }
        for a in doc["resource"].get("aws_eks_addon", {}).values()
    }


TEMPLATE_TAG = "k8s.io/cluster-autoscaler/node-template/"


def _tf_templates(doc: dict) -> dict:
    """Node group -> the labels, taints and resources the autoscaler reads from its auto scaling group's tags."""
    groups = doc["resource"]["aws_eks_node_group"]
    out: dict = {}
    for t in doc["resource"].get("aws_autoscaling_group_tag", {}).values():
        key = re.fullmatch(
            r"\$\{aws_eks_node_group\.(\w+)\.resources\[0\]\.autoscaling_groups\[0\]\.name\}",
            t["autoscaling_group_name"],
        )[1]
        template = out.setdefault(
            groups[key]["node_group_name"], {"labels": {}, "taints": [], "resources": {}}
        )
        (tag,) = t["tag"]
        kind, name = tag["key"].removeprefix(TEMPLATE_TAG).split("/", 1)
        if kind == "label":
            template["labels"][name] = tag["value"]
        elif kind == "taint":
            value, effect = tag["value"].split(":")
            template["taints"].append((name, value, effect))
        else:
            template["resources"][name] = tag["value"]
    return out


def terraform_meaning(doc: dict) -> dict:
    res = doc["resource"]
    roles = {key: r["name"] for key, r in res["aws_iam_role"].items()}
    attached: dict[str, list[str]] = {}
    for attachment in res.get("aws_iam_role_policy_attachment", {}).values():
        role = roles[re.fullmatch(r"\$\{aws_iam_role\.(\w+)\.name\}", attachment["role"])[1]]
        attached.setdefault(role, []).append(attachment["policy_arn"].rsplit("/", 1)[1])
    irsa = {}
    for key, role in res["aws_iam_role"].items():
        (trust,) = doc["data"]["aws_iam_policy_document"][f"{key}_assume"]["statement"]
        if "condition" not in trust:  # a service's role, not a ServiceAccount's
            continue
        claims = {c["variable"].rsplit(":", 1)[1]: c["values"] for c in trust["condition"]}
        policy = res["aws_iam_role_policy"][key]
        irsa[role["name"]] = {
            "claims": claims,
            "policy_name": policy["name"],
            "statements": _tf_statements(doc, key),
        }
    vpc = res.get("aws_vpc", {}).get("main")
    subnets = res.get("aws_subnet", {})
    cluster = res["aws_eks_cluster"]["main"]
    private = sorted(s["cidr_block"] for k, s in subnets.items() if k.startswith("private_"))
    zones = doc.get("data", {}).get("aws_availability_zones", {}).get("available")
    bucket = res["aws_s3_bucket"]["artifacts"]
    lifecycle = res["aws_s3_bucket_lifecycle_configuration"]["artifacts"]["rule"][0]
    repository = res["aws_ecr_repository"]["models"]
    key = res["aws_kms_key"]["platform"]
    return {
        "node_groups": {
            g["node_group_name"]: {
                "instance_types": g["instance_types"],
                "ami_type": g["ami_type"],
                "capacity_type": g["capacity_type"],
                "disk_size": g["disk_size"],
                "sizes": (
                    g["scaling_config"][0]["min_size"],
                    g["scaling_config"][0]["desired_size"],
                    g["scaling_config"][0]["max_size"],
                ),
                "max_unavailable": g["update_config"][0]["max_unavailable"],
                "labels": g["labels"],
                "taints": [(t["key"], t["value"], t["effect"]) for t in g["taint"]],
            }
            for g in res["aws_eks_node_group"].values()
        },
        "network": {
            "vpc_cidr": vpc["cidr_block"] if vpc else None,
            "zones": zones["filter"][0]["values"] if zones else [],
            "private_subnets": private,
            "public_subnets": sorted(s["cidr_block"] for k, s in subnets.items() if k.startswith("public_")),
            "nat_gateways": len(res.get("aws_nat_gateway", {})),
            "existing_subnets": cluster["vpc_config"][0]["subnet_ids"] if not vpc else None,
            "flow_logs": bool(res.get("aws_flow_log")),
        },
        "cluster": {
            "name": cluster["name"],
            "version": cluster["version"],
            "private": (
                cluster["vpc_config"][0]["endpoint_private_access"],
                cluster["vpc_config"][0]["endpoint_public_access"],
            ),
            "log_types": cluster["enabled_cluster_log_types"],
            "encrypts": [r for c in cluster["encryption_config"] for r in c["resources"]],
        },
        "log_groups": {g["name"]: g["retention_in_days"] for g in res["aws_cloudwatch_log_group"].values()},
        "key": {
            "alias": next(iter(res["aws_kms_alias"].values()))["name"],
            "rotation": key["enable_key_rotation"],
            "deletion_window": key["deletion_window_in_days"],
        },
        "bucket": {
            "name": bucket["bucket"],
            "noncurrent_days": lifecycle["noncurrent_version_expiration"][0]["noncurrent_days"],
            "abort_multipart_days": lifecycle["abort_incomplete_multipart_upload"][0][
                "days_after_initiation"
            ],
        },
        "repository": {
            "name": repository["name"],
            "mutability": repository["image_tag_mutability"],
            "scan_on_push": repository["image_scanning_configuration"][0]["scan_on_push"],
        },
        "roles": sorted(roles.values()),
        "managed_policies": {role: sorted(names) for role, names in attached.items()},
        "irsa": irsa,
        "addons": _tf_addons(doc),
        "autoscaler_templates": _tf_templates(doc),
        "tags": doc["provider"]["aws"][0]["default_tags"][0]["tags"],
        "role_outputs": {
            name.removesuffix("_role_arn").replace("_", ""): re.fullmatch(
                r"\$\{aws_iam_role\.(\w+)\.arn\}", o["value"]
            )[1]
            for name, o in doc["output"].items()
            if name.endswith("_role_arn")
        },
    }


# ------------------------------------------------------------------------------------------------ CloudFormation
CFN_REFS = {
    json.dumps({"Fn::GetAtt": ["ArtifactsBucket", "Arn"]}): "BUCKET",
    json.dumps({"Fn::GetAtt": ["PlatformKey", "Arn"]}): "KEY",
}


def _cfn_value(doc: dict, value) -> str:
    if isinstance(value, dict) and "Fn::Sub" in value:
        return value["Fn::Sub"].replace("${ArtifactsBucket.Arn}", "BUCKET")
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        name, attribute = value["Fn::GetAtt"]
        resource = doc["Resources"][name]
        if resource["Type"] == "AWS::EKS::Nodegroup" and attribute == "Arn":
            return "NODEGROUP " + resource["Properties"]["NodegroupName"]
    return CFN_REFS.get(json.dumps(value), value)


def _cfn_addons(doc: dict) -> dict:
    out = {}
    for r in doc["Resources"].values():
        if r["Type"] != "AWS::EKS::Addon":
            continue
        props = r["Properties"]
        out[props["AddonName"]] = {
            "version": props.get("AddonVersion"),
            "configuration": json.loads(props.get("ConfigurationValues", "{}")),
            # one setting for create and update
            "conflicts": (props["ResolveConflicts"], props["ResolveConflicts"]),
            "after": sorted(doc["Resources"][d]["Properties"]["NodegroupName"] for d in r["DependsOn"]),
        }
    return out


# What the Cluster Autoscaler (1.31 and later) makes of the taint effects eks:DescribeNodegroup returns.
EKS_EFFECTS = {
    "NO_SCHEDULE": "NoSchedule",
    "PREFER_NO_SCHEDULE": "PreferNoSchedule",
    "NO_EXECUTE": "NoExecute",
}


def _cfn_templates(doc: dict) -> dict:
    """Node group -> what the autoscaler reads from an autoscaled group through eks:DescribeNodegroup: its
    labels, its taints and its node-template resource tags (nothing without an autoscaler role)."""
    if not any(
        s["Action"] == ["eks:DescribeNodegroup"]
        for r in doc["Resources"].values()
        if r["Type"] == "AWS::IAM::Role"
        for p in r["Properties"].get("Policies", [])
        for s in p["PolicyDocument"]["Statement"]
    ):
        return {}
    out = {}
    for g in _of_type(doc, "AWS::EKS::Nodegroup"):
        sizes = {k: _default(doc, v) for k, v in g["ScalingConfig"].items()}
        if sizes["MaxSize"] <= sizes["MinSize"]:
            continue
        template = {
            "labels": g["Labels"],
            "taints": [(t["Key"], t["Value"], EKS_EFFECTS[t["Effect"]]) for t in g.get("Taints", [])],
            "resources": {
                k.removeprefix(TEMPLATE_TAG + "resources/"): v
                for k, v in g["Tags"].items()
                if k.startswith(TEMPLATE_TAG + "resources/")
            },
        }
        if any(template.values()):
            out[g["NodegroupName"]] = template
    return out


def _default(doc: dict, value):
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in doc.get("Parameters", {}):
        return doc["Parameters"][value["Ref"]]["Default"]
    return value


def _of_type(doc: dict, type_: str) -> list[dict]:
    return [r["Properties"] for r in doc["Resources"].values() if r["Type"] == type_]


def cloudformation_meaning(doc: dict) -> dict:
    resources = doc["Resources"]
    roles = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    irsa = {}
    for props in roles.values():
        document = props["AssumeRolePolicyDocument"]
        if "Fn::Sub" not in document:
            continue
        (trust,) = json.loads(document["Fn::Sub"][0])["Statement"]
        claims = {k.rsplit(":", 1)[1]: [v] for k, v in trust["Condition"]["StringEquals"].items()}
        (policy,) = props["Policies"]
        irsa[props["RoleName"]] = {
            "claims": claims,
            "policy_name": policy["PolicyName"],
            "statements": {
                s["Sid"]: (s["Action"], [_cfn_value(doc, r) for r in s["Resource"]], s.get("Condition", {}))
                for s in policy["PolicyDocument"]["Statement"]
            },
        }
    subnets = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::EC2::Subnet"}
    cluster = resources["Cluster"]["Properties"]
    vpc = resources.get("Vpc")
    existing = _default(doc, cluster["ResourcesVpcConfig"]["SubnetIds"])
    bucket = resources["ArtifactsBucket"]["Properties"]
    (lifecycle,) = bucket["LifecycleConfiguration"]["Rules"]
    repository = resources["Repository"]["Properties"]
    key = resources["PlatformKey"]["Properties"]
    return {
        "node_groups": {
            g["NodegroupName"]: {
                "instance_types": g["InstanceTypes"],
                "ami_type": g["AmiType"],
                "capacity_type": g["CapacityType"],
                "disk_size": g["DiskSize"],
                "sizes": tuple(
                    _default(doc, g["ScalingConfig"][k]) for k in ("MinSize", "DesiredSize", "MaxSize")
                ),
                "max_unavailable": g["UpdateConfig"]["MaxUnavailable"],
                "labels": g["Labels"],
                "taints": [(t["Key"], t["Value"], t["Effect"]) for t in g.get("Taints", [])],
            }
            for g in _of_type(doc, "AWS::EKS::Nodegroup")
        },
        "network": {
            "vpc_cidr": vpc["Properties"]["CidrBlock"] if vpc else None,
            "zones": doc["Parameters"]["AvailabilityZones"]["Default"].split(",") if vpc else [],
            "private_subnets": sorted(s["CidrBlock"] for n, s in subnets.items() if n.startswith("Private")),
            "public_subnets": sorted(s["CidrBlock"] for n, s in subnets.items() if n.startswith("Public")),
            "nat_gateways": len(_of_type(doc, "AWS::EC2::NatGateway")),
            "existing_subnets": existing.split(",") if not vpc else None,
            "flow_logs": bool(_of_type(doc, "AWS::EC2::FlowLog")),
        },
        "cluster": {
            "name": cluster["Name"],
            "version": cluster["Version"],
            "private": (
                cluster["ResourcesVpcConfig"]["EndpointPrivateAccess"],
                cluster["ResourcesVpcConfig"]["EndpointPublicAccess"],
            ),
            "log_types": [t["Type"] for t in cluster["Logging"]["ClusterLogging"]["EnabledTypes"]],
            "encrypts": [r for c in cluster["EncryptionConfig"] for r in c["Resources"]],
        },
        "log_groups": {g["LogGroupName"]: g["RetentionInDays"] for g in _of_type(doc, "AWS::Logs::LogGroup")},
        "key": {
            "alias": _of_type(doc, "AWS::KMS::Alias")[0]["AliasName"],
            "rotation": key["EnableKeyRotation"],
            "deletion_window": key["PendingWindowInDays"],
        },
        "bucket": {
            "name": bucket["BucketName"],
            "noncurrent_days": lifecycle["NoncurrentVersionExpiration"]["NoncurrentDays"],
            "abort_multipart_days": lifecycle["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"],
        },
        "repository": {
            "name": repository["RepositoryName"],
            "mutability": repository["ImageTagMutability"],
            "scan_on_push": repository["ImageScanningConfiguration"]["ScanOnPush"],
        },
        "roles": sorted(r["RoleName"] for r in roles.values()),
        "managed_policies": {
            r["RoleName"]: sorted(a["Fn::Sub"].rsplit("/", 1)[1] for a in r["ManagedPolicyArns"])
            for r in roles.values()
            if "ManagedPolicyArns" in r
        },
        "irsa": irsa,
        "addons": _cfn_addons(doc),
        "autoscaler_templates": _cfn_templates(doc),
        "tags": {t["Key"]: t["Value"] for t in bucket["Tags"]},
        "role_outputs": {
            name.removesuffix("RoleArn").lower(): o["Value"]["Fn::GetAtt"][0]
            for name, o in doc["Outputs"].items()
            if name.endswith("RoleArn")
        },
    }


# ------------------------------------------------------------------------------------------------ resource types
# Every resource type the Terraform output creates, and what stands for it in the template: one resource each
# (counted), a property of another resource, or nothing, with the reason. A Terraform resource type missing
# here (a platform piece added to the terraform backend) fails the test until CloudFormation builds it too.
COUNTERPARTS = {
    "aws_vpc": "AWS::EC2::VPC",
    "aws_subnet": "AWS::EC2::Subnet",
    "aws_internet_gateway": "AWS::EC2::InternetGateway",
    "aws_route_table": "AWS::EC2::RouteTable",
    "aws_route": "AWS::EC2::Route",
    "aws_route_table_association": "AWS::EC2::SubnetRouteTableAssociation",
    "aws_eip": "AWS::EC2::EIP",
    "aws_nat_gateway": "AWS::EC2::NatGateway",
    "aws_flow_log": "AWS::EC2::FlowLog",
    "aws_cloudwatch_log_group": "AWS::Logs::LogGroup",
    "aws_iam_role": "AWS::IAM::Role",
    "aws_eks_cluster": "AWS::EKS::Cluster",
    "aws_eks_node_group": "AWS::EKS::Nodegroup",
    "aws_iam_openid_connect_provider": "AWS::IAM::OIDCProvider",
    "aws_kms_key": "AWS::KMS::Key",
    "aws_kms_alias": "AWS::KMS::Alias",
    "aws_s3_bucket": "AWS::S3::Bucket",
    "aws_s3_bucket_policy": "AWS::S3::BucketPolicy",
    "aws_ecr_repository": "AWS::ECR::Repository",
    "aws_eks_addon": "AWS::EKS::Addon",
}
FOLDED = {  # a property of a counted resource in CloudFormation
    "aws_s3_bucket_public_access_block": "AWS::S3::Bucket PublicAccessBlockConfiguration",
    "aws_s3_bucket_versioning": "AWS::S3::Bucket VersioningConfiguration",
    "aws_s3_bucket_server_side_encryption_configuration": "AWS::S3::Bucket BucketEncryption",
    "aws_s3_bucket_lifecycle_configuration": "AWS::S3::Bucket LifecycleConfiguration",
    "aws_iam_role_policy_attachment": "AWS::IAM::Role ManagedPolicyArns",
    "aws_iam_role_policy": "AWS::IAM::Role Policies",
    # CloudFormation cannot tag the auto scaling group EKS creates for a node group; the autoscaler reads the
    # same labels, taints and accelerators from the node group itself (eks:DescribeNodegroup)
    "aws_autoscaling_group_tag": "AWS::EKS::Nodegroup Labels, Taints and node-template Tags",
}
TERRAFORM_ONLY = {
    "aws_default_security_group": "CloudFormation cannot adopt a VPC's default security group (docs/security.md)",
}
CLOUDFORMATION_ONLY = {
    "AWS::EC2::VPCGatewayAttachment": "Terraform's aws_internet_gateway attaches itself through vpc_id",
}


@pytest.mark.parametrize(("source", "env"), cases(), ids=lambda v: str(v or "base"))
def test_every_terraform_resource_has_its_cloudformation_counterpart(source: str, env: str | None) -> None:
    _, tf, cfn = compiled(source, env)
    tf_types = {t: len(r) for t, r in tf["resource"].items()}
    unknown = set(tf_types) - set(COUNTERPARTS) - set(FOLDED) - set(TERRAFORM_ONLY)
    assert not unknown, (
        f"the terraform backend provisions {sorted(unknown)}: build them in CloudFormation too"
    )
    cfn_types: dict[str, int] = {}
    for resource in cfn["Resources"].values():
        cfn_types[resource["Type"]] = cfn_types.get(resource["Type"], 0) + 1
    assert set(cfn_types) <= set(COUNTERPARTS.values()) | set(CLOUDFORMATION_ONLY)
    counted = {COUNTERPARTS[t]: n for t, n in tf_types.items() if t in COUNTERPARTS}
    assert counted == {t: n for t, n in cfn_types.items() if t not in CLOUDFORMATION_ONLY}


# ------------------------------------------------------------------------------------------------ the tests
@pytest.mark.parametrize(("source", "env"), cases(), ids=lambda v: str(v or "base"))
def test_terraform_and_cloudformation_build_the_same_platform(source: str, env: str | None) -> None:
    ir, tf, cfn = compiled(source, env)
    ours, theirs = terraform_meaning(tf), cloudformation_meaning(cfn)
    # role outputs name different resources in each format; compare what those resources are
    tf_outputs, cfn_outputs = ours.pop("role_outputs"), theirs.pop("role_outputs")
    tf_roles = {key: r["name"] for key, r in tf["resource"]["aws_iam_role"].items()}
    assert {sa: tf_roles[key] for sa, key in tf_outputs.items()} == {
        sa: cfn["Resources"][name]["Properties"]["RoleName"] for sa, name in cfn_outputs.items()
    }
    assert ours == theirs
    # and both are the IR's decisions
    infra = ir.infrastructure
    assert set(ours["node_groups"]) == {p.group_name for p in infra.node_pools}
    assert set(ours["irsa"]) == {sa.role_name for sa in ir.service_accounts} | {
        c.role_name for c in ir.platform if c.role_name
    }
    assert set(ours["addons"]) == {c.id for c in ir.platform if c.installed_by == "infrastructure"} - {
        "kubernetes"
    }
    autoscaled = {p.group_name for p in infra.node_pools if p.max > p.min}
    assert set(ours["autoscaler_templates"]) == autoscaled
    assert ours["bucket"]["name"] == infra.artifacts_bucket
    assert ours["repository"]["name"] == infra.container_registry


def test_the_cases_cover_every_spec_and_environment_with_infrastructure() -> None:
    assert {("churn.yaml", None), ("churn.yaml", "staging"), ("churn.yaml", "prod")} <= set(cases())
    assert {("fraud.yaml", None), ("fraud.yaml", "staging")} <= set(cases())


def test_the_readers_see_what_differs() -> None:
    """A changed taint, role scope, bucket or pool size in one output changes its meaning: the readers are not blind."""
    _, _, cfn = compiled("churn.yaml", None)
    baseline = cloudformation_meaning(cfn)
    for mutate in (
        lambda d: d["Resources"]["NodegroupGpu"]["Properties"]["Taints"][0].update(Effect="NO_EXECUTE"),
        lambda d: d["Resources"]["ServingRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][
            1
        ].update(Resource=[{"Fn::Sub": "${ArtifactsBucket.Arn}/*"}]),
        lambda d: d["Resources"]["ArtifactsBucket"]["Properties"].update(BucketName="other"),
        lambda d: d["Parameters"]["CpuNodesMax"].update(Default=99),
        lambda d: d["Resources"]["AddonVpcCni"]["Properties"].update(ConfigurationValues="{}"),
        lambda d: d["Resources"]["NodegroupGpu"]["Properties"]["Tags"].clear(),
        lambda d: d["Resources"]["ClusterAutoscalerRole"]["Properties"]["Policies"][0]["PolicyDocument"][
            "Statement"
        ][2].update(Resource=["*"]),
    ):
        changed = json.loads(json.dumps(cfn))
        mutate(changed)
        assert cloudformation_meaning(changed) != baseline
