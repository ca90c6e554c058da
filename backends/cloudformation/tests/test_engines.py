"""The templates proved by tools that read CloudFormation: cfn-lint, checkov, and moto's CloudFormation API.

cfn-lint and checkov read every template compiled from specs/ (each spec with infrastructure, each of its
environments) and the variants of cfn_testlib. moto deploys and deletes a template on 127.0.0.1; it has no
CloudFormation model for five of the template's resource types, which are left out of what it deploys (see
MOTO_SKIPS), and implements only part of some others (see the comments where the test accounts for that).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import botocore.exceptions
import pytest
from cfn_testlib import (
    EXISTING_NETWORK,
    FAMILIES,
    ROOT,
    emit,
    load_template,
    lowered,
    spec_environments,
    variant,
)

import mlspec

pytestmark = pytest.mark.engine

CFN_LINT = Path(sys.executable).parent / "cfn-lint"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
SECURITY_DOC = ROOT / "docs" / "security.md"
CHECKOV_OUTPUT = ("--compact", "--quiet", "-o", "json")


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict[str, Path]:
    """name -> template.yaml of every spec and environment with infrastructure, and of the variants."""
    out = tmp_path_factory.mktemp("cfn")
    irs = {
        f"{spec.stem}-{env or 'base'}": mlspec.lower(mlspec.load(spec), env=env)
        for spec, env in spec_environments()
    }
    irs["families"] = lowered(variant(FAMILIES))
    irs["existing-network"] = lowered(variant(EXISTING_NETWORK))
    paths = {}
    for name, ir in irs.items():
        paths[name] = out / name / "template.yaml"
        paths[name].parent.mkdir()
        paths[name].write_text(emit(ir)["template.yaml"])
    assert {"churn-base", "churn-staging", "churn-prod", "fraud-base", "fraud-staging"} <= set(paths)
    return paths


def security_section(heading: str) -> str:
    return SECURITY_DOC.read_text().split(f"## {heading}", 1)[1].split("\n## ", 1)[0]


def test_cfn_lint_finds_nothing(templates):
    """Errors, warnings and the informational rules too; docs/security.md ignores none."""
    assert "cfn-lint" in security_section("CloudFormation")
    proc = subprocess.run(
        [str(CFN_LINT), "--format", "json", "--include-checks", "I", "--", *map(str, templates.values())],
        capture_output=True,
        text=True,
        timeout=300,
    )
    findings = json.loads(proc.stdout or "[]")
    assert not findings, [(f["Rule"]["Id"], f["Filename"], f["Message"]) for f in findings]
    assert proc.returncode == 0, proc.stderr


def accepted_checks() -> dict[str, str]:
    """CHECK_ID -> reason from the `## CloudFormation` section of docs/security.md."""
    return dict(re.findall(r"^- (CKV2?_[A-Z0-9_]+): (.+)$", security_section("CloudFormation"), re.MULTILINE))


def test_checkov_finds_nothing_beyond_the_documented_exceptions(templates):
    if not CHECKOV.exists():
        pytest.fail(f"checkov is not installed at {CHECKOV}")
    folder = next(iter(templates.values())).parent.parent
    proc = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(folder),
            "--framework",
            "cloudformation",
            "--skip-download",
            *CHECKOV_OUTPUT,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    summary = reports[0]["summary"]
    assert summary["parsing_errors"] == 0 and summary["passed"] > 300, summary
    failed = {(c["check_id"], c["resource"]) for r in reports for c in r["results"]["failed_checks"]}
    accepted = accepted_checks()
    assert accepted, "docs/security.md lists no accepted checks for CloudFormation: the parser is broken"
    unexplained = sorted(f for f in failed if f[0] not in accepted)
    assert not unexplained, f"checkov failures not accepted in docs/security.md: {unexplained}"


# ------------------------------------------------------------------------------------------------ moto
# Resource types moto 5.2 has no CloudFormation model for. moto would skip them and fail on the first
# reference to one, so the deployed copy leaves them out and puts a stand-in where the template refers to one.
MOTO_SKIPS = {
    "AWS::EKS::Cluster",
    "AWS::EKS::Nodegroup",
    "AWS::EKS::Addon",
    "AWS::IAM::OIDCProvider",
    "AWS::S3::BucketPolicy",
}
ISSUER = "https://oidc.eks.{region}.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"


def nodegroup_arn(ir, group_name: str) -> str:
    infra = ir.infrastructure
    return (
        f"arn:aws:eks:{infra.region}:123456789012:nodegroup/{infra.cluster_name}/{group_name}/"
        "EXAMPLE-1234-5678-9abc-EXAMPLE"
    )


def stand_ins(ir, doc: dict) -> dict[tuple[str, str | None], str]:
    infra = ir.infrastructure
    issuer = ISSUER.format(region=infra.region)
    groups = {
        (name, "Arn"): nodegroup_arn(ir, r["Properties"]["NodegroupName"])
        for name, r in doc["Resources"].items()
        if r["Type"] == "AWS::EKS::Nodegroup"
    }
    return {
        ("Cluster", None): infra.cluster_name,
        ("Cluster", "OpenIdConnectIssuerUrl"): issuer,
        ("Cluster", "Endpoint"): f"https://EXAMPLE.gr7.{infra.region}.eks.amazonaws.com",
        ("OidcProvider", None): f"arn:aws:iam::123456789012:oidc-provider/{issuer.split('//', 1)[1]}",
        **groups,
    }


def moto_copy(doc: dict, ir) -> dict:
    """The template without MOTO_SKIPS, references to those resources replaced by stand-ins."""
    values = stand_ins(ir, doc)
    skipped = {name for name, r in doc["Resources"].items() if r["Type"] in MOTO_SKIPS}

    def rewrite(node):
        if isinstance(node, dict):
            if set(node) == {"Ref"} and node["Ref"] in skipped:
                return values[(node["Ref"], None)]
            if set(node) == {"Fn::GetAtt"} and node["Fn::GetAtt"][0] in skipped:
                return values[tuple(node["Fn::GetAtt"])]
            if "Fn::Sub" in node and isinstance(node["Fn::Sub"], list):
                template, variables = node["Fn::Sub"]
                for name in skipped & set(re.findall(r"\$\{(\w+)\}", template)):
                    template = template.replace(f"${{{name}}}", values[(name, None)])
                return {"Fn::Sub": [template, rewrite(variables)]}
            return {k: rewrite(v) for k, v in node.items()}
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    copy = rewrite({**doc, "Resources": {k: v for k, v in doc["Resources"].items() if k not in skipped}})
    for resource in copy["Resources"].values():
        after = [d for d in resource.pop("DependsOn", []) if d not in skipped]
        if after:
            resource["DependsOn"] = after
        if resource["Type"] == "AWS::KMS::Key":
            # moto's KMS tags from CloudFormation expect TagKey/TagValue and fail on CloudFormation's Key/Value
            resource["Properties"].pop("Tags")
    return copy


def test_moto_supports_every_other_resource_type(churn_doc, existing_ir):
    from moto.cloudformation.parsing import get_model_map

    types = {r["Type"] for r in churn_doc["Resources"].values()}
    types |= {r["Type"] for r in load_template(emit(existing_ir)["template.yaml"])["Resources"].values()}
    supported = set(get_model_map())
    assert types & supported == types - MOTO_SKIPS, "moto now models a skipped type: deploy it for real"
    assert not MOTO_SKIPS & supported


@pytest.fixture()
def aws(moto_server):
    """boto3 clients against moto, for a region."""
    import boto3

    def client(service: str, region: str):
        return boto3.client(
            service,
            endpoint_url=moto_server,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # pragma: allowlist secret
        )

    return client


@contextmanager
def deployed(aws, ir, stack: str) -> Iterator[tuple[dict, dict]]:
    """The stack created on moto; whatever a failed test leaves is removed, so the shared server stays clean."""
    try:
        yield deploy(aws, ir, stack)
    finally:
        cf, ec2 = aws("cloudformation", ir.infrastructure.region), aws("ec2", ir.infrastructure.region)
        vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [ir.infrastructure.cluster_name]}])
        with suppress(botocore.exceptions.ClientError):
            cf.delete_stack(StackName=stack)
        for vpc in vpcs["Vpcs"]:
            _remove_what_moto_kept(ec2, vpc["VpcId"])


def deploy(aws, ir, stack: str) -> tuple[dict, dict]:
    """Create the stack on moto with every parameter at its default; returns (stack, deployed copy)."""
    doc = moto_copy(load_template(emit(ir)["template.yaml"]), ir)
    cf = aws("cloudformation", ir.infrastructure.region)
    # Passed explicitly: moto splits list parameters (the zones) only when they are given.
    parameters = [
        {"ParameterKey": k, "ParameterValue": str(p["Default"])} for k, p in doc["Parameters"].items()
    ]
    cf.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(doc),
        Parameters=parameters,
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    (created,) = cf.describe_stacks(StackName=stack)["Stacks"]
    assert created["StackStatus"] == "CREATE_COMPLETE", created.get("StackStatusReason")
    summaries = cf.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    assert {s["LogicalResourceId"] for s in summaries} == set(doc["Resources"])
    assert {s["ResourceStatus"] for s in summaries} == {"CREATE_COMPLETE"}
    return created, doc


def assert_platform_deployed(aws, ir, stack: dict) -> None:
    infra = ir.infrastructure
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["ArtifactsBucket"] == infra.artifacts_bucket
    assert outputs["RepositoryUri"].endswith(
        f".dkr.ecr.{infra.region}.amazonaws.com/{infra.container_registry}"
    )
    iam = aws("iam", infra.region)
    issuer = ISSUER.format(region=infra.region).split("//", 1)[1]
    for sa in ir.service_accounts:
        role = iam.get_role(RoleName=sa.role_name)["Role"]
        # the Kubernetes ServiceAccounts' annotation (IR role_arn, when the spec names the account) is this ARN
        assert outputs[f"{sa.id.capitalize()}RoleArn"] == role["Arn"]
        assert sa.role_arn in (None, role["Arn"])
        (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Condition"]["StringEquals"] == {
            f"{issuer}:sub": f"system:serviceaccount:{sa.namespace}:{sa.name}",
            f"{issuer}:aud": "sts.amazonaws.com",
        }
        (name,) = iam.list_role_policies(RoleName=sa.role_name)["PolicyNames"]
        # moto returns a CloudFormation-made inline policy as the Python repr of the document
        policy = ast.literal_eval(
            iam.get_role_policy(RoleName=sa.role_name, PolicyName=name)["PolicyDocument"]
        )
        actions = {a for s in policy["Statement"] for a in s["Action"]}
        assert actions == {
            "s3:ListBucket",
            *sa.object_read_actions,
            *sa.object_write_actions,
            *sa.key_actions,
        }
    assert_autoscaler_role_deployed(iam, ir, outputs)
    kms = aws("kms", infra.region)
    (alias,) = [a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == infra.kms_key_alias]
    # (not describe_key: moto keeps a CloudFormation-made key policy as a dict and fails to serve it)
    key_arn = next(k["KeyArn"] for k in kms.list_keys()["Keys"] if k["KeyId"] == alias["TargetKeyId"])
    assert kms.get_key_rotation_status(KeyId=alias["TargetKeyId"])["KeyRotationEnabled"]
    # moto's S3 bucket model applies BucketName, BucketEncryption and Tags; versioning, the lifecycle rule
    # and the public access block are checked by cfn-lint's schema and by checkov instead.
    encryption = aws("s3", infra.region).get_bucket_encryption(Bucket=infra.artifacts_bucket)
    (rule,) = encryption["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": key_arn,
    }
    (repo,) = aws("ecr", infra.region).describe_repositories(repositoryNames=[infra.container_registry])[
        "repositories"
    ]
    # moto's ECR model stores scanning and encryption in CloudFormation's casing and serves them empty;
    # checkov (CKV_AWS_163, CKV_AWS_136) and cfn-lint's schema check those two.
    assert repo["imageTagMutability"] == "IMMUTABLE"
    # moto's log group model reads its CloudFormation properties in the API's casing, so it applies the name
    # only; checkov (CKV_AWS_66, CKV_AWS_158, CKV_AWS_338) checks the retention and the key.
    groups = {g["logGroupName"] for g in aws("logs", infra.region).describe_log_groups()["logGroups"]}
    assert {infra.cluster_log_group, infra.network.flow_logs_group} - {None} <= groups


def assert_autoscaler_role_deployed(iam, ir, outputs: dict) -> None:
    """The Cluster Autoscaler's role: trusted by its ServiceAccount alone, its output the IR's ARN."""
    component = ir.component("cluster-autoscaler")
    infra = ir.infrastructure
    role = iam.get_role(RoleName=component.role_name)["Role"]
    assert outputs["ClusterAutoscalerRoleArn"] == role["Arn"]
    assert component.role_arn in (None, role["Arn"])
    issuer = ISSUER.format(region=infra.region).split("//", 1)[1]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert (
        trust["Condition"]["StringEquals"][f"{issuer}:sub"]
        == "system:serviceaccount:kube-system:cluster-autoscaler"
    )
    policy = ast.literal_eval(
        iam.get_role_policy(RoleName=component.role_name, PolicyName="cluster-autoscaler")["PolicyDocument"]
    )
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert statements["DescribeThisClustersNodegroups"]["Resource"] == [
        nodegroup_arn(ir, p.group_name) for p in infra.node_pools
    ]
    assert statements["ScaleThisClustersGroups"]["Condition"] == {
        "StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{infra.cluster_name}": ["owned"]}
    }


def assert_deleted(aws, ir) -> None:
    """Everything the stack made that moto deletes is gone: roles, bucket, repository, log groups, alias."""
    infra = ir.infrastructure
    roles = {r["RoleName"] for r in aws("iam", infra.region).list_roles()["Roles"]}
    assert not roles & {
        infra.cluster_role_name,
        infra.node_role_name,
        *(sa.role_name for sa in ir.service_accounts),
        ir.component("cluster-autoscaler").role_name,
    }
    assert infra.artifacts_bucket not in {
        b["Name"] for b in aws("s3", infra.region).list_buckets()["Buckets"]
    }
    with pytest.raises(botocore.exceptions.ClientError, match="RepositoryNotFoundException"):
        aws("ecr", infra.region).describe_repositories(repositoryNames=[infra.container_registry])
    groups = {g["logGroupName"] for g in aws("logs", infra.region).describe_log_groups()["logGroups"]}
    assert infra.cluster_log_group not in groups and infra.network.flow_logs_group not in groups
    aliases = {a["AliasName"] for a in aws("kms", infra.region).list_aliases()["Aliases"]}
    assert infra.kms_key_alias not in aliases


def test_moto_deploys_and_deletes_on_an_existing_network(aws, existing_ir):
    with deployed(aws, existing_ir, "churn-existing-network-platform") as (stack, _):
        assert_platform_deployed(aws, existing_ir, stack)
        cf = aws("cloudformation", existing_ir.infrastructure.region)
        cf.delete_stack(StackName=stack["StackId"])
        assert cf.describe_stacks(StackName=stack["StackId"])["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"
        assert_deleted(aws, existing_ir)


# Types whose CloudFormation deletion moto 5.2 does not implement: deleting the stack leaves them, and the
# VPC, whose route tables remain, then fails with DependencyViolation.
MOTO_KEEPS = {
    "AWS::EC2::InternetGateway",
    "AWS::EC2::VPCGatewayAttachment",
    "AWS::EC2::RouteTable",
    "AWS::EC2::Route",
    "AWS::EC2::SubnetRouteTableAssociation",
    "AWS::EC2::EIP",
    "AWS::EC2::NatGateway",
    "AWS::EC2::FlowLog",
}


def test_moto_deploys_the_network_and_deletes_all_it_can(aws, churn_ir):
    with deployed(aws, churn_ir, "churn-platform") as (stack, doc):
        assert_platform_deployed(aws, churn_ir, stack)
        vpc_id = assert_network_deployed(aws("ec2", churn_ir.infrastructure.region), churn_ir)
        assert_moto_keeps(doc)
        cf = aws("cloudformation", churn_ir.infrastructure.region)
        with pytest.raises(botocore.exceptions.ClientError, match=f"The vpc {vpc_id} has dependencies"):
            cf.delete_stack(StackName=stack["StackId"])
        assert_deleted(aws, churn_ir)
        ec2 = aws("ec2", churn_ir.infrastructure.region)
        assert not ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]


def assert_network_deployed(ec2, ir) -> str:
    """The VPC, its subnets in the IR's zones, a NAT gateway per public subnet, the default routes. Its id."""
    net = ir.infrastructure.network
    (vpc,) = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [ir.infrastructure.cluster_name]}])[
        "Vpcs"
    ]
    assert vpc["CidrBlock"] == net.cidr
    in_vpc = [{"Name": "vpc-id", "Values": [vpc["VpcId"]]}]
    subnets = ec2.describe_subnets(Filters=in_vpc)["Subnets"]
    expected = set(zip(net.private_subnets + net.public_subnets, net.zones * 2, strict=True))
    assert {(s["CidrBlock"], s["AvailabilityZone"]) for s in subnets} == expected
    public = {s["SubnetId"] for s in subnets if s["CidrBlock"] in net.public_subnets}
    nats = ec2.describe_nat_gateways(Filters=in_vpc)["NatGateways"]
    assert {n["SubnetId"] for n in nats} == public
    tables = ec2.describe_route_tables(Filters=in_vpc)["RouteTables"]
    defaults = [r for t in tables for r in t["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
    assert sorted(r.get("NatGatewayId", "igw") for r in defaults) == sorted(
        ["igw", *(n["NatGatewayId"] for n in nats)]
    )
    return vpc["VpcId"]


def assert_moto_keeps(doc: dict) -> None:
    """MOTO_KEEPS is moto's, not a guess: exactly those types lack a CloudFormation deletion in moto."""
    from moto.cloudformation.parsing import get_model_map
    from moto.core.common_models import CloudFormationModel

    models = get_model_map()
    for type_ in {r["Type"] for r in doc["Resources"].values()}:
        owner = next(k for k in models[type_].__mro__ if "delete_from_cloudformation_json" in k.__dict__)
        deletes = owner is not CloudFormationModel or hasattr(models[type_], "delete")
        assert deletes != (type_ in MOTO_KEEPS), type_


def _remove_what_moto_kept(ec2, vpc_id: str) -> None:
    """Clean the shared moto server: the network pieces moto left, then the VPC."""
    vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
    for subnet in ec2.describe_subnets(Filters=vpc)["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    for nat in ec2.describe_nat_gateways(Filters=vpc)["NatGateways"]:
        ec2.delete_nat_gateway(NatGatewayId=nat["NatGatewayId"])
    for table in ec2.describe_route_tables(Filters=vpc)["RouteTables"]:
        if not any(a.get("Main") for a in table["Associations"]):
            ec2.delete_route_table(RouteTableId=table["RouteTableId"])
    for igw in ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])[
        "InternetGateways"
    ]:
        ec2.detach_internet_gateway(InternetGatewayId=igw["InternetGatewayId"], VpcId=vpc_id)
        ec2.delete_internet_gateway(InternetGatewayId=igw["InternetGatewayId"])
    ec2.delete_vpc(VpcId=vpc_id)
