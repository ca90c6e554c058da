"""IAM policy documents as `aws_iam_policy_document` data sources: evaluated locally by terraform, read by checkov."""

from __future__ import annotations

from typing import Any

from mlspec_terraform.cdk import Construct, attr, data


def statement(
    sid: str,
    actions: list[str],
    resources: list[str] | None = None,
    *,
    principals: list[dict[str, Any]] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    effect: str = "Allow",
) -> dict[str, Any]:
    block: dict[str, Any] = {"sid": sid, "effect": effect, "actions": actions}
    if resources is not None:
        block["resources"] = resources
    if principals:
        block["principals"] = principals
    if conditions:
        block["condition"] = conditions
    return block


def service_principal(service: str) -> dict[str, Any]:
    return {"type": "Service", "identifiers": [service]}


def condition(test: str, variable: str, values: list[str]) -> dict[str, Any]:
    return {"test": test, "variable": variable, "values": values}


def document(scope: Construct, name: str, statements: list[dict[str, Any]]) -> str:
    """The rendered JSON of a policy document data source, as a reference."""
    return attr(data(scope, "aws_iam_policy_document", name, {"statement": statements}), "json")


def assume_role(scope: Construct, name: str, service: str) -> str:
    return document(
        scope, name, [statement("AssumeRole", ["sts:AssumeRole"], principals=[service_principal(service)])]
    )
