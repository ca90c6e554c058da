"""Distributed training throughput: 2 processes on 2 GPUs (NCCL, bf16 autocast) next to 2 on the CPU (gloo).

    python bench/gpu_ddp.py [--rows 400000] [--epochs 3] [--cpu-rows 40000] [--batch 8192]

Each case runs the runtime's own training loop (mlspec.runtime.training.fit: the builtin tabular MLP, DDP,
the global batch split over the ranks) on the same seeded synthetic data, under torchrun exactly as the train
step does (`python -m torch.distributed.run --standalone --nproc-per-node 2 ...`). Rank 0 reports the
collective backend, the autocast dtype the layers computed in, the final loss and rows per second; the table
puts the GPU and CPU figures side by side (figures, not pass/fail).

Needs torch with CUDA and at least 2 GPUs for the GPU case; on a machine without them it says so, exits 2,
and runs nothing (`--cpu-only` runs the CPU case alone). Besides torch it needs numpy, pandas and pydantic
(mlspec's runtime training module), imported from this checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FEATURES = 32
HIDDEN = [512, 256]


def worker(args: argparse.Namespace) -> None:
    """One rank: build the data and model, join the group torchrun set up, train, report from rank 0."""
    import numpy as np
    import torch
    import torch.distributed as dist

    sys.path.insert(0, str(ROOT))
    from mlspec.runtime import training

    cuda = args.device == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl" if cuda else "gloo")
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // int(os.environ["WORLD_SIZE"])))
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(args.rows, FEATURES, generator=gen)
    y = ((X[:, :8] * torch.linspace(1, 2, 8)).sum(1) + 0.5 * torch.randn(args.rows, generator=gen) > 0).long()
    spec = {
        "task": "classification",
        "features": [{"name": f"x{i}", "kind": "numeric", "mean": 0.0, "std": 1.0} for i in range(FEATURES)],
        "classes": [0, 1],
    }
    model = training.TabularMLP(spec, HIDDEN)
    dtypes: set[str] = set()
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.register_forward_hook(lambda _m, _i, out: dtypes.add(str(out.dtype).replace("torch.", "")))
    hp = {"epochs": args.epochs, "lr": 1e-3, "batch_size": args.batch}
    losses: list[float] = []
    dev = torch.device("cuda") if cuda else torch.device("cpu")
    # one short epoch first: CUDA context, NCCL communicators and kernels are not what we time
    training.fit(
        training.TabularMLP(spec, HIDDEN),
        X[: args.batch * 2],
        y[: args.batch * 2],
        "classification",
        {**hp, "epochs": 1},
        dev,
        0,
    )
    if cuda:
        torch.cuda.synchronize()
    dist.barrier()
    started = time.perf_counter()
    training.fit(model, X, y, "classification", hp, dev, 0, lambda name, value, step: losses.append(value))
    if cuda:
        torch.cuda.synchronize()
    dist.barrier()
    seconds = time.perf_counter() - started
    if dist.get_rank() == 0:
        report = {
            "device": torch.cuda.get_device_name() if cuda else "cpu",
            "backend": dist.get_backend(),
            "world": dist.get_world_size(),
            "autocast": ",".join(sorted(dtypes)),
            "rows": args.rows,
            "epochs": args.epochs,
            "seconds": seconds,
            "rows_per_second": args.rows * args.epochs / seconds,
            "final_loss": losses[-1],
            "finite": bool(np.isfinite(losses).all()),
        }
        Path(args.report).write_text(json.dumps(report))
    dist.destroy_process_group()


def run_case(device: str, rows: int, epochs: int, batch: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="mlspec-gpu-ddp-") as tmp:
        report = Path(tmp) / "report.json"
        argv = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nnodes=1",
            "--nproc-per-node=2",
            str(Path(__file__).resolve()),
            "--worker",
            "--device",
            device,
            "--rows",
            str(rows),
            "--epochs",
            str(epochs),
            "--batch",
            str(batch),
            "--report",
            str(report),
        ]
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "TORCH_NCCL_ASYNC_ERROR_HANDLING": "1",
            "NCCL_DEBUG": "WARN",
        }
        code = subprocess.run(argv, env=env, check=False).returncode
        if code != 0 or not report.exists():
            raise SystemExit(f"the {device} case failed (torchrun exited with {code})")
        return json.loads(report.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000, help="rows of the GPU case")
    parser.add_argument("--cpu-rows", type=int, default=40_000, help="rows of the CPU case")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8192, help="the global batch (split over the 2 ranks)")
    parser.add_argument("--cpu-only", action="store_true", help="run the CPU case alone")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--device", choices=["cuda", "cpu"], help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0
    import torch

    cases = []
    if not args.cpu_only:
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if gpus < 2:
            print(
                f"bench/gpu_ddp.py: needs 2 CUDA GPUs for the NCCL case, this machine has {gpus} "
                f"(torch {torch.__version__}); run with --cpu-only for the CPU figure alone",
                file=sys.stderr,
            )
            return 2
        cases.append(run_case("cuda", args.rows, args.epochs, args.batch))
    cases.append(run_case("cpu", args.cpu_rows, args.epochs, args.batch))
    head = ("device", "backend", "procs", "autocast", "rows x epochs", "seconds", "rows/s", "final loss")
    rows = [
        (
            c["device"],
            c["backend"],
            str(c["world"]),
            c["autocast"],
            f"{c['rows']} x {c['epochs']}",
            f"{c['seconds']:.2f}",
            f"{c['rows_per_second']:,.0f}",
            f"{c['final_loss']:.4f}" + ("" if c["finite"] else " (not finite!)"),
        )
        for c in cases
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for i, r in enumerate([head, *rows]):
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    if len(cases) == 2:
        print(f"\nGPU / CPU throughput: {cases[0]['rows_per_second'] / cases[1]['rows_per_second']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
