"""Names and layout of the cloud resources under a system, decided once in lowering.

Every infrastructure target (Terraform, CloudFormation) creates the same network, node groups, roles, keys
and log groups because each reads these decisions from the IR instead of making them itself.
"""

from __future__ import annotations

import ipaddress

# AWS refuses subnets smaller than /28.
SMALLEST_SUBNET_PREFIX = 28


def _subnet_bits(zones: int) -> int:
    """Extra prefix bits that split a VPC range into 2*zones equal blocks (at least four)."""
    return max(2, (2 * zones - 1).bit_length())


def network_problem(cidr: str, zones: int) -> str | None:
    """Why `cidr` cannot hold a private and a public subnet in each of `zones` zones, or None when it can."""
    try:
        network = ipaddress.IPv4Network(cidr)
    except ValueError as exc:
        return f"'{cidr}' is not an IPv4 network address ({exc})"
    smallest = network.prefixlen + _subnet_bits(zones)
    if smallest > SMALLEST_SUBNET_PREFIX:
        return (
            f"'{cidr}' is too small for a private and a public subnet in each of {zones} zones "
            f"(they would be /{smallest}; the smallest AWS subnet is a /{SMALLEST_SUBNET_PREFIX})"
        )
    return None


def subnet_cidrs(cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """(private, public) CIDRs: the VPC range split into 2*zones equal blocks, private ones first."""
    blocks = [str(b) for b in ipaddress.IPv4Network(cidr).subnets(prefixlen_diff=_subnet_bits(zones))]
    return blocks[:zones], blocks[zones : 2 * zones]


def zone_names(region: str, zones: int) -> list[str]:
    """An allowlist of zone names (`<region>a`, `b`, ...): the zone set cannot grow behind a plan's back."""
    return [f"{region}{chr(ord('a') + i)}" for i in range(zones)]


def node_group_name(cluster: str, pool_id: str) -> str:
    return f"{cluster}-{pool_id}"


def platform_role_name(cluster: str, purpose: str) -> str:
    """The IAM role of a platform component: `cluster`, `nodes`, `flow-logs`."""
    return f"{cluster}-{purpose}"


def kms_key_alias(cluster: str) -> str:
    return f"alias/{cluster}-platform"


def cluster_log_group(cluster: str) -> str:
    """The log group EKS writes control-plane logs to (the name is fixed by EKS)."""
    return f"/aws/eks/{cluster}/cluster"


def flow_logs_group(cluster: str) -> str:
    return f"/aws/vpc/{cluster}/flow-logs"
