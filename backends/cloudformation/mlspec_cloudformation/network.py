"""The VPC: a private and a public subnet in each of the IR's zones, one NAT gateway per zone, flow logs.

When the IR names an existing VPC, nothing is created: the cluster and node groups use its subnets, which
the template takes as a typed parameter (CloudFormation checks that they exist before it changes anything).
"""

from __future__ import annotations

from typing import Any

from mlspec.ir.model import IR
from mlspec_cloudformation.cfn import Resource, Template, get_att, ref, select
from mlspec_cloudformation.policy import assume_role, document, statement
from mlspec_cloudformation.storage import KEY
from mlspec_cloudformation.tags import tag_list

VPC = "Vpc"
SUBNET_IDS_PARAMETER = "SubnetIds"
ZONES_PARAMETER = "AvailabilityZones"


def build_network(template: Template, ir: IR) -> Any:
    """Create (or take) the network. Returns the private subnet ids for the cluster and node groups."""
    infra = ir.infrastructure
    assert infra is not None
    net, cluster = infra.network, infra.cluster_name
    if net.vpc_id:
        template.parameters[SUBNET_IDS_PARAMETER] = {
            "Type": "List<AWS::EC2::Subnet::Id>",
            "Default": ",".join(net.subnet_ids or []),
            "Description": f"Private subnets of the existing VPC {net.vpc_id} for the cluster and nodes.",
        }
        return ref(SUBNET_IDS_PARAMETER)

    # The zones are the IR's allowlist, as a typed parameter: CloudFormation checks that they exist.
    template.parameters[ZONES_PARAMETER] = {
        "Type": "List<AWS::EC2::AvailabilityZone::Name>",
        "Default": ",".join(net.zones),
        "Description": f"The {len(net.zones)} zones of the subnets, in order (the spec's: {', '.join(net.zones)}).",
    }
    template.section(
        f"Network: VPC {net.cidr}, a private and a public subnet in each of {len(net.zones)} zones"
    )
    template.add(
        VPC,
        Resource(
            "AWS::EC2::VPC",
            {
                "CidrBlock": net.cidr,
                "EnableDnsSupport": True,
                "EnableDnsHostnames": True,
                "Tags": tag_list(ir, {"Name": cluster}),
            },
        ),
    )
    template.add(
        "InternetGateway",
        Resource("AWS::EC2::InternetGateway", {"Tags": tag_list(ir, {"Name": cluster})}),
    )
    template.add(
        "InternetGatewayAttachment",
        Resource(
            "AWS::EC2::VPCGatewayAttachment", {"VpcId": ref(VPC), "InternetGatewayId": ref("InternetGateway")}
        ),
    )
    template.add(
        "PublicRouteTable",
        Resource(
            "AWS::EC2::RouteTable", {"VpcId": ref(VPC), "Tags": tag_list(ir, {"Name": f"{cluster}-public"})}
        ),
    )
    template.add(
        "PublicInternetRoute",
        Resource(
            "AWS::EC2::Route",
            {
                "RouteTableId": ref("PublicRouteTable"),
                "DestinationCidrBlock": "0.0.0.0/0",
                "GatewayId": ref("InternetGateway"),
            },
            depends_on=["InternetGatewayAttachment"],
        ),
    )
    private_ids = []
    for i, (private_cidr, public_cidr) in enumerate(
        zip(net.private_subnets, net.public_subnets, strict=True)
    ):
        zone = select(i, ref(ZONES_PARAMETER))
        public, private = f"PublicSubnet{i}", f"PrivateSubnet{i}"
        shared = {f"kubernetes.io/cluster/{cluster}": "shared"}
        template.add(
            public,
            Resource(
                "AWS::EC2::Subnet",
                {
                    "VpcId": ref(VPC),
                    "CidrBlock": public_cidr,
                    "AvailabilityZone": zone,
                    "MapPublicIpOnLaunch": False,
                    "Tags": tag_list(
                        ir, {"Name": f"{cluster}-public-{i}", "kubernetes.io/role/elb": "1", **shared}
                    ),
                },
                comment=f"Zone {i} ({net.zones[i]} by default): public subnet (NAT gateway, public load balancers)",
            ),
        )
        template.add(
            private,
            Resource(
                "AWS::EC2::Subnet",
                {
                    "VpcId": ref(VPC),
                    "CidrBlock": private_cidr,
                    "AvailabilityZone": zone,
                    "MapPublicIpOnLaunch": False,
                    "Tags": tag_list(
                        ir,
                        {"Name": f"{cluster}-private-{i}", "kubernetes.io/role/internal-elb": "1", **shared},
                    ),
                },
            ),
        )
        template.add(
            f"{public}RouteTableAssociation",
            Resource(
                "AWS::EC2::SubnetRouteTableAssociation",
                {"SubnetId": ref(public), "RouteTableId": ref("PublicRouteTable")},
            ),
        )
        template.add(
            f"NatEip{i}",
            Resource(
                "AWS::EC2::EIP",
                {"Domain": "vpc", "Tags": tag_list(ir, {"Name": f"{cluster}-nat-{i}"})},
                depends_on=["InternetGatewayAttachment"],
            ),
        )
        template.add(
            f"NatGateway{i}",
            Resource(
                "AWS::EC2::NatGateway",
                {
                    "AllocationId": get_att(f"NatEip{i}", "AllocationId"),
                    "SubnetId": ref(public),
                    "Tags": tag_list(ir, {"Name": f"{cluster}-{i}"}),
                },
            ),
        )
        template.add(
            f"PrivateRouteTable{i}",
            Resource(
                "AWS::EC2::RouteTable",
                {"VpcId": ref(VPC), "Tags": tag_list(ir, {"Name": f"{cluster}-private-{i}"})},
            ),
        )
        template.add(
            f"PrivateNatRoute{i}",
            Resource(
                "AWS::EC2::Route",
                {
                    "RouteTableId": ref(f"PrivateRouteTable{i}"),
                    "DestinationCidrBlock": "0.0.0.0/0",
                    "NatGatewayId": ref(f"NatGateway{i}"),
                },
            ),
        )
        template.add(
            f"{private}RouteTableAssociation",
            Resource(
                "AWS::EC2::SubnetRouteTableAssociation",
                {"SubnetId": ref(private), "RouteTableId": ref(f"PrivateRouteTable{i}")},
            ),
        )
        private_ids.append(ref(private))
    _flow_logs(template, ir)
    return private_ids


def _flow_logs(template: Template, ir: IR) -> None:
    infra = ir.infrastructure
    assert infra is not None and infra.network.flow_logs_group and infra.network.flow_logs_role_name
    template.section("VPC flow logs: all traffic, to a KMS-encrypted log group")
    template.add(
        "FlowLogsGroup",
        Resource(
            "AWS::Logs::LogGroup",
            {
                "LogGroupName": infra.network.flow_logs_group,
                "RetentionInDays": infra.log_retention_days,
                "KmsKeyId": get_att(KEY, "Arn"),
                "Tags": tag_list(ir),
            },
            deletion_policy="Delete",
        ),
    )
    template.add(
        "FlowLogsRole",
        Resource(
            "AWS::IAM::Role",
            {
                "RoleName": infra.network.flow_logs_role_name,
                "AssumeRolePolicyDocument": assume_role("vpc-flow-logs.amazonaws.com"),
                "Policies": [
                    {
                        "PolicyName": "write-flow-logs",
                        # The group's Arn attribute ends in ":*": the group and its streams.
                        "PolicyDocument": document(
                            statement(
                                "WriteFlowLogs",
                                ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                                [get_att("FlowLogsGroup", "Arn")],
                            )
                        ),
                    }
                ],
                "Tags": tag_list(ir),
            },
        ),
    )
    template.add(
        "FlowLog",
        Resource(
            "AWS::EC2::FlowLog",
            {
                "ResourceId": ref(VPC),
                "ResourceType": "VPC",
                "TrafficType": "ALL",
                "LogDestinationType": "cloud-watch-logs",
                "LogDestination": get_att("FlowLogsGroup", "Arn"),
                "DeliverLogsPermissionArn": get_att("FlowLogsRole", "Arn"),
                "Tags": tag_list(ir),
            },
        ),
    )
