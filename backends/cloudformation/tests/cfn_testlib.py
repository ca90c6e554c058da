"""Helpers for the CloudFormation backend tests (importable by test modules; conftest.py holds the fixtures):
compiled variants of the examples, read back with cfn-lint's YAML decoder, which turns the short-form tags
into CloudFormation's long form as the service does."""

from __future__ import annotations

import json
import re
from pathlib import Path

import mlspec

ROOT = Path(__file__).resolve().parents[3]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


def emit(ir) -> dict[str, str]:
    from mlspec_cloudformation import CloudFormationBackend

    from mlspec.backends import EmitContext

    ctx = EmitContext()
    artifacts = CloudFormationBackend().emit(ir, ctx)
    assert not ctx.diagnostics, [d.message for d in ctx.diagnostics]
    return {a.path: a.content for a in artifacts}


def load_template(text: str) -> dict:
    """The template as CloudFormation reads it: `!Ref X` -> {"Ref": "X"}, plain dicts and lists."""
    from cfnlint.decode import decode_str

    template, errors = decode_str(text)
    assert not errors, [str(e) for e in errors]
    return json.loads(json.dumps(template))


def variant(replace: dict[str, str]) -> str:
    """churn.yaml with some lines replaced (each must occur)."""
    text = (ROOT / "specs" / "churn.yaml").read_text("utf-8")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


# Spec variants beside the examples: a pool of each node image family; an existing network and no account.
FAMILIES = {
    "    gpu: {instance_type: g5.xlarge,": "    inf: {instance_type: inf2.xlarge, min: 0, max: 2}\n"
    "    gpu: {instance_type: g5.xlarge,"
}
# the targets line of churn.yaml, whatever it lists
TARGETS_LINE = re.search(r"^targets: .*$", (ROOT / "specs" / "churn.yaml").read_text("utf-8"), re.M)[0]
EXISTING_NETWORK = {  # without an account id the kubernetes target cannot annotate ServiceAccounts: not listed
    '  account_id: "123456789012"\n': "",
    TARGETS_LINE: "targets: [terraform, cloudformation]",
    "  storage: {artifacts_bucket: acme-ml-artifacts}": "  storage: {artifacts_bucket: acme-ml-artifacts}\n"
    "  network: {vpc_id: vpc-0abc1234, subnet_ids: [subnet-0aaa1111, subnet-0bbb2222]}",
}


def lowered(text: str, env: str | None = None):
    return mlspec.lower(mlspec.loads(text, "specs/churn.yaml"), env=env)


def spec_environments() -> list[tuple[Path, str | None]]:
    """Every (spec, environment) of specs/ whose spec has infrastructure, base first."""
    out = []
    for path in SPECS:
        loaded = mlspec.load(path)
        if loaded.spec.infrastructure is not None:
            out += [(path, None), *((path, env) for env in loaded.spec.environments)]
    return out
