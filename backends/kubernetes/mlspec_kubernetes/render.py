"""Objects -> deterministic YAML files and the kustomization that lists them."""

from __future__ import annotations

from typing import Any

import yaml

from mlspec.backends import Artifact

# libyaml's emitter is ~5x faster; tests prove it writes the same bytes as the pure-Python one.
_Base = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # Multi-line strings (PromQL, the IR JSON) as literal blocks: reviewable diffs.
    style = "|" if "\n" in value and not any(line != line.rstrip() for line in value.split("\n")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _dumper(base: type[yaml.SafeDumper]) -> type[yaml.SafeDumper]:
    cls: type[yaml.SafeDumper] = type(f"Mlspec{base.__name__}", (base,), {})
    cls.add_representer(str, _str)
    return cls


_Dumper = _dumper(_Base)
PURE_DUMPER = _dumper(yaml.SafeDumper)


def to_dict(obj: Any, api: Any) -> dict[str, Any]:
    """Client models serialize in their declared attribute order; custom resources are dicts already."""
    return obj if isinstance(obj, dict) else api.sanitize_for_serialization(obj)


def dump(data: Any, dumper: type | None = None) -> str:
    return yaml.dump(
        data,
        Dumper=dumper or _Dumper,
        sort_keys=False,
        default_flow_style=False,
        width=120,  # long plain and quoted scalars (alert descriptions) fold at spaces: readable diffs
        allow_unicode=True,
    )


def file_name(obj: dict[str, Any]) -> str:
    return f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


def artifacts(objects: list[Any]) -> list[Artifact]:
    from kubernetes.client import ApiClient

    api = ApiClient()
    files: dict[str, str] = {}
    for obj in objects:
        data = to_dict(obj, api)
        path = file_name(data)
        if path in files:
            raise ValueError(f"two objects would both be written to {path}")
        files[path] = dump(data)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(files),
    }
    files["kustomization.yaml"] = dump(kustomization)
    return [Artifact(path, text) for path, text in sorted(files.items())]
