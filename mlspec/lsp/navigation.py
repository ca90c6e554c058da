"""Go to definition: a step named in another step's before/after goes to that step's name, and a GPU type
goes to the node pool whose accelerator offers it."""

from __future__ import annotations

from typing import Any

from mlspec.loader import KeyPath, LoadedDocument
from mlspec.lsp.analysis import node_at, value_at


def definition(document: LoadedDocument, line: int, character: int) -> tuple[int, int] | None:
    """The 1-based (line, col) that the reference at the 0-based position points to."""
    found = node_at(document, line, character)
    if found is None or found[1]:
        return None
    kp = found[0]
    value = value_at(document.data, kp)
    if not isinstance(value, str):
        return None
    if _is_step_reference(kp):
        steps = value_at(document.data, kp[: kp.index("steps") + 1])
        for i, step in enumerate(steps if isinstance(steps, list) else []):
            if isinstance(step, dict) and step.get("name") == value:
                return document.source_map.values.get((*kp[: kp.index("steps") + 1], i, "name"))
    if kp[-2:] == ("gpu", "type"):
        for prefix in _infrastructure_roots(kp):
            pools = value_at(document.data, (*prefix, "infrastructure", "node_pools"))
            for name, pool in (pools or {}).items() if isinstance(pools, dict) else ():
                if isinstance(pool, dict) and pool.get("accelerator") == value:
                    return document.source_map.keys.get((*prefix, "infrastructure", "node_pools", name))
    return None


def _is_step_reference(kp: KeyPath) -> bool:
    if "steps" not in kp:
        return False
    rest = kp[kp.index("steps") + 1 :]
    return len(rest) in (2, 3) and isinstance(rest[0], int) and rest[1] in ("before", "after")


def _infrastructure_roots(kp: KeyPath) -> list[tuple[Any, ...]]:
    """An overlay's own node pools first, then the base spec's."""
    return [kp[:2], ()] if kp[:1] == ("environments",) and len(kp) > 2 else [()]
