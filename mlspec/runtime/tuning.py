"""Hyperparameter tuning with Optuna, one trial per process so orchestrators can fan trials out.

`tune-trial --trial i` rebuilds the study from the trial results already in RUN_DIR (ask-and-tell), asks
for trial i's parameters, scores them on a validation split of the training data (or k-fold CV when
training.cv_folds is set; the holdout stays untouched) and writes RUN_DIR/steps/tune-trial/<i>/result.json.
`tune-select` picks the best. Grid trials take grid point i; random and TPE samplers are seeded with
seed + i, so trials that run in parallel against the same history still explore different points.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlspec.ir.model import IR, SearchDim, Tuning
from mlspec.runtime import StepError


def _distribution(dim: SearchDim):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    low, high = float(dim.low or 0.0), float(dim.high or 0.0)

    if dim.kind == "uniform":
        return FloatDistribution(low, high)
    if dim.kind == "log_uniform":
        return FloatDistribution(low, high, log=True)
    if dim.kind == "int":
        return IntDistribution(int(low), int(high))
    # Optuna choices must be scalars; lists such as [64, 32] travel as their JSON text.
    return CategoricalDistribution([json.dumps(c, sort_keys=True) for c in dim.choices or []])


def decode(tuning: Tuning, raw: dict[str, Any]) -> dict[str, Any]:
    kinds = {d.name: d.kind for d in tuning.space}
    return {k: json.loads(v) if kinds.get(k) == "choice" else v for k, v in raw.items()}


def grid_points(tuning: Tuning) -> list[dict[str, Any]]:
    axes = []
    for dim in tuning.space:
        values: list[Any]
        low, high = float(dim.low or 0.0), float(dim.high or 0.0)
        if dim.kind == "choice":
            values = [json.dumps(c, sort_keys=True) for c in dim.choices or []]
        elif dim.kind == "int":
            lo, hi = int(low), int(high)
            values = (
                list(range(lo, hi + 1))
                if hi - lo <= 8
                else sorted({round(v) for v in np.linspace(lo, hi, 5)})
            )
        elif dim.kind == "log_uniform":
            values = [low, math.sqrt(low * high), high]
        else:
            values = [low, (low + high) / 2, high]
        axes.append([(dim.name, v) for v in values])
    return [dict(combo) for combo in itertools.product(*axes)]


def ask(tuning: Tuning, seed: int, index: int, history: list[dict[str, Any]]) -> dict[str, Any]:
    """The raw (Optuna-encoded) parameters of trial `index` given completed trials' results."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {d.name: _distribution(d) for d in tuning.space}
    if tuning.method == "grid":
        points = grid_points(tuning)
        return points[index % len(points)]
    sampler: optuna.samplers.BaseSampler
    if tuning.method == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed + index)
    else:
        sampler = optuna.samplers.TPESampler(
            seed=seed + index, n_startup_trials=min(4, max(1, tuning.trials // 2))
        )
    study = optuna.create_study(direction=tuning.goal, sampler=sampler)
    for past in history:
        try:
            study.add_trial(
                optuna.trial.create_trial(
                    params=past["raw_params"], distributions=dists, value=float(past["value"])
                )
            )
        except (ValueError, KeyError):
            continue  # a trial from a different search space: ignore it
    return dict(study.ask(dists).params)


def score(
    ir: IR, frame: pd.DataFrame, hp: dict[str, Any], seed: int, metric: str
) -> tuple[float, list[float]]:
    """Mean validation value of `metric` over k folds (cv_folds) or one 80/20 split of the training data."""
    from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

    from mlspec.runtime import evaluation, preprocessing, training

    target = frame[ir.data.target]
    stratify = ir.data.task == "classification" and target.value_counts().min() >= 2
    folds = ir.training.cv_folds
    if folds and folds > 1:
        splitter = (StratifiedKFold if stratify else KFold)(n_splits=folds, shuffle=True, random_state=seed)
        splits = list(splitter.split(frame, target if stratify else None))
    else:
        idx = np.arange(len(frame))
        tr, va = train_test_split(
            idx, test_size=0.2, random_state=seed, stratify=target if stratify else None
        )
        splits = [(tr, va)]
    values = []
    with tempfile.TemporaryDirectory() as ckpt:
        for fold, (tr, va) in enumerate(splits):
            part_train, part_val = frame.iloc[tr], frame.iloc[va]
            model, spec, _ = training.train_model(ir, part_train, hp, seed, Path(ckpt) / str(fold))
            output = training.predict(model, preprocessing.encode(part_val, spec))
            metrics = evaluation.compute(ir.data.task, preprocessing.encode_target(part_val, spec), output)
            name = evaluation.canonical(metric)
            if name not in metrics:
                raise StepError(
                    f"tuning metric '{metric}' is not computed for {ir.data.task} "
                    f"(known: {', '.join(k for k in metrics if k != 'confusion_matrix')})"
                )
            values.append(float(metrics[name]))
    return float(np.mean(values)), values


def completed(run, count: int, exclude: int | None = None) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        if i == exclude:
            continue
        result = run.result("tune-trial", i)
        if result and result.get("status") == "succeeded" and result.get("value") is not None:
            out.append(result)
    return out


def best(tuning: Tuning, results: list[dict[str, Any]]) -> dict[str, Any]:
    valid = [r for r in results if not math.isnan(float(r["value"]))]
    if not valid:
        raise StepError("no tuning trial produced a value (run tune-trial first)")
    key = (
        (lambda r: (float(r["value"]), -r["trial"]))
        if tuning.goal == "maximize"
        else (lambda r: (-float(r["value"]), -r["trial"]))
    )
    return max(valid, key=key)


def quiet() -> None:
    logging.getLogger("optuna").setLevel(logging.WARNING)
