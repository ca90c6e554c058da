"""The template model and its YAML: resources with comments, intrinsic functions as short-form tags.

The construct modules (network, cluster, storage, identity) build plain dicts and lists of CloudFormation
properties, with the intrinsic functions below where a value is only known at deploy time. `render()` is
the only code that knows about ruamel.yaml: it turns a Template into YAML with its comments, in insertion
order and never folding a line, so the bytes depend on the IR alone.

Spec strings are data: they are plain scalars (CloudFormation never interpolates those), and inside a `!Sub`
template they go through `literal()`, which escapes `${` as `${!`.
"""

from __future__ import annotations

import io
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.scalarstring import LiteralScalarString
from ruamel.yaml.tag import Tag

COMMENT_WIDTH = 116  # with the indent and '# ', a comment line stays under 120 characters

# ------------------------------------------------------------------------------------------------ intrinsics


@dataclass(frozen=True)
class Fn:
    """An intrinsic function: `!Tag value`; a list value is written in flow style (`!Select [1, ...]`)."""

    tag: str
    value: Any


def ref(name: str) -> Fn:
    return Fn("!Ref", name)


def get_att(resource: str, attribute: str) -> Fn:
    return Fn("!GetAtt", f"{resource}.{attribute}")


def sub(template: str, variables: dict[str, Any] | None = None) -> Fn:
    """`!Sub template` or `!Sub [template, {variables}]`. Literal text in `template` must be `literal()`."""
    return Fn("!Sub", template if variables is None else [template, variables])


def literal(text: str) -> str:
    """Text placed inside a !Sub template that must stay text: `${` is written `${!`."""
    return text.replace("${", "${!")


def select(index: int, values: Any) -> Fn:
    return Fn("!Select", [index, values])


def split(delimiter: str, value: Any) -> Fn:
    return Fn("!Split", [delimiter, value])


def equals(left: Any, right: Any) -> Fn:
    return Fn("!Equals", [left, right])


PARTITION = "${AWS::Partition}"
ACCOUNT = "${AWS::AccountId}"
REGION = "${AWS::Region}"


def managed_policy_arn(name: str) -> Fn:
    return sub(f"arn:{PARTITION}:iam::aws:policy/{name}")


# ------------------------------------------------------------------------------------------------ template


def logical_id(*parts: str) -> str:
    """A CloudFormation logical id (alphanumeric) from name parts: ('nodegroup', 'a100-train') -> NodegroupA100Train."""
    words = [w for part in parts for w in re.split(r"[^0-9A-Za-z]+", part) if w]
    return "".join(w[:1].upper() + w[1:] for w in words)


@dataclass
class Resource:
    type: str
    properties: dict[str, Any]
    depends_on: list[str] = field(default_factory=list)
    comment: str | None = None  # written above the resource
    # Stateful resources state what deleting or replacing them does (cfn-lint I3011): "Delete" as
    # `terraform destroy` does; a retained resource would keep its name and block the next deploy.
    deletion_policy: str | None = None


@dataclass
class Template:
    description: str
    header: list[str]  # comment lines at the top of the file
    metadata: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: dict[str, Resource] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # logical id -> a section heading written above it (the first resource of each group)
    sections: dict[str, str] = field(default_factory=dict)
    next_heading: str | None = None

    def section(self, heading: str) -> None:
        """Start a group of resources: the next resource added is written under this heading."""
        self.next_heading = heading

    def add(self, name: str, resource: Resource) -> str:
        if name in self.resources:
            raise ValueError(f"duplicate logical id {name}")
        self.resources[name] = resource
        if self.next_heading:
            self.sections[name], self.next_heading = self.next_heading, None
        return name

    def output(self, name: str, value: Any, description: str) -> None:
        self.outputs[name] = {"Description": description, "Value": value}


# ------------------------------------------------------------------------------------------------ YAML


def _node(value: Any) -> Any:
    if isinstance(value, Fn):
        if isinstance(value.value, list):
            seq = CommentedSeq([_node(v) for v in value.value])
            seq.yaml_set_ctag(Tag(suffix=value.tag))
            if not any(isinstance(v, str) and "\n" in v for v in value.value):
                seq.fa.set_flow_style()
            return seq
        return TaggedScalar(value.value, tag=value.tag)
    if isinstance(value, dict):
        return CommentedMap((k, _node(v)) for k, v in value.items())
    if isinstance(value, list):
        return CommentedSeq(_node(v) for v in value)
    if isinstance(value, str) and "\n" in value:
        return LiteralScalarString(value)  # policy documents as readable blocks
    return value


def _wrapped(comment: str, width: int = COMMENT_WIDTH) -> list[str]:
    """Comment lines wrapped at words, so a pull request shows them without scrolling."""
    return [
        part
        for line in comment.splitlines()
        for part in (textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False) or [""])
    ]


def render(template: Template) -> str:
    doc = CommentedMap()
    doc["AWSTemplateFormatVersion"] = "2010-09-09"
    doc["Description"] = template.description
    for key, section in (
        ("Metadata", template.metadata),
        ("Parameters", template.parameters),
        ("Rules", template.rules),
    ):
        if section:
            doc[key] = _node(section)
    resources = CommentedMap()
    for name, res in template.resources.items():
        body: dict[str, Any] = {"Type": res.type}
        if res.depends_on:
            body["DependsOn"] = res.depends_on if len(res.depends_on) > 1 else res.depends_on[0]
        if res.deletion_policy:
            body["DeletionPolicy"] = body["UpdateReplacePolicy"] = res.deletion_policy
        if res.properties:
            body["Properties"] = res.properties
        resources[name] = _node(body)
        before = [f"--- {template.sections[name]}"] if name in template.sections else []
        if res.comment:
            before += ([""] if before else []) + _wrapped(res.comment)
        if before:
            resources.yaml_set_comment_before_after_key(name, before="\n".join(before), indent=2)
    doc["Resources"] = resources
    if template.outputs:
        doc["Outputs"] = _node(template.outputs)
    doc.yaml_set_start_comment("\n".join(template.header))

    yaml = YAML()
    # Values never fold (the long ones are ARNs and intrinsic functions); comments wrap in _wrapped.
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()
