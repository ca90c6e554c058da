"""Benchmark: the terraform backend's compile time and peak memory for the example spec (cdktf core only).

Each run is a fresh interpreter (as `mlspec compile` is), so the figures include importing cdktf and starting
its jsii node process. Peak memory is VmHWM of the Python process and of the node process it starts.
The prebuilt AWS provider bindings (cdktf-cdktf-provider-aws), which this backend never imports, are quoted
from issue 7 (about 20 s and 1.3 GB to import here) unless --bindings-python names a venv that has them.

    .venv/bin/python bench/terraform_compile.py [--runs 5] [--bindings-python PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, sys, time
t0 = time.perf_counter()
import mlspec
ir = mlspec.lower(mlspec.load("specs/churn.yaml"))
t1 = time.perf_counter()
from mlspec.backends import EmitContext, load_backend
artifacts = load_backend("terraform").emit(ir, EmitContext())
t2 = time.perf_counter()

def hwm_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0

children = []
for task in os.listdir("/proc/self/task"):
    children += open(f"/proc/self/task/{task}/children").read().split()
node = max((hwm_mb(pid) for pid in children), default=0.0)
print(json.dumps({"lower_s": t1 - t0, "backend_s": t2 - t1, "python_mb": hwm_mb(os.getpid()), "node_mb": node,
                  "bytes": sum(len(a.data()) for a in artifacts)}))
"""

BINDINGS = r"""
import json, os, time, resource
t0 = time.perf_counter()
import cdktf_cdktf_provider_aws.eks_cluster, cdktf_cdktf_provider_aws.s3_bucket  # noqa
print(json.dumps({"import_s": time.perf_counter() - t0,
                  "python_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(code: str, python: str = sys.executable) -> dict:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
    if "PYTHONPATH" in os.environ:  # a checkout that is not the installed one (a git worktree)
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    out = subprocess.run([python, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--bindings-python", help="a python whose venv has cdktf-cdktf-provider-aws installed"
    )
    args = parser.parse_args()
    runs = [run(CHILD) for _ in range(args.runs)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    rows = [
        (
            "terraform backend emit (cdktf core), median",
            f"{med['backend_s']:.2f} s",
            f"{med['python_mb']:.0f} MB python + {med['node_mb']:.0f} MB node",
        ),
        ("  load + lower the spec (not the backend)", f"{med['lower_s']:.2f} s", ""),
        ("  slowest run, backend emit", f"{max(r['backend_s'] for r in runs):.2f} s", ""),
    ]
    if args.bindings_python:
        b = run(BINDINGS, args.bindings_python)
        rows.append(
            (
                "import prebuilt AWS provider bindings (measured)",
                f"{b['import_s']:.2f} s",
                f"{b['python_mb']:.0f} MB python",
            )
        )
    else:
        rows.append(("import prebuilt AWS provider bindings (issue 7 figure)", "~20 s", "~1.3 GB"))
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  {'time':>8}  peak memory")
    print(f"{'-' * width}  {'-' * 8}  {'-' * 30}")
    for name, time_, mem in rows:
        print(f"{name:<{width}}  {time_:>8}  {mem}")
    print(
        f"\n{args.runs} runs, fresh interpreter each; output {runs[0]['bytes']} bytes; goal < 2 s and < 200 MB."
    )


if __name__ == "__main__":
    main()
