"""load + validate + lint + lower for synthetic specs with 10, 100 and 1,000 user steps: time and peak memory.

    python bench/lower.py [--sizes 10 100 1000] [--repeat 3]

Each user step depends on the one before it (a chain: the worst case for ordering and cycle search),
and every tenth step also on a step ten back. Cost should grow linearly: the per-step column stays flat.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from pathlib import Path

import mlspec

ROOT = Path(__file__).resolve().parent.parent


def synthetic(steps: int) -> str:
    base = (ROOT / "specs" / "churn.yaml").read_text()
    lines = ["steps:"]
    for i in range(steps):
        after = [f"s{i - 1}"] if i else []
        if i >= 10 and i % 10 == 0:
            after.append(f"s{i - 10}")
        lines.append(f"  - name: s{i}")
        lines.append(f"    command: [python, -m, jobs.s{i}, --out, '{{outputs.part}}']")
        lines.append(f"    after: [{', '.join(after)}]")
        if i == steps - 1:
            lines.append("    before: train")
        lines.append("    resources: {cpu: 500m, memory: 1Gi}")
    return base.replace("\ntraining:\n", "\n" + "\n".join(lines) + "\n\ntraining:\n", 1)


def measure(text: str) -> tuple[float, dict[str, float], int]:
    gc.collect()
    tracemalloc.start()
    stages: dict[str, float] = {}
    started = time.perf_counter()
    loaded = mlspec.loads(text, "synthetic.yaml")
    stages["load+validate"] = time.perf_counter() - started
    mark = time.perf_counter()
    diagnostics = mlspec.lint(loaded)
    stages["lint"] = time.perf_counter() - mark
    assert not diagnostics, diagnostics[:3]
    mark = time.perf_counter()
    ir = mlspec.lower(loaded)
    stages["lower"] = time.perf_counter() - mark
    total = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(ir.pipelines[0].steps) >= 7
    return total, stages, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()
    measure(synthetic(5))  # import and warm everything once
    print(
        f"{'steps':>6} {'KiB':>7} {'load+val s':>10} {'lint s':>8} {'lower s':>8} {'total s':>8} "
        f"{'ms/step':>8} {'peak MiB':>9}"
    )
    for size in opts.sizes:
        text = synthetic(size)
        runs = [measure(text) for _ in range(opts.repeat)]
        total, stages, peak = min(runs, key=lambda r: r[0])
        print(
            f"{size:>6} {len(text) / 1024:7.1f} {stages['load+validate']:10.4f} {stages['lint']:8.4f} "
            f"{stages['lower']:8.4f} {total:8.4f} {1000 * total / size:8.3f} {peak / 2**20:9.2f}"
        )


if __name__ == "__main__":
    main()
