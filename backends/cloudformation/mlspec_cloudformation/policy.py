"""IAM policy documents as plain dicts (object form, so cfn-lint and checkov read every statement)."""

from __future__ import annotations

from typing import Any

VERSION = "2012-10-17"


def statement(
    sid: str,
    actions: list[str],
    resources: Any = None,
    *,
    principal: dict[str, Any] | str | None = None,
    condition: dict[str, Any] | None = None,
    effect: str = "Allow",
) -> dict[str, Any]:
    block: dict[str, Any] = {"Sid": sid, "Effect": effect}
    if principal is not None:
        block["Principal"] = principal
    block["Action"] = actions
    if resources is not None:
        block["Resource"] = resources
    if condition:
        block["Condition"] = condition
    return block


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": VERSION, "Statement": list(statements)}


def assume_role(service: str) -> dict[str, Any]:
    return document(statement("AssumeRole", ["sts:AssumeRole"], principal={"Service": [service]}))
