"""The loop's lint rules: what deployments of one system must not share, and what their pods must reach.

A deployment is each named environment of a spec that has environments (the base document is then their
template and the local default for `mlspec run`), else the base document of a spec that declares
`infrastructure` (mlspec provisions its cluster, so its artifacts are meant for it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mlspec.diagnostics import Diagnostic, MlspecError, Severity
from mlspec.ir import policy
from mlspec.lint.engine import LintContext, merged_document, rule
from mlspec.loader import KeyPath
from mlspec.units import duration_seconds

_REQUIRED = ("artifacts bucket", "EKS cluster")  # the spec must name these; mlspec derives the others


def _is_deployment(ctx: LintContext) -> bool:
    if ctx.environment is not None:
        return True
    return not ctx.spec.environments and ctx.spec.infrastructure is not None


def _names(ir: Any) -> list[tuple[str, str, KeyPath, str | None]]:
    """(what, value, spec key that sets it, the value it derives from) of every per-environment name."""
    out: list[tuple[str, str, KeyPath, str | None]] = []
    infra = ir.infrastructure
    if infra is not None:
        where = f"{infra.account_id or '?'}/{infra.region}"
        out.append(
            (
                "artifacts bucket",
                infra.artifacts_bucket,
                ("infrastructure", "storage", "artifacts_bucket"),
                None,
            )
        )
        out.append(
            ("EKS cluster", f"{where}/{infra.cluster_name}", ("infrastructure", "cluster", "name"), None)
        )
        out.append(
            (
                "ECR repository",
                f"{where}/{infra.container_registry}",
                ("infrastructure", "container_registry"),
                None,
            )
        )
        if infra.state is not None:
            out.append(
                (
                    "Terraform state",
                    f"s3://{infra.state.bucket}/{infra.state.key}",
                    ("infrastructure", "state", "key"),
                    None,
                )
            )
    root = ir.artifacts_root.rstrip("/") + "/"
    if ir.serving is not None:
        log = ir.serving.prediction_log
        out.append(
            ("prediction log", log, ("serving", "prediction_log"), root if log.startswith(root) else None)
        )
    if ir.retraining is not None:
        state = ir.retraining.state_uri
        out.append(("trigger state", state, ("retraining",), root if state.startswith(root) else None))
    return out


@rule("MS250", "two environments share a name that must be theirs alone")
def unique_per_environment(ctx: LintContext) -> Iterator[Diagnostic]:
    """Runs on the base document only (engine.BASE_ONLY): it compares the environments with each other."""
    from mlspec.ir.lower import lower

    seen: dict[tuple[str, str], str] = {}
    for env in sorted(ctx.spec.environments):
        merged = merged_document(ctx.spec, ctx.data, env)
        if merged is None:
            continue  # MS215 says why
        try:
            ir = lower(merged[0], environment=env)
        except (MlspecError, ValueError):
            continue  # an overlay that does not lower: the rule that owns the problem reports it
        names = _names(ir)
        collided_roots = set()
        for what, value, key, derived_from in names:
            other = seen.get((what, value))
            if other is None:
                seen[(what, value)] = env
                continue
            if what == "artifacts bucket":
                collided_roots.add(ir.artifacts_root.rstrip("/") + "/")
            if derived_from is not None and derived_from in collided_roots:
                continue  # follows from the bucket, reported once there
            overlay = ctx.spec.environments.get(env) or {}
            path: KeyPath = ("environments", env, *key) if _has(overlay, key) else key
            yield ctx.diag(
                "MS250",
                f"environments '{other}' and '{env}' share the {what} {value!r}: deploying one "
                f"{'overwrites' if what in ('prediction log', 'trigger state', 'Terraform state') else 'collides with'}"
                " the other",
                path,
                hint=f"give environments.{env} its own {'.'.join(str(k) for k in key)}"
                + ("" if what in _REQUIRED else " (or leave it unset: mlspec derives one per environment)"),
                at_key=path != key,
            )


def _has(tree: Any, key: KeyPath) -> bool:
    for part in key:
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


@rule("MS251", "a cluster target would be given a tracking URI on this machine")
def tracking_reachable(ctx: LintContext) -> Iterator[Diagnostic]:
    if not _is_deployment(ctx):
        return
    uri = ctx.spec.registry.mlflow.tracking_uri
    if not policy.is_local_uri(uri):
        return
    mode = ctx.spec.orchestration.airflow_mode
    cluster = [t for t in ctx.spec.targets if policy.is_cluster_target(t, mode)]
    if not cluster:
        return
    where = f"environment '{ctx.environment}'" if ctx.environment else "this deployment"
    yield ctx.diag(
        "MS251",
        f"tracking URI {uri!r} names a file on this machine, but {', '.join(cluster)} run in pods: their "
        "servers, monitors and steps would each see an empty registry of their own",
        ("registry", "mlflow", "tracking_uri"),
        hint=f"point registry.mlflow.tracking_uri of {where} at an MLflow server, e.g. "
        "http://mlflow.mlflow.svc.cluster.local:5000",
    )


@rule("MS252", "retraining sink that is not a target")
def sink_is_a_target(ctx: LintContext) -> Iterator[Diagnostic]:
    r = ctx.spec.retraining
    if r is None or r.sink in (None, "local") or r.sink in ctx.spec.targets:
        return
    yield ctx.diag(
        "MS252",
        f"retraining.sink is {r.sink}, which is not in targets: no {r.sink} artifact would run the monitor "
        "or receive the retraining",
        ("retraining", "sink"),
        hint=f"add {r.sink} to targets, or remove retraining.sink to let mlspec pick the first of "
        f"{', '.join(policy.LOOP_OWNERS)} in targets",
    )


@rule("MS253", "monitoring shards that nothing fans out, or that get no partition")
def monitoring_shards(ctx: LintContext) -> Iterator[Diagnostic]:
    m, r = ctx.spec.monitoring, ctx.spec.retraining
    if m is None or m.shards == 1:
        return
    owner = policy.loop_owner(list(ctx.spec.targets), r.sink if r else None)
    if owner not in policy.FAN_OUT_OWNERS:
        ran_by = "`mlspec monitor`" + (" in the CronJob" if owner == "kubernetes" else "")
        yield ctx.diag(
            "MS253",
            f"monitoring.shards is {m.shards}, but the monitor is run by {ran_by}, which reads the whole "
            "window in one process: nothing fans it out",
            ("monitoring", "shards"),
            hint=f"remove monitoring.shards, or let {' or '.join(policy.FAN_OUT_OWNERS)} own the monitor",
            severity=Severity.WARNING,
        )
        return
    hours = -(-duration_seconds(m.window) // 3600) + 1  # an unaligned window touches one more hour
    if m.shards > hours:
        yield ctx.diag(
            "MS253",
            f"monitoring.shards is {m.shards}, but a {m.window} window spans at most {hours} hourly log "
            f"partitions: {m.shards - hours} shard task(s) would summarize nothing",
            ("monitoring", "shards"),
            hint=f"use at most {hours} shards, or a longer monitoring.window",
            severity=Severity.WARNING,
        )


@rule("MS254", "a prediction log the server's role cannot write")
def prediction_log_writable(ctx: LintContext) -> Iterator[Diagnostic]:
    infra, sv = ctx.spec.infrastructure, ctx.spec.serving
    if infra is None or sv is None or not sv.prediction_log or "kubernetes" not in ctx.spec.targets:
        return
    root = policy.artifacts_root(infra.storage.artifacts_bucket, ctx.spec.metadata.name) + "/"
    if policy.key_prefix_under(sv.prediction_log, root) is not None:
        return
    yield ctx.diag(
        "MS254",
        f"serving.prediction_log {sv.prediction_log!r} is not under the system's artifacts prefix {root}: the "
        "server's IRSA role may write only there, so its log writes would be refused and the monitor would "
        "read an empty window",
        ("serving", "prediction_log"),
        hint=f"remove serving.prediction_log (default: {root}predictions), or set it under {root}",
        severity=Severity.WARNING,
    )
