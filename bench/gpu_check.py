"""The CUDA paths, on a machine with a GPU: bf16-autocast training and ONNX Runtime's CUDA provider.

Trains the churn spec's builtin MLP with the runtime's own `train_model` on CUDA (bf16 autocast) and on the
CPU, exports both to ONNX and checks parity, times one epoch of a larger synthetic tabular set on each
device, and reports which ONNX Runtime providers the server would use for `accelerator: gpu`.
Prints a table. Usage: python bench/gpu_check.py  (runs on the CPU alone when there is no GPU).
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import mlspec  # noqa: E402
from mlspec.runtime import export, preprocessing, training  # noqa: E402


def churn_case(device: str) -> dict:
    ir = mlspec.load_ir(ROOT / "specs" / "churn.yaml")
    frame = pd.read_csv(ROOT / "data" / "churn" / "train.csv")
    train, test = train_test_split(frame, test_size=0.2, random_state=7, stratify=frame["churned"])
    hp = {**training.hyperparameters(ir), "hidden": [64, 32]}
    autocast_dtypes: set[str] = set()
    original = training.device
    training.device = lambda: torch.device(device)  # the runtime picks CUDA itself; force each in turn
    hook = torch.nn.Linear.register_forward_hook  # record what autocast computes in
    handles = []

    def watch(module, _inputs, output):
        autocast_dtypes.add(str(output.dtype).replace("torch.", ""))

    orig_fit = training.TrainContext.fit

    def fit_and_watch(self, net, *args, **kwargs):
        handles.extend(hook(m, watch) for m in net.modules() if isinstance(m, torch.nn.Linear))
        return orig_fit(self, net, *args, **kwargs)

    training.TrainContext.fit = fit_and_watch
    try:
        start = time.perf_counter()
        predictor, spec, _ = training.train_model(ir, train, hp, 0, Path(tempfile.mkdtemp()))
        seconds = time.perf_counter() - start
    finally:
        training.device = original
        training.TrainContext.fit = orig_fit
        for h in handles:
            h.remove()
    X_test = np.array(preprocessing.encode(test, spec), dtype=np.float32)
    proba = training.predict(predictor, X_test)
    auc = roc_auc_score(test["churned"], proba[:, 1])
    onnx_path = Path(tempfile.mkdtemp()) / "model.onnx"
    export.to_onnx(predictor, X_test[:8], onnx_path, ir.training.opset)
    diff = export.parity(predictor, onnx_path, X_test, ir.training.parity_tolerance)
    return {
        "case": f"churn MLP on {device}",
        "seconds": seconds,
        "auc": auc,
        "onnx_parity": diff,
        "dtypes": ",".join(sorted(autocast_dtypes)),
    }


def throughput(device: str, rows: int = 1_000_000, features: int = 32) -> dict:
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(rows, features, generator=gen)
    y = (X[:, :4].sum(1) > 0).long()
    net = torch.nn.Sequential(
        torch.nn.Linear(features, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 2),
    ).to(device)
    X, y = X.to(device), y.to(device)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    batch = 4096

    def epoch() -> None:
        for start in range(0, rows, batch):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
                loss = loss_fn(net(X[start : start + batch]).float(), y[start : start + batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    epoch()  # warm-up (kernels, allocator)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    epoch()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {
        "case": f"1M x {features} MLP epoch on {device}",
        "seconds": seconds,
        "rows_per_s": rows / seconds,
    }


def onnxruntime_providers() -> dict:
    import onnxruntime as ort

    from mlspec.serving.model import choose_providers

    logging.disable(logging.CRITICAL)
    return {
        "available": ort.get_available_providers(),
        "accelerator_gpu_uses": choose_providers("gpu"),
        "onnxruntime": ort.__version__,
    }


def main() -> None:
    devices = ["cuda", "cpu"] if torch.cuda.is_available() else ["cpu"]
    print(
        f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}"
        + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "")
    )
    print(f"{'case':34} {'seconds':>9} {'AUC':>7} {'ONNX parity':>12} {'rows/s':>12}  linear dtypes")
    for device in devices:
        r = churn_case(device)
        print(
            f"{r['case']:34} {r['seconds']:9.2f} {r['auc']:7.4f} {r['onnx_parity']:12.2e} {'':>12}  {r['dtypes']}"
        )
    for device in devices:
        r = throughput(device)
        print(f"{r['case']:34} {r['seconds']:9.3f} {'':>7} {'':>12} {r['rows_per_s']:12.0f}")
    print("onnxruntime:", json.dumps(onnxruntime_providers()))


if __name__ == "__main__":
    main()
