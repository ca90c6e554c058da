"""Names, labels and object metadata shared by every manifest (one place, so selectors always agree)."""

from __future__ import annotations

from typing import Any

from mlspec import contracts
from mlspec.ir.model import IR, Serving

UID = contracts.RUNTIME_UID  # high, non-root UID/GID of every container (PSS restricted, CKV_K8S_40)
CONFIG_DIR = contracts.IR_MOUNT_DIR
IR_FILE = f"{CONFIG_DIR}/{contracts.IR_FILE}"


def serving_of(ir: IR) -> Serving:
    """The serving unit of an IR that has one (callers generate serving objects only then)."""
    if ir.serving is None:
        raise ValueError(f"system '{ir.system.name}' has no serving section")
    return ir.serving


def selector(ir: IR, name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": ir.system.name}


def labels(ir: IR, name: str, component: str, **extra: str) -> dict[str, str]:
    out = dict(sorted(ir.system.labels.items()))
    out.update(selector(ir, name))
    out["app.kubernetes.io/component"] = component
    out["app.kubernetes.io/managed-by"] = contracts.MANAGED_BY
    out.update(extra)
    return out


def metadata(
    ir: IR, name: str, component: str, annotations: dict[str, str] | None = None, **extra: str
) -> Any:
    from kubernetes.client import V1ObjectMeta

    return V1ObjectMeta(
        name=name,
        namespace=ir.system.namespace,
        labels=labels(ir, name, component, **extra),
        annotations=annotations or None,
    )


def dict_metadata(ir: IR, name: str, component: str) -> dict[str, Any]:
    """Metadata for custom resources, built as plain dicts."""
    return {"name": name, "namespace": ir.system.namespace, "labels": labels(ir, name, component)}
