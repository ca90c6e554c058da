"""The VPC: private subnets for the cluster and nodes, public subnets for NAT and load balancers, over N zones.

When the IR names an existing VPC and subnets, nothing is created and those ids are used as given.
One NAT gateway per zone, so losing a zone does not cut the other zones' nodes off the internet.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlspec.ir.model import Infrastructure
from mlspec_terraform.cdk import Construct, attr, data, resource
from mlspec_terraform.policy import assume_role, document, statement


@dataclass(frozen=True)
class NetworkRefs:
    vpc_id: str | None
    private_subnet_ids: list[str]


def build_network(scope: Construct, infra: Infrastructure, kms_key_arn: str) -> NetworkRefs:
    net = infra.network
    if net.vpc_id:
        return NetworkRefs(net.vpc_id, list(net.subnet_ids or []))
    cluster = infra.cluster_name
    zones = data(
        scope,
        "aws_availability_zones",
        "available",
        {
            "state": "available",
            # An allowlist of zone names: the zone set cannot grow behind the plan's back.
            "filter": [{"name": "zone-name", "values": net.zones}],
        },
    )
    vpc = resource(
        scope,
        "aws_vpc",
        "main",
        {
            "cidr_block": net.cidr,
            "enable_dns_support": True,
            "enable_dns_hostnames": True,
            "tags": {"Name": cluster},
        },
    )
    vpc_id = attr(vpc, "id")
    # Adopt the default security group and leave it without rules: nothing may use it by accident.
    resource(
        scope,
        "aws_default_security_group",
        "main",
        {"vpc_id": vpc_id, "tags": {"Name": f"{cluster}-default"}},
    )
    igw = resource(scope, "aws_internet_gateway", "main", {"vpc_id": vpc_id, "tags": {"Name": cluster}})

    public_rt = resource(
        scope, "aws_route_table", "public", {"vpc_id": vpc_id, "tags": {"Name": f"{cluster}-public"}}
    )
    resource(
        scope,
        "aws_route",
        "public_internet",
        {
            "route_table_id": attr(public_rt, "id"),
            "destination_cidr_block": "0.0.0.0/0",
            "gateway_id": attr(igw, "id"),
        },
    )
    private_ids = []
    for i, (private_cidr, public_cidr) in enumerate(
        zip(net.private_subnets, net.public_subnets, strict=True)
    ):
        zone = attr(zones, f"names[{i}]")
        public = resource(
            scope,
            "aws_subnet",
            f"public_{i}",
            {
                "vpc_id": vpc_id,
                "cidr_block": public_cidr,
                "availability_zone": zone,
                "map_public_ip_on_launch": False,
                "tags": {
                    "Name": f"{cluster}-public-{i}",
                    "kubernetes.io/role/elb": "1",
                    f"kubernetes.io/cluster/{cluster}": "shared",
                },
            },
        )
        private = resource(
            scope,
            "aws_subnet",
            f"private_{i}",
            {
                "vpc_id": vpc_id,
                "cidr_block": private_cidr,
                "availability_zone": zone,
                "map_public_ip_on_launch": False,
                "tags": {
                    "Name": f"{cluster}-private-{i}",
                    "kubernetes.io/role/internal-elb": "1",
                    f"kubernetes.io/cluster/{cluster}": "shared",
                },
            },
        )
        resource(
            scope,
            "aws_route_table_association",
            f"public_{i}",
            {
                "subnet_id": attr(public, "id"),
                "route_table_id": attr(public_rt, "id"),
            },
        )
        eip = resource(
            scope, "aws_eip", f"nat_{i}", {"domain": "vpc", "tags": {"Name": f"{cluster}-nat-{i}"}}
        )
        nat = resource(
            scope,
            "aws_nat_gateway",
            f"nat_{i}",
            {
                "allocation_id": attr(eip, "id"),
                "subnet_id": attr(public, "id"),
                "tags": {"Name": f"{cluster}-{i}"},
                "depends_on": ["aws_internet_gateway.main"],
            },
        )
        private_rt = resource(
            scope,
            "aws_route_table",
            f"private_{i}",
            {
                "vpc_id": vpc_id,
                "tags": {"Name": f"{cluster}-private-{i}"},
            },
        )
        resource(
            scope,
            "aws_route",
            f"private_nat_{i}",
            {
                "route_table_id": attr(private_rt, "id"),
                "destination_cidr_block": "0.0.0.0/0",
                "nat_gateway_id": attr(nat, "id"),
            },
        )
        resource(
            scope,
            "aws_route_table_association",
            f"private_{i}",
            {
                "subnet_id": attr(private, "id"),
                "route_table_id": attr(private_rt, "id"),
            },
        )
        private_ids.append(attr(private, "id"))
    _flow_logs(scope, infra, vpc_id, kms_key_arn)
    return NetworkRefs(vpc_id, private_ids)


def _flow_logs(scope: Construct, infra: Infrastructure, vpc_id: str, kms_key_arn: str) -> None:
    group = resource(
        scope,
        "aws_cloudwatch_log_group",
        "flow_logs",
        {
            "name": infra.network.flow_logs_group,
            "retention_in_days": infra.log_retention_days,
            "kms_key_id": kms_key_arn,
        },
    )
    role = resource(
        scope,
        "aws_iam_role",
        "flow_logs",
        {
            "name": infra.network.flow_logs_role_name,
            "assume_role_policy": assume_role(scope, "flow_logs_assume", "vpc-flow-logs.amazonaws.com"),
        },
    )
    resource(
        scope,
        "aws_iam_role_policy",
        "flow_logs",
        {
            "name": "write-flow-logs",
            "role": attr(role, "id"),
            "policy": document(
                scope,
                "flow_logs",
                [
                    statement(
                        "WriteFlowLogs",
                        ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                        [attr(group, "arn"), f"{attr(group, 'arn')}:*"],
                    )
                ],
            ),
        },
    )
    resource(
        scope,
        "aws_flow_log",
        "main",
        {
            "vpc_id": vpc_id,
            "traffic_type": "ALL",
            "log_destination_type": "cloud-watch-logs",
            "log_destination": attr(group, "arn"),
            "iam_role_arn": attr(role, "arn"),
        },
    )
