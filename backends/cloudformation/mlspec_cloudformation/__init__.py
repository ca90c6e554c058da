"""mlspec backend: the AWS platform under an ML system as one CloudFormation template (YAML with comments)."""

from __future__ import annotations

from mlspec_cloudformation.backend import CloudFormationBackend

__all__ = ["CloudFormationBackend"]
