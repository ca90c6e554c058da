"""mlspec backend: the AWS platform under an ML system, synthesized to Terraform JSON with CDKTF core.

Importing this package is cheap; cdktf (and its node process) loads only when a stack is built.
"""

from __future__ import annotations

from typing import Any

from mlspec_terraform.backend import TerraformBackend

__all__ = ["MLPlatformStack", "TerraformBackend"]


def __getattr__(name: str) -> Any:
    if name == "MLPlatformStack":
        from mlspec_terraform.stack import MLPlatformStack

        return MLPlatformStack
    raise AttributeError(name)
