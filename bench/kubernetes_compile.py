"""Kubernetes backend compile time and peak memory: the example spec once, and 50 specs in one call.

Usage: python bench/kubernetes_compile.py [--repeat N]
The 50 specs are churn.yaml renamed (distinct systems, namespaces and service accounts), lowered once;
the figures cover backend emit only (objects -> YAML artifacts), the work `mlspec compile` adds per target.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from pathlib import Path

import mlspec
from mlspec.backends import EmitContext

ROOT = Path(__file__).resolve().parents[1]


def irs(count: int):
    text = (ROOT / "specs" / "churn.yaml").read_text("utf-8")
    out = []
    for i in range(count):
        renamed = text.replace("name: churn\n", f"name: churn{i:02d}\n", 1)
        out.append(mlspec.lower(mlspec.loads(renamed, "specs/churn.yaml")))
    return out


def measure(backend, batch, repeat: int) -> tuple[float, float, int, int]:
    """Median wall time over `repeat` untraced runs, then one run under tracemalloc for the peak."""

    def run():
        return [backend.emit(ir, EmitContext(allow_unsupported=True)) for ir in batch]

    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        results = run()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    files = sum(len(r) for r in results)
    size = sum(len(a.data()) for r in results for a in r)
    return statistics.median(times), peak / 2**20, files, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    start = time.perf_counter()
    from mlspec_kubernetes import KubernetesBackend

    backend = KubernetesBackend()
    backend.emit(irs(1)[0], EmitContext(allow_unsupported=True))  # first call pays the kubernetes import
    cold = time.perf_counter() - start
    rows = []
    for label, batch in (("example spec (churn)", irs(1)), ("50 specs, one call", irs(50))):
        median, peak, files, size = measure(backend, batch, args.repeat)
        rows.append((label, median * 1000, median * 1000 / len(batch), peak, files, size / 1024))
    print(f"first emit incl. importing kubernetes client: {cold * 1000:.0f} ms")
    print(f"{'case':<22} {'median ms':>10} {'ms/spec':>8} {'peak MiB':>9} {'files':>6} {'KiB out':>8}")
    for label, ms, per, peak, files, kib in rows:
        print(f"{label:<22} {ms:>10.1f} {per:>8.2f} {peak:>9.1f} {files:>6} {kib:>8.0f}")


if __name__ == "__main__":
    main()
