"""Wall time of `mlspec run specs/churn.yaml` on a fresh clone (a temp copy of specs/ and data/, no .mlspec/).

    python bench/run_example.py [--spec specs/churn.yaml] [--repeat 1]

Prints a table: total wall time and per-step seconds from the run's summary. Goal: under 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def once(spec: str) -> tuple[float, dict[str, float], int]:
    with tempfile.TemporaryDirectory(prefix="mlspec-bench-") as tmp:
        shutil.copytree(ROOT / "specs", Path(tmp) / "specs")
        shutil.copytree(ROOT / "data", Path(tmp) / "data")
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", "from mlspec.cli import main; main()", "run", spec],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
    steps = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^\[\d+/\d+\] (\S+): ok in ([\d.]+)s", proc.stdout, re.M)
    }
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
    return wall, steps, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", default="specs/churn.yaml")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(
        f"mlspec run {args.spec} on a fresh copy; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'run':>3}  {'exit':>4}  {'wall s':>7}  steps (s)")
    worst = 0
    for i in range(args.repeat):
        wall, steps, code = once(args.spec)
        worst = max(worst, code)
        detail = ", ".join(f"{k} {v:.1f}" for k, v in steps.items())
        print(f"{i + 1:>3}  {code:>4}  {wall:>7.1f}  {detail}")
    return worst


if __name__ == "__main__":
    sys.exit(main())
