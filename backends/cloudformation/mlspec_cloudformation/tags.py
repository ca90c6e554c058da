"""The tags every resource carries, as the Terraform backend's provider `default_tags` puts them on its own."""

from __future__ import annotations

from typing import Any

from mlspec import contracts
from mlspec.ir.model import IR


def default_tags(ir: IR) -> dict[str, str]:
    return {
        contracts.SYSTEM_LABEL: ir.system.name,
        contracts.MANAGED_BY_TAG: contracts.MANAGED_BY,
        **ir.system.labels,
    }


def tag_list(ir: IR, own: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """`[{Key, Value}]`, the form most resource types take: the resource's own tags, then the defaults."""
    return [{"Key": k, "Value": v} for k, v in {**(own or {}), **default_tags(ir)}.items()]


def tag_map(ir: IR, own: dict[str, str] | None = None) -> dict[str, str]:
    """`{key: value}`, the form AWS::EKS::Nodegroup takes."""
    return {**(own or {}), **default_tags(ir)}
