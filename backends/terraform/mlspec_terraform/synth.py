"""Synthesize an IR to Terraform JSON: build MLPlatformStack in a throwaway app and normalize the result.

Normalization makes the bytes a function of the IR alone: cdktf's "//" metadata (construct paths, stack
names, version, override lists) is dropped and keys are sorted.
"""

from __future__ import annotations

import json
import tempfile
from typing import Any

from mlspec.ir.model import IR

STACK_ID = "mlspec"


def strip_metadata(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: strip_metadata(v) for k, v in node.items() if k != "//"}
    if isinstance(node, list):
        return [strip_metadata(v) for v in node]
    return node


def synthesize(ir: IR) -> dict[str, Any]:
    """The Terraform JSON document (as a dict) for the IR's AWS infrastructure."""
    from mlspec_terraform.cdk import cdktf
    from mlspec_terraform.literals import escape_ir, restore
    from mlspec_terraform.stack import MLPlatformStack

    # to_terraform() resolves every token in memory, but constructing an App creates its outdir (cdktf.out/
    # in the working directory by default): give it a throwaway one so compile writes nothing outside --out.
    with tempfile.TemporaryDirectory(prefix="mlspec-cdktf-") as outdir:
        app = cdktf.App(outdir=outdir, skip_validation=False)
        stack = MLPlatformStack(app, STACK_ID, escape_ir(ir))
        return restore(strip_metadata(stack.to_terraform()))


def render(ir: IR, comment: str) -> str:
    document = {"//": comment, **synthesize(ir)}
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
