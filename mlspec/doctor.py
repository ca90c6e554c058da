"""`mlspec doctor`: is the local toolchain there, and does a cluster serve every prerequisite in IR.platform?

The cluster check reads Kubernetes API discovery: for each group/version a prerequisite's kinds or APIs
live in, the APIResourceList (`kubectl get --raw /apis/<group>/<version>`, or files recorded from it) must
list the kind; an aggregated API (metrics.k8s.io, custom.metrics.k8s.io) must answer at all. Extended
resources (nvidia.com/gpu) appear only on running GPU nodes, and pools scale from zero, so they are
reported as not checkable from discovery rather than as missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlspec.ir.model import IR

# tool -> the targets (or "always") that need it on the machine that compiles, runs or deploys
TOOLS: dict[str, tuple[str, ...]] = {
    "kubectl": ("kubernetes",),
    "terraform": ("terraform",),
    "node": ("terraform",),  # cdktf synthesizes through a node process
    "docker": ("container",),
    "git": ("ci",),
}


@dataclass(frozen=True)
class Finding:
    ok: bool | None  # None: not checkable here
    what: str
    detail: str


def toolchain(ir: IR, which: Callable[[str], str | None] = shutil.which) -> list[Finding]:
    found = [Finding(sys.version_info >= (3, 11), "python", f"{sys.version.split()[0]} (3.11 or later)")]
    for tool, targets in TOOLS.items():
        if set(targets) & set(ir.targets):
            path = which(tool)
            found.append(
                Finding(path is not None, tool, path or f"not on PATH (needed for {', '.join(targets)})")
            )
    return found


def group_version_path(group_version: str) -> str:
    return "/api/v1" if group_version == "v1" else f"/apis/{group_version}"


Fetch = Callable[[str], dict | None]  # discovery path -> document, None when the server does not serve it


def kubectl_fetch(context: str, kubectl: str = "kubectl") -> Fetch:
    def fetch(path: str) -> dict | None:
        out = subprocess.run(
            [kubectl, "--context", context, "get", "--raw", path], capture_output=True, text=True, timeout=60
        )
        if out.returncode != 0:
            return None
        return json.loads(out.stdout)

    return fetch


def recorded_fetch(folder: Path) -> Fetch:
    """Discovery documents recorded as files: <folder>/api/v1.json, <folder>/apis/<group>/<version>.json."""

    def fetch(path: str) -> dict | None:
        file = folder / f"{path.strip('/')}.json"
        return json.loads(file.read_text("utf-8")) if file.is_file() else None

    return fetch


def cluster(ir: IR, fetch: Fetch) -> list[Finding]:
    found: list[Finding] = []
    cache: dict[str, dict | None] = {}

    def doc(group_version: str) -> dict | None:
        path = group_version_path(group_version)
        if path not in cache:
            cache[path] = fetch(path)
        return cache[path]

    for component in ir.platform:
        for kind_path in component.kinds:
            group_version, kind = kind_path.rsplit("/", 1)
            listed = doc(group_version)
            kinds = {r.get("kind") for r in (listed or {}).get("resources", [])}
            found.append(
                Finding(
                    kind in kinds,
                    f"{component.id}: {kind_path}",
                    "served"
                    if kind in kinds
                    else f"not served: install {component.source} ({component.version})",
                )
            )
        for api in component.apis:
            listed = doc(api)
            found.append(
                Finding(
                    listed is not None,
                    f"{component.id}: API {api}",
                    "available" if listed is not None else f"not available: install {component.source}",
                )
            )
        for resource in component.resources:
            found.append(
                Finding(
                    None,
                    f"{component.id}: resource {resource}",
                    "on GPU nodes only; not visible in API discovery",
                )
            )
    return found


def report(findings: list[Finding]) -> tuple[str, bool]:
    marks = {True: "ok     ", False: "MISSING", None: "n/a    "}
    lines = [f"{marks[f.ok]}  {f.what}: {f.detail}" for f in findings]
    return "\n".join(lines), all(f.ok is not False for f in findings)
