"""Cold wall time of `mlspec lint specs/churn.yaml` (a fresh interpreter per run), plus its import cost.

python bench/lint.py [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cold_run(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--spec", default="specs/churn.yaml")
    opts = parser.parse_args()
    exe = str(Path(sys.executable).with_name("mlspec"))
    rows = [
        ("python -c pass (interpreter floor)", [sys.executable, "-c", "pass"]),
        ("python -c 'import mlspec'", [sys.executable, "-c", "import mlspec"]),
        (f"mlspec lint {opts.spec}", [exe, "lint", opts.spec]),
        (f"mlspec ir {opts.spec}", [exe, "ir", opts.spec]),
    ]
    print(f"{'command':<45} {'min s':>8} {'median s':>9} {'max s':>8}  (runs={opts.runs})")
    for label, args in rows:
        cold_run(args)  # warm the OS file cache, not the interpreter
        times = [cold_run(args) for _ in range(opts.runs)]
        print(f"{label:<45} {min(times):8.3f} {statistics.median(times):9.3f} {max(times):8.3f}")
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mlspec", "lint", opts.spec],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    cumulative = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cum, name = line.split(":", 1)[1].split("|")
            cum = cum.strip()
            if cum.isdigit() and name.strip() and not name[1:].startswith(" "):  # top level: one space
                cumulative.append((int(cum), name.strip()))
    print("\nlargest top-level imports of `mlspec lint` (cumulative us)")
    for cum, name in sorted(cumulative, reverse=True)[:8]:
        print(f"  {name:<40} {cum:>8}")


if __name__ == "__main__":
    main()
