"""How many CPUs this process may really use: the cgroup quota, else the affinity mask."""

from __future__ import annotations

import math
import os
from pathlib import Path


def cpu_limit(cgroup_root: str = "/sys/fs/cgroup") -> int:
    """CPUs granted by the container's CPU limit (cgroup v2 cpu.max or v1 CFS quota), at least 1."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_quota(Path(cgroup_root))
    if quota is not None:
        available = min(available, max(1, math.ceil(quota)))
    return max(1, available)


def _cgroup_quota(root: Path) -> float | None:
    try:
        fields = (root / "cpu.max").read_text().split()
        if fields and fields[0] != "max":
            return int(fields[0]) / int(fields[1])
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None
