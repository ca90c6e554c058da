"""The one doorway to cdktf: every cdktf import of the backend goes through here.

CDKTF was deprecated by HashiCorp on 2025-12-10. Only this module, stack.py and the construct modules it
builds touch cdktf, and only through `resource`/`data`/`attr`; replacing the synthesis means replacing these.
Resources use cdktf core's escape hatch (TerraformResource + overrides) instead of the prebuilt provider
bindings, which cost about 20 s and 1.3 GB to import.
"""

from __future__ import annotations

import os
from typing import Any

# jsii prints a banner for old node releases on every start; it is noise in a compiler's output.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "16,18,20,21,22,23")

import cdktf
from constructs import Construct

AWS_PROVIDER_SOURCE = "hashicorp/aws"
AWS_PROVIDER_VERSION = ">= 5.100, < 6.0"

AWS = cdktf.TerraformProviderGeneratorMetadata(
    provider_name="aws", provider_version_constraint=AWS_PROVIDER_VERSION
)

__all__ = ["AWS", "Construct", "attr", "cdktf", "data", "resource"]


def _configure(element: Any, name: str, config: dict[str, Any]) -> Any:
    element.override_logical_id(name)
    for key, value in config.items():
        element.add_override(key, value)
    return element


def resource(
    scope: Construct, type_: str, name: str, config: dict[str, Any], **meta: Any
) -> cdktf.TerraformResource:
    """A resource of the AWS provider named `name` in the Terraform output, with `config` as its arguments."""
    element = cdktf.TerraformResource(
        scope, f"{type_}.{name}", terraform_resource_type=type_, terraform_generator_metadata=AWS, **meta
    )
    return _configure(element, name, config)


def data(scope: Construct, type_: str, name: str, config: dict[str, Any]) -> cdktf.TerraformDataSource:
    element = cdktf.TerraformDataSource(
        scope, f"data.{type_}.{name}", terraform_resource_type=type_, terraform_generator_metadata=AWS
    )
    return _configure(element, name, config)


def attr(element: cdktf.TerraformResource | cdktf.TerraformDataSource, path: str) -> str:
    """A reference to an attribute (`id`, `identity[0].oidc[0].issuer`) that cdktf resolves at synthesis."""
    return cdktf.Token.as_string(element.interpolation_for_attribute(path))
