"""PyTorch training: the builtin tabular MLP, user entrypoints, devices, seeding and DDP via torchrun."""

from __future__ import annotations

import importlib
import json
import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from mlspec import contracts
from mlspec.ir.model import IR
from mlspec.runtime import StepError, preprocessing

DEFAULTS = {"epochs": 10, "lr": 1e-3, "batch_size": 256, "weight_decay": 0.0}


# ----------------------------------------------------------------------------------------------- modules
class Preprocess(nn.Module):
    """Impute (training mean), standardize numerics and one-hot categoricals inside the graph."""

    num_idx: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, spec: dict[str, Any]):
        super().__init__()
        feats = spec["features"]
        num = [i for i, f in enumerate(feats) if f["kind"] == "numeric"]
        self.register_buffer("num_idx", torch.tensor(num, dtype=torch.long))
        self.register_buffer("mean", torch.tensor([feats[i]["mean"] for i in num], dtype=torch.float32))
        self.register_buffer("std", torch.tensor([feats[i]["std"] for i in num], dtype=torch.float32))
        self.cat_idx = [i for i, f in enumerate(feats) if f["kind"] == "category"]
        for k, i in enumerate(self.cat_idx):
            self.register_buffer(f"levels_{k}", torch.arange(len(feats[i]["values"]), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.num_idx.numel():
            num = torch.index_select(x, 1, self.num_idx)
            num = torch.where(torch.isnan(num), self.mean.expand_as(num), num)
            parts.append((num - self.mean) / self.std)
        for k, i in enumerate(self.cat_idx):
            levels = getattr(self, f"levels_{k}")
            parts.append((x[:, i : i + 1] == levels).to(x.dtype))
        return torch.cat(parts, dim=1)


class TabularMLP(nn.Module):
    """The builtin model: preprocessing, then Linear/ReLU/Dropout layers; regression outputs in target units."""

    def __init__(self, spec: dict[str, Any], hidden: list[int], dropout: float = 0.0):
        super().__init__()
        self.pre = Preprocess(spec)
        layers: list[nn.Module] = []
        width = preprocessing.input_width(spec)
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(float(dropout)))
            width = int(h)
        layers.append(nn.Linear(width, preprocessing.n_outputs(spec)))
        self.body = nn.Sequential(*layers)
        self.regression = spec["task"] == "regression"
        self.register_buffer("y_mean", torch.tensor(float(spec.get("target_mean", 0.0))))
        self.register_buffer("y_std", torch.tensor(float(spec.get("target_std", 1.0))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(self.pre(x))
        return out * self.y_std + self.y_mean if self.regression else out


class Predictor(nn.Module):
    """What is evaluated and exported: class probabilities [N, C] or predictions [N]."""

    def __init__(self, net: nn.Module, task: str):
        super().__init__()
        self.net = net
        self.task = task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x).float()
        if self.task == "regression":
            return out.reshape(-1)
        if out.dim() == 1 or out.shape[-1] == 1:  # a single binary logit
            p = torch.sigmoid(out.reshape(-1, 1))
            return torch.cat([1 - p, p], dim=1)
        return torch.softmax(out, dim=-1)


# ----------------------------------------------------------------------------------------------- context
@dataclass
class TrainContext:
    """What a user entrypoint `module:function(ctx) -> torch.nn.Module` receives.

    The returned module maps the encoded float32 matrix [N, F] (see mlspec.runtime.preprocessing) to
    logits [N, C] (classification) or predictions [N] (regression). `ctx.preprocess()` returns the
    in-graph preprocessing module to put first; `ctx.fit(model)` runs the builtin training loop on it.
    """

    train: pd.DataFrame
    X: torch.Tensor
    y: torch.Tensor
    features: list[str]
    task: str
    preprocessing: dict[str, Any]
    hyperparameters: dict[str, Any]
    device: torch.device
    seed: int
    checkpoint_dir: Path
    metrics: dict[str, list[float]] = field(default_factory=dict)
    logger: Callable[[str, float, int], None] | None = None

    @property
    def n_inputs(self) -> int:
        return preprocessing.input_width(self.preprocessing)

    @property
    def n_outputs(self) -> int:
        return preprocessing.n_outputs(self.preprocessing)

    def preprocess(self) -> nn.Module:
        return Preprocess(self.preprocessing)

    def log_metric(self, name: str, value: float, step: int = 0) -> None:
        self.metrics.setdefault(name, []).append(float(value))
        if self.logger is not None:
            self.logger(name, float(value), step)

    def fit(self, model: nn.Module) -> nn.Module:
        return fit(
            model, self.X, self.y, self.task, self.hyperparameters, self.device, self.seed, self.log_metric
        )


# ----------------------------------------------------------------------------------------------- helpers
def device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def hyperparameters(ir: IR, *overrides: dict[str, Any]) -> dict[str, Any]:
    hp: dict[str, Any] = dict(DEFAULTS)
    if ir.training.builtin:
        hp.update({k: v for k, v in ir.training.builtin.items() if k != "model"})
    hp.update(ir.training.hyperparameters)
    for extra in overrides:
        hp.update(extra)
    return hp


def load_entrypoint(ref: str, what: str = "entrypoint") -> Callable[..., Any]:
    """module:function, imported from the working directory (the project root)."""
    module_name, _, attr = ref.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise StepError(f"cannot load {what} '{ref}': {exc}") from exc


def dist_info() -> tuple[int, int]:
    """(rank, world size) inside a torchrun worker, (0, 1) otherwise."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def fit(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    task: str,
    hp: dict[str, Any],
    dev: torch.device,
    seed: int,
    log: Callable[[str, float, int], None] | None = None,
) -> nn.Module:
    """Mini-batch Adam; deterministic on CPU for a seed. Under DDP the same model as one process.

    `batch_size` is the global batch: each optimizer step takes the next `batch_size` rows of one seeded
    permutation, and rank r of W computes rows r, r+W, ... of them. Each rank's loss is its rows' sum
    scaled by W / rows in the step, so DDP's average of the ranks' gradients is exactly the gradient of the
    mean loss over the whole batch, whatever the number of processes (up to floating-point summation order).
    """
    seed_everything(seed)
    rank, world = dist_info()
    model = model.to(dev)
    X, y = X.to(dev), y.to(dev)
    trained = model
    if world > 1:
        ids = None
        if dev.type == "cuda":  # torchrun's LOCAL_RANK is the current device (the train step set it)
            ids = [dev.index if dev.index is not None else torch.cuda.current_device()]
        trained = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    regression = task == "regression"
    loss_fn: nn.Module = nn.MSELoss(reduction="sum") if regression else nn.CrossEntropyLoss(reduction="sum")
    opt = torch.optim.Adam(
        trained.parameters(), lr=float(hp["lr"]), weight_decay=float(hp.get("weight_decay", 0.0))
    )
    gen = torch.Generator().manual_seed(seed)
    batch = max(1, int(hp["batch_size"]))
    y_mean = getattr(model, "y_mean", torch.tensor(0.0)).to(dev)
    y_std = getattr(model, "y_std", torch.tensor(1.0)).to(dev)
    for epoch in range(int(hp["epochs"])):
        trained.train()
        perm = torch.randperm(len(X), generator=gen).to(dev)
        total = torch.zeros(2, dtype=torch.float64, device=dev)  # loss sum, rows
        for start in range(0, len(X), batch):
            window = perm[start : start + batch]
            idx = window[rank::world]
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                out = trained(X[idx])
                if regression:
                    summed = loss_fn((out.reshape(-1).float() - y_mean) / y_std, (y[idx] - y_mean) / y_std)
                else:
                    summed = loss_fn(out.float(), y[idx])
            loss = summed * (world / len(window))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += torch.stack(
                [summed.detach().double(), torch.tensor(float(len(idx)), device=dev).double()]
            )
        if world > 1:
            torch.distributed.all_reduce(total)
        mean_loss = float(total[0] / total[1]) if total[1] else None
        if log is not None and mean_loss is not None:
            log("train_loss", mean_loss, epoch)
        if rank == 0 and mean_loss is not None:  # `mlspec run` reads this line for its progress bar
            print(f"epoch {epoch + 1}/{hp['epochs']}: train_loss {mean_loss:.4f}", flush=True)
    model.eval()
    return model


def train_model(
    ir: IR,
    train: pd.DataFrame,
    hp: dict[str, Any],
    seed: int,
    checkpoint_dir: Path,
    logger: Callable[[str, float, int], None] | None = None,
) -> tuple[Predictor, dict[str, Any], dict]:
    """Fit the builtin MLP or call the user entrypoint; returns (predictor, preprocessing spec, metric history)."""
    spec = preprocessing.fit(ir, train)
    X = torch.from_numpy(np.array(preprocessing.encode(train, spec)))
    y = torch.from_numpy(np.array(preprocessing.encode_target(train, spec)))
    dev = device()
    if dev.type == "cpu":
        # Small tabular models gain nothing from intra-op threads and lose a lot to contention on shared
        # CPUs; one thread also keeps CPU results bit-for-bit reproducible.
        torch.set_num_threads(int(os.environ.get("MLSPEC_TORCH_THREADS", "1")))
    ctx = TrainContext(
        train=train,
        X=X,
        y=y,
        features=list(ir.data.features),
        task=ir.data.task,
        preprocessing=spec,
        hyperparameters=hp,
        device=dev,
        seed=seed,
        checkpoint_dir=checkpoint_dir,
        logger=logger,
    )
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)
    if ir.training.entrypoint:
        net = load_entrypoint(ir.training.entrypoint)(ctx)
        if not isinstance(net, nn.Module):
            raise StepError(
                f"entrypoint {ir.training.entrypoint} returned {type(net).__name__}, not a torch.nn.Module"
            )
    else:
        hidden = hp.get("hidden", [64, 32])
        if isinstance(hidden, str):
            hidden = json.loads(hidden)
        net = ctx.fit(TabularMLP(spec, list(hidden), float(hp.get("dropout", 0.0))))
    net = net.to("cpu").eval()
    return Predictor(net, ir.data.task).eval(), spec, ctx.metrics


def predict(model: nn.Module, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))).float().cpu().numpy()


def save(model: nn.Module, spec: dict[str, Any], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(model, directory / contracts.TORCH_MODEL_FILE)
    (directory / contracts.PREPROCESSING_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")


def load(directory: Path) -> tuple[Predictor, dict[str, Any]]:
    if os.getcwd() not in sys.path:  # user model classes are importable from the project root
        sys.path.insert(0, os.getcwd())
    model = torch.load(directory / contracts.TORCH_MODEL_FILE, weights_only=False, map_location="cpu")
    spec = json.loads((directory / contracts.PREPROCESSING_FILE).read_text())
    return model.eval(), spec
