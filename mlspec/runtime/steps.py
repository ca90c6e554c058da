"""The builtin steps: each takes a StepContext and returns its result dict (or raises StepError).

What each step reads and writes in RUN_DIR is listed in docs/runtime.md.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlspec import contracts
from mlspec.runtime import StepError
from mlspec.runtime.context import StepContext

TRAIN_PARQUET = ("data", "train.parquet")
TEST_PARQUET = ("data", "test.parquet")


def _read_parquet(ctx: StepContext, parts: tuple[str, ...]):
    import pandas as pd

    if not ctx.run.exists(*parts):
        raise StepError(f"{'/'.join(parts)} is missing in {ctx.run.root} (run validate-data first)")
    return pd.read_parquet(io.BytesIO(ctx.run.read_bytes(*parts)))


def _write_parquet(ctx: StepContext, frame, parts: tuple[str, ...]) -> str:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return ctx.run.write_bytes(buf.getvalue(), *parts)


def _gates_required(ctx: StepContext, step: str, champion: bool = False) -> dict[str, Any]:
    ev = ctx.run.require("evaluate", step)
    if not ev.get("gates_passed"):
        failed = "; ".join(g["message"] for g in ev.get("gates", []) if not g["passed"])
        raise StepError(f"refusing to {step}: the evaluation gates did not pass ({failed})")
    if champion and not ev.get("beats_champion"):
        raise StepError(
            f"refusing to {step}: the challenger does not beat the champion ({ev.get('champion_reason')})"
        )
    return ev


def _model_dir(ctx: StepContext, *parts: str) -> Path:
    names = [contracts.TORCH_MODEL_FILE, contracts.PREPROCESSING_FILE]
    for name in names:
        if not ctx.run.exists(*parts, name):
            raise StepError(f"{'/'.join([*parts, name])} is missing in {ctx.run.root} (run train first)")
        path = ctx.run.local_path(*parts, name)
    return path.parent


# ----------------------------------------------------------------------------------------------- validation
def _failed(report: dict[str, Any], base: dict[str, Any]) -> StepError:
    failed = [c for c in report.get("checks", []) if not c.get("passed", True)]
    lines = "; ".join(f"{c.get('check', c.get('name', '?'))}: {c.get('message', '')}".strip() for c in failed)
    return StepError(f"{len(failed)} data check(s) failed: {lines}", {**base, "report": report})


def _check_list(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {k: c.get(k) for k in ("check", "name", "passed", "message") if k in c}
        for c in report.get("checks", [])
    ]


def validate_raw(ctx: StepContext) -> dict[str, Any]:
    """data.raw_checks on the raw sources, before any preparation step reads them."""
    from mlspec.ir.model import DataSetRef
    from mlspec.runtime import checks, datasets

    frames = {s.name: datasets.read(ctx, DataSetRef(name=s.name, step=None)) for s in ctx.ir.data.sources}
    report = checks.run_checks(ctx.ir, frames["train"], frames, raw=True)
    ctx.run.write_json(report, "steps", "validate-raw", "report.json")
    base = {"rows": len(frames["train"]), "checks_passed": bool(report["passed"])}
    if not report["passed"]:
        raise _failed(report, base)
    return {**base, "checks": _check_list(report)}


def validate_data(ctx: StepContext) -> dict[str, Any]:
    """The schema and data.checks on the prepared data (data.prepared), then the train/test split."""
    from mlspec.ir.model import DataSetRef
    from mlspec.runtime import checks, data, datasets

    recorded = _record_run(ctx)
    prepared = {ref.name: ref for ref in ctx.ir.data.prepared}
    frames, lineage = {}, {}
    for name in data.sources_of(ctx.ir, ctx.data_overrides):
        ref = prepared.get(name, DataSetRef(name=name, step=None))
        try:
            frames[name] = datasets.read(ctx, ref)
            lineage[name] = datasets.lineage(ctx, ref)
        except data.DataError as exc:
            raise StepError(str(exc)) from exc
        if ref.step is not None:
            lineage[name]["prepared_by"] = ref.step
    if "train" not in frames:
        raise StepError("the IR has no 'train' data source")
    train = frames["train"]
    report = checks.run_checks(ctx.ir, train, frames)
    ctx.run.write_json(report, "steps", "validate-data", "report.json")
    base = {
        "rows": len(train),
        "checks_passed": bool(report.get("passed")),
        "data": lineage,
        "report_path": ctx.run.uri("steps", "validate-data", "report.json"),
    }
    if not report.get("passed"):
        raise _failed(report, base)
    train_part, test_part = checks.split(ctx.ir, train)
    # PII columns were read for the checks only: the run's data, in the artifacts bucket, never holds them
    pii = [c.name for c in ctx.ir.data.columns if c.pii and c.name != ctx.ir.data.target]
    _write_parquet(ctx, train_part.drop(columns=pii, errors="ignore"), TRAIN_PARQUET)
    _write_parquet(ctx, test_part.drop(columns=pii, errors="ignore"), TEST_PARQUET)
    return {
        **base,
        "train_rows": len(train_part),
        "test_rows": len(test_part),
        "dropped_pii_columns": [c for c in pii if c in train_part.columns],
        "retraining_recorded": recorded,
        "checks": _check_list(report),
    }


def _record_run(ctx: StepContext) -> dict[str, Any] | None:
    """Every training run, however it started, holds the retraining cooldown from validate-data on (every
    training pipeline has that step)."""
    if ctx.ir.retraining is None:
        return None
    from mlspec.runtime import now, triggers

    path = triggers.default_state_path(ctx.ir, ctx.run.root)
    entry = triggers.record_run(path, now(), started_by=triggers.retrain_reason() or "a training run")
    return {"state": path, **entry}


# ----------------------------------------------------------------------------------------------- user steps
def user_step(ctx: StepContext) -> dict[str, Any]:
    from mlspec.runtime import userstep

    return userstep.run(ctx, ctx.ir_step())


# ----------------------------------------------------------------------------------------------- tuning
def _hparams(ctx: StepContext, *extra: dict[str, Any]) -> dict[str, Any]:
    from mlspec.runtime.training import hyperparameters

    return hyperparameters(ctx.ir, *extra, ctx.hparam_overrides)


def tune_trial(ctx: StepContext) -> dict[str, Any]:
    from mlspec.runtime import tuning

    t = ctx.ir.training.tuning
    if t is None:
        raise StepError("the IR has no training.tuning section")
    if ctx.trial is None:
        raise StepError("tune-trial needs --trial N")
    if not 0 <= ctx.trial < t.trials:
        raise StepError(f"--trial {ctx.trial} is outside 0..{t.trials - 1}")
    ctx.run.require("validate-data", "tune-trial")
    frame = _read_parquet(ctx, TRAIN_PARQUET)
    raw = tuning.ask(
        t, ctx.ir.training.seed, ctx.trial, tuning.completed(ctx.run, t.trials, exclude=ctx.trial)
    )
    params = tuning.decode(t, raw)
    value, folds = tuning.score(ctx.ir, frame, _hparams(ctx, params), ctx.ir.training.seed, t.metric)
    return {
        "trial": ctx.trial,
        "params": params,
        "raw_params": raw,
        "value": value,
        "fold_values": folds,
        "metric": t.metric,
    }


def tune_select(ctx: StepContext) -> dict[str, Any]:
    from mlspec.runtime import tuning

    t = ctx.ir.training.tuning
    if t is None:
        raise StepError("the IR has no training.tuning section")
    results = tuning.completed(ctx.run, t.trials)
    top = tuning.best(t, results)
    return {
        "best_params": top["params"],
        "best_value": top["value"],
        "best_trial": top["trial"],
        "metric": t.metric,
        "trials_completed": len(results),
        "trials": t.trials,
    }


# ----------------------------------------------------------------------------------------------- train
# What this runtime trains with and exports to; an IR from a newer compiler may ask for more.
FRAMEWORKS = ("pytorch",)
EXPORT_FORMATS = ("onnx",)


def _supported(what: str, value: str, supported: tuple[str, ...]) -> None:
    if value not in supported:
        raise StepError(
            f"this runtime cannot use {what} {value!r} (it supports {', '.join(supported)}): "
            "use a runtime image of the compiler's mlspec release"
        )


def train(ctx: StepContext) -> dict[str, Any]:
    from mlspec.runtime import registry, training

    _supported("framework", ctx.ir.training.framework, FRAMEWORKS)
    ctx.run.require("validate-data", "train")
    tuned = {}
    if ctx.ir.training.tuning is not None:
        tuned = ctx.run.require("tune-select", "train").get("best_params", {})
    hp = _hparams(ctx, tuned)
    spread = ctx.ir.training.distribution
    worker = os.environ.get(contracts.DDP_WORKER_ENV) == "1"
    if spread is not None and spread.launcher != "none" and not worker:
        from mlspec.runtime import launch

        return launch.train(ctx, spread)
    frame = _read_parquet(ctx, TRAIN_PARQUET)
    rank, world = _init_distributed(spread.backend if spread else "gloo") if worker else (0, 1)
    if rank == 0:
        registry.pipeline_run(ctx)  # fail before training when the registry is down
    model_dir = ctx.run.local_dir("model")
    model, spec, history = training.train_model(
        ctx.ir, frame, hp, ctx.ir.training.seed, model_dir / "checkpoints"
    )
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    if rank != 0:
        return {}
    training.save(model, spec, model_dir)
    ctx.run.publish(model_dir, "model")
    final = {f"final_{k}": v[-1] for k, v in history.items() if v}
    registry.log(ctx, params=hp, metrics=final, history=history)
    return {
        "model_path": ctx.run.uri("model"),
        "hyperparameters": hp,
        "device": str(training.device()),
        "workers": world,
        "entrypoint": ctx.ir.training.entrypoint,
        "rows": len(frame),
        **final,
    }


def _init_distributed(backend: str) -> tuple[int, int]:
    """Join the process group torchrun set up: the IR's backend on GPUs, gloo where there is no GPU."""
    import torch
    import torch.distributed as dist

    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    else:
        backend = "gloo"
    dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


# ----------------------------------------------------------------------------------------------- evaluate
def evaluate(ctx: StepContext) -> dict[str, Any]:
    from mlspec.runtime import evaluation, preprocessing, registry, training

    ctx.run.require("train", "evaluate")
    model, spec = training.load(_model_dir(ctx, "model"))
    test = _read_parquet(ctx, TEST_PARQUET)
    X, y = preprocessing.encode(test, spec), preprocessing.encode_target(test, spec)
    output = training.predict(model, X)
    metrics = evaluation.compute(ctx.ir.data.task, y, output)
    metrics.update(evaluation.custom_metrics(ctx.ir, y, output, test))
    gates = evaluation.check_gates(ctx.ir.evaluation.gates, metrics)
    gates_passed = all(g["passed"] for g in gates)

    champion_version, champion_metrics = None, None
    if ctx.ir.evaluation.champion_metric is not None:
        champion_version = registry.alias_version(ctx.ir, ctx.ir.registry.champion_alias)
        if champion_version is not None:
            champion_metrics = _score_champion(ctx, champion_version, test)
    metric = ctx.ir.evaluation.champion_metric
    key = evaluation.canonical(metric) if metric else None
    beats, reason = evaluation.beats(
        ctx.ir,
        metrics.get(key) if key else None,
        champion_metrics.get(key) if champion_metrics and key else None,
    )
    registry.log(ctx, metrics={f"test_{k}": v for k, v in metrics.items()})
    for g in gates:
        print(f"  gate {'PASS' if g['passed'] else 'FAIL'}: {g['message']}", file=sys.stderr)
    print(f"  champion: {reason}", file=sys.stderr)
    return {
        "metrics": metrics,
        "gates": gates,
        "gates_passed": gates_passed,
        "beats_champion": bool(beats),
        "champion_version": champion_version,
        "champion_metrics": champion_metrics,
        "champion_reason": reason,
        "holdout_rows": len(test),
    }


def _score_champion(ctx: StepContext, version: str, test) -> dict[str, Any]:
    """The champion's metrics on this run's holdout, from its registered ONNX model."""
    import json

    from mlspec.runtime import evaluation, export, preprocessing, registry

    with tempfile.TemporaryDirectory() as tmp:
        bundle = registry.download(ctx.ir, version, Path(tmp))
        onnx_path, spec_path = bundle / contracts.MODEL_FILE, bundle / contracts.PREPROCESSING_FILE
        if not onnx_path.exists() or not spec_path.exists():
            raise StepError(f"champion version {version} lacks model.onnx/preprocessing.json in the registry")
        spec = json.loads(spec_path.read_text())
        output = export.onnx_predict(onnx_path, preprocessing.encode(test, spec))
        return evaluation.compute(ctx.ir.data.task, preprocessing.encode_target(test, spec), output)


# ----------------------------------------------------------------------------------------------- export
def export_step(ctx: StepContext) -> dict[str, Any]:
    from mlspec.runtime import export, preprocessing, training

    _supported("export format", ctx.ir.training.export_format, EXPORT_FORMATS)
    ev = _gates_required(ctx, "export")
    model, spec = training.load(_model_dir(ctx, "model"))
    test = _read_parquet(ctx, TEST_PARQUET)
    train_frame = _read_parquet(ctx, TRAIN_PARQUET)
    out = ctx.run.local_dir("export")
    result = export.write_bundle(
        out, model, spec, preprocessing.encode(test, spec), train_frame, ctx.ir, ev, test_frame=test
    )
    ctx.run.publish(out, "export")
    result["onnx_path"] = ctx.run.uri("export", contracts.MODEL_FILE)
    result["bundle"] = ctx.run.uri("export")
    return result


# ----------------------------------------------------------------------------------------------- registry
def register(ctx: StepContext) -> dict[str, Any]:
    from mlspec.runtime import registry

    ev = _gates_required(ctx, "register")
    ctx.run.require("export", "register")
    files = list(contracts.BUNDLE_FILES)
    local = None
    for name in files:
        if not ctx.run.exists("export", name):
            raise StepError(f"export/{name} is missing in {ctx.run.root} (run export first)")
        local = ctx.run.local_path("export", name).parent
    assert local is not None
    tags = {
        "mlspec.gates_passed": "true",
        "mlspec.beats_champion": str(bool(ev.get("beats_champion"))).lower(),
    }
    for k, v in ev.get("metrics", {}).items():
        if isinstance(v, int | float):
            tags[f"metric.{k}"] = f"{v:.6g}"
    version = registry.register(ctx, local, tags)
    return {
        "model_version": version,
        "model_name": ctx.ir.registry.model_name,
        "alias": ctx.ir.registry.challenger_alias,
        "model_uri": f"models:/{ctx.ir.registry.model_name}/{version}",
    }


def promote(ctx: StepContext) -> dict[str, Any]:
    from mlspec.runtime import registry

    ev = _gates_required(ctx, "promote", champion=True)
    version = ctx.run.require("register", "promote")["model_version"]
    current = registry.alias_version(ctx.ir, ctx.ir.registry.champion_alias)
    if current != ev.get("champion_version"):
        raise StepError(
            f"the champion moved from {ev.get('champion_version')} to {current} after evaluation; "
            "re-run evaluate before promoting"
        )
    analysis = ctx.ir.serving.rollout.analysis if ctx.ir.serving else None
    reason = ev.get("champion_reason", "")
    metrics = {k: v for k, v in ev.get("metrics", {}).items() if isinstance(v, int | float)}
    if analysis is not None and analysis.promotion == "after-analysis" and current is not None:
        # the rollout's analysis promotes it (mlspec analyze): until then the champion keeps serving
        entry = registry.start_rollout(
            ctx.ir, version, kind=analysis.kind, by="mlspec pipeline", reason=reason
        )
        return {
            "champion_version": current,
            "promoted": False,
            "rollout": analysis.kind,
            "rollout_started_at": entry["started_at"],
            "analysis_seconds": analysis.duration_seconds,
            "model_uri": f"models:/{ctx.ir.registry.model_name}@{ctx.ir.registry.champion_alias}",
        }
    if analysis is not None and analysis.promotion == "after-analysis":
        reason = f"the first champion: nothing to run a {analysis.kind} analysis against"
    entry = registry.move_champion(
        ctx.ir, version, action="promote", by="mlspec pipeline", reason=reason, metrics=metrics
    )
    return {
        "champion_version": version,
        "promoted": True,
        "previous_champion": entry["previous"],
        "model_uri": f"models:/{ctx.ir.registry.model_name}@{ctx.ir.registry.champion_alias}",
    }


# ----------------------------------------------------------------------------------------------- monitoring
# A fanned-out window (monitoring.shards > 1): monitor-plan lists the window's files once, each monitor-summarize
# task summarizes its shard of the partitions, and monitor merges the shards' exact summaries.
WINDOW_PARTS = ("steps", "monitor-plan", "window.json")


def _summary_parts(shard: int) -> tuple[str, ...]:
    return ("steps", "monitor-summarize", str(shard), "summary.json")


def _monitoring(ctx: StepContext):
    if ctx.ir.monitoring is None:
        raise StepError("the IR has no monitoring section")
    from mlspec.runtime import monitor as mon

    return ctx.ir.monitoring, mon


def _window(ctx: StepContext):
    _, mon = _monitoring(ctx)
    ctx.run.require("monitor-plan", ctx.step_id)
    return mon.Window.from_json(ctx.run.read_json(*WINDOW_PARTS))


def _reference(ctx: StepContext):
    from mlspec.runtime.monitoring.reference import load_reference

    return load_reference(ctx.ir, ctx.run.root, ctx.data_overrides.get("reference_profile"))


def monitor_plan(ctx: StepContext) -> dict[str, Any]:
    m, mon = _monitoring(ctx)
    try:
        win = mon.open_window(
            ctx.ir,
            ctx.run.root,
            log=ctx.data_overrides.get("predictions"),
            labels=ctx.data_overrides.get("labels"),
        )
    except mon.MonitorError as exc:
        raise StepError(str(exc)) from exc
    ctx.run.write_bytes(json.dumps(win.to_json(), indent=1, sort_keys=True).encode(), *WINDOW_PARTS)
    return {
        "now": win.now.isoformat(),
        "window_start": win.start.isoformat(),
        "partitions": len(win.partitions),
        "files": sum(len(p.files) for p in win.partitions),
        "shards": m.shards,
    }


def monitor_summarize(ctx: StepContext) -> dict[str, Any]:
    m, mon = _monitoring(ctx)
    if ctx.shard is None or not 0 <= ctx.shard < m.shards:
        raise StepError(f"monitor-summarize needs --shard N with 0 <= N < {m.shards}")
    win = _window(ctx)
    try:
        current, late = mon.summarize_shard(ctx.ir, _reference(ctx), win, ctx.shard, m.shards)
    except mon.MonitorError as exc:
        raise StepError(str(exc)) from exc
    body = {"current": current.to_json(), "late": None if late is None else late.to_json()}
    ctx.run.write_bytes(json.dumps(body, sort_keys=True).encode(), *_summary_parts(ctx.shard))
    return {
        "partitions": len(mon.shard_of(win.partitions, ctx.shard, m.shards)),
        "rows": current.rows,
    }


def _merged(ctx: StepContext, shards: int):
    """Every shard's summaries merged in shard order (the partitions' order)."""
    from functools import reduce

    from mlspec.runtime.monitoring.summary import Summary, merge

    parts: list[tuple[Summary, Summary | None]] = []
    for shard in range(shards):
        result = ctx.run.result("monitor-summarize", shard)
        if result is None or result.get("status") != "succeeded":
            raise StepError(f"monitor needs every monitor-summarize shard; shard {shard} has not succeeded")
        body = ctx.run.read_json(*_summary_parts(shard))
        late = body["late"]
        parts.append((Summary.from_json(body["current"]), None if late is None else Summary.from_json(late)))
    current = reduce(merge, (c for c, _ in parts))
    lates = [late for _, late in parts if late is not None]
    return current, reduce(merge, lates) if lates else None


def monitor(ctx: StepContext) -> dict[str, Any]:
    m, mon = _monitoring(ctx)
    try:
        if m.shards == 1:
            return mon.run_monitor(
                ctx.ir,
                ctx.run.root,
                log=ctx.data_overrides.get("predictions"),
                labels=ctx.data_overrides.get("labels"),
                reference=ctx.data_overrides.get("reference_profile"),
            )
        current, late = _merged(ctx, m.shards)
        return mon.finish(ctx.ir, ctx.run.root, _reference(ctx), _window(ctx), current, late)
    except mon.MonitorError as exc:
        raise StepError(str(exc)) from exc


def trigger_retrain(ctx: StepContext) -> dict[str, Any]:
    from mlspec.runtime import triggers

    if ctx.ir.retraining is None:
        raise StepError("the IR has no retraining section")
    result = ctx.run.require("monitor", "trigger-retrain")
    if not result.get("retrain"):
        return {"triggered": False, "reason": "monitor did not ask for retraining"}
    try:
        sent = triggers.send(ctx.ir, result)
    except triggers.SinkError as exc:
        raise StepError(str(exc)) from exc
    return {"triggered": bool(sent.get("sent", True)), **sent}


ACTIONS = {
    "validate-raw": validate_raw,
    "validate-data": validate_data,
    "user": user_step,
    "tune-trial": tune_trial,
    "tune-select": tune_select,
    "train": train,
    "evaluate": evaluate,
    "export": export_step,
    "register": register,
    "promote": promote,
    "monitor-plan": monitor_plan,
    "monitor-summarize": monitor_summarize,
    "monitor": monitor,
    "trigger-retrain": trigger_retrain,
}
