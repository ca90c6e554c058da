"""MLflow tracking and model registry: the pipeline's run, lineage tags, versions and the aliases.

Default tracking URI: IR.registry.tracking_uri (a SQLite file under .mlspec/ for the examples); the
MLFLOW_TRACKING_URI environment variable overrides it. Only a pipeline run creates a SQLite registry; every
other use of one that does not exist is an error naming its URI.

Champion and challenger are a state machine over two aliases, each version's `mlspec.stage` tag naming its
state (docs/monitoring.md draws it):

    register        a new version passed the gates: `challenger` points at it          stage challenger
    start_rollout   it beat the champion offline and now runs beside it (shadow,
                    canary, a-b) until the rollout's analysis decides                  stage shadow|canary|experiment
    move_champion   promote (training, the analysis, or by hand) or rollback:
                    `champion` points at it; the one it replaced is retired            stage champion / retired
    reject          the analysis failed: `challenger` goes back to the champion,
                    so the challenger's servers serve the champion again               stage rejected

Every transition is checked in full before an alias moves, and recorded with who, why and the metrics in a
registered-model tag of its own (`mlspec.champion_history.<ms>.<random>` for champion moves,
`mlspec.challenger_history.<ms>.<random>` for the others: concurrent transitions never overwrite each other's
entry); if recording fails, the alias is moved back. `history` reads them all (`mlspec history`).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

from mlspec.ir.model import IR
from mlspec.runtime import StepError

HISTORY_TAG = "mlspec.champion_history"  # releases before per-entry tags kept one JSON list here (read only)
HISTORY_ENTRY = HISTORY_TAG + "."  # one tag per champion move: <HISTORY_ENTRY><ms since epoch>.<random hex>
CHALLENGER_ENTRY = "mlspec.challenger_history."  # one tag per challenger transition, same key shape
HISTORY_KEEP = 50  # newest entries of each kind kept; older ones are deleted after a transition
STAGE_TAG = "mlspec.stage"
ROLLOUT_STARTED_TAG = (
    "mlspec.rollout.started_at"  # ISO instant (mlspec.clock) the challenger began its rollout
)
REASON_MAX_CHARS = 1000
BY_MAX_CHARS = 200


def tracking_uri(ir: IR) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or ir.registry.tracking_uri


def client(ir: IR, *, create: bool = False):
    """An MlflowClient for the IR's registry; fails fast with a clear message when a server is down.

    A SQLite registry that does not exist is created only when `create` is set (a pipeline run registering
    its first model); anywhere else it is an error naming the URI, not an empty registry.
    """
    # A down server must fail a step in seconds, not after MLflow's default minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    uri = tracking_uri(ir)
    if uri.startswith(("http://", "https://")):
        _check_server(uri)
    elif create and (path := sqlite_path(uri)) is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        require_existing(uri)
    from mlflow import MlflowClient

    try:
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    except Exception as exc:
        raise StepError(f"cannot open the MLflow registry at {uri}: {exc}") from exc


def sqlite_path(uri: str) -> Path | None:
    """The database file of a sqlite:/// tracking URI (None for other URIs and in-memory databases)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :]
    return Path(path) if path and path != ":memory:" else None


def require_existing(uri: str) -> None:
    """Refuse a SQLite registry that does not exist: MLflow would create it empty and then blame the model."""
    path = sqlite_path(uri)
    if path is not None and not path.is_file():
        raise StepError(
            f"the MLflow registry {uri} does not exist (no file {path}); "
            "run the training pipeline first, or point MLFLOW_TRACKING_URI at the registry"
        )


def _check_server(uri: str) -> None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as resp:
            if resp.status != 200:
                raise StepError(f"the MLflow registry at {uri} is unhealthy (HTTP {resp.status})")
    except (urllib.error.URLError, OSError) as exc:
        raise StepError(
            f"the MLflow registry at {uri} is unreachable ({getattr(exc, 'reason', exc)})"
        ) from exc


def experiment_id(c, ir: IR) -> str:
    exp = c.get_experiment_by_name(ir.registry.experiment)
    if exp is not None:
        return exp.experiment_id
    uri = tracking_uri(ir)
    location = None
    if uri.startswith("sqlite:///"):  # keep local artifacts beside the database, not in ./mlruns
        location = Path(uri[len("sqlite:///") :]).resolve().parent.joinpath("mlartifacts").as_uri()
    return c.create_experiment(ir.registry.experiment, artifact_location=location)


# ----------------------------------------------------------------------------------------------- lineage
def file_sha256(path: str) -> str:
    import fsspec

    digest = hashlib.sha256()
    with fsspec.open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit() -> str:
    for key in ("MLSPEC_GIT_COMMIT", "GIT_COMMIT", "GITHUB_SHA"):
        if os.environ.get(key):
            return os.environ[key]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def lineage_tags(ir: IR, data: dict[str, dict[str, str]]) -> dict[str, str]:
    tags = {
        "mlspec.system": ir.system.name,
        "mlspec.spec_path": ir.system.spec_path,
        "mlspec.spec_sha256": ir.system.spec_sha256,
        "mlspec.ir_version": ir.ir_version,
        "mlspec.image": os.environ.get("MLSPEC_IMAGE", ir.images.get("runtime", "")),
        "mlspec.git_commit": git_commit(),
        "mlspec.environment": ir.system.environment or "",
    }
    for name, info in sorted(data.items()):
        tags[f"mlspec.data.{name}.uri"] = info["uri"]
        tags[f"mlspec.data.{name}.sha256"] = info["sha256"]
    return tags


# ----------------------------------------------------------------------------------------------- the run
def pipeline_run(ctx) -> tuple[Any, str]:
    """(client, run id) of this pipeline run's MLflow run, created by the first step that needs it."""
    c = client(ctx.ir, create=True)
    uri = tracking_uri(ctx.ir)
    if ctx.run.exists("mlflow.json"):
        info = ctx.run.read_json("mlflow.json")
        if info.get("tracking_uri") == uri:
            return c, info["run_id"]
    validate = ctx.run.result("validate-data") or {}
    tags = lineage_tags(ctx.ir, validate.get("data", {}))
    tags["mlspec.run_dir"] = ctx.run.root
    try:
        run = c.create_run(experiment_id(c, ctx.ir), tags=tags, run_name=Path(ctx.run.root).name)
    except StepError:
        raise
    except Exception as exc:
        raise StepError(f"the MLflow registry at {uri} refused a new run: {exc}") from exc
    ctx.run.write_json({"run_id": run.info.run_id, "tracking_uri": uri}, "mlflow.json")
    return c, run.info.run_id


def log(
    ctx,
    params: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    history: dict[str, list[float]] | None = None,
) -> None:
    from mlflow.entities import Metric, Param

    c, run_id = pipeline_run(ctx)
    now = int(time.time() * 1000)
    ms = [
        Metric(k, float(v), now, 0) for k, v in sorted((metrics or {}).items()) if isinstance(v, int | float)
    ]
    for name, values in sorted((history or {}).items()):
        ms += [Metric(name, float(v), now, i) for i, v in enumerate(values)]
    ps = [Param(k, json.dumps(v) if not isinstance(v, str) else v) for k, v in sorted((params or {}).items())]
    c.log_batch(run_id, metrics=ms, params=ps)


# ----------------------------------------------------------------------------------------------- versions
def register(ctx, model_dir: Path, tags: dict[str, str]) -> str:
    c, run_id = pipeline_run(ctx)
    name = ctx.ir.registry.model_name
    c.log_artifacts(run_id, str(model_dir), "model")
    try:
        c.get_registered_model(name)
    except Exception:
        c.create_registered_model(name, tags={"mlspec.system": ctx.ir.system.name})
    run = c.get_run(run_id)
    all_tags = {k: v for k, v in run.data.tags.items() if k.startswith("mlspec.")}
    all_tags.update(tags)
    all_tags[STAGE_TAG] = "challenger"
    version = c.create_model_version(
        name, source=f"{run.info.artifact_uri}/model", run_id=run_id, tags=all_tags
    )
    metrics = {k.removeprefix("metric."): v for k, v in tags.items() if k.startswith("metric.")}
    _move(
        ctx.ir,
        c,
        ctx.ir.registry.challenger_alias,
        str(version.version),
        action="register",
        by="mlspec pipeline",
        reason="the evaluation gates passed",
        metrics=metrics,
    )
    c.set_terminated(run_id)
    return str(version.version)


def alias_version(ir: IR, alias: str, c=None) -> str | None:
    c = c or client(ir)
    try:
        return str(c.get_model_version_by_alias(ir.registry.model_name, alias).version)
    except Exception as exc:
        if (
            "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", ""))
            or "not found" in str(exc).lower()
        ):
            return None
        raise StepError(f"cannot read alias '{alias}' of model '{ir.registry.model_name}': {exc}") from exc


def download(ir: IR, version: str, dst: Path) -> Path:
    import mlflow

    client(ir)
    uri = tracking_uri(ir)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    dst.mkdir(parents=True, exist_ok=True)
    return Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{ir.registry.model_name}/{version}", dst_path=str(dst)
        )
    )


def history(ir: IR, c=None) -> list[dict[str, Any]]:
    """Every recorded transition of either alias, oldest first."""
    return _entries(ir, c, (HISTORY_ENTRY, CHALLENGER_ENTRY))


def champion_history(ir: IR, c=None) -> list[dict[str, Any]]:
    """Every recorded move of the champion alias, oldest first."""
    return _entries(ir, c, (HISTORY_ENTRY,))


def _entries(ir: IR, c, prefixes: tuple[str, ...]) -> list[dict[str, Any]]:
    c = c or client(ir)
    try:
        model = c.get_registered_model(ir.registry.model_name)
    except Exception:
        return []
    entries = [
        {**e, "alias": ir.registry.champion_alias} for e in json.loads(model.tags.get(HISTORY_TAG, "[]"))
    ]
    keyed = sorted(
        (key.rsplit(".", 2)[-2], key) for key in model.tags if any(key.startswith(p) for p in prefixes)
    )
    for _, key in keyed:
        entry = json.loads(model.tags[key])
        entry.setdefault("alias", ir.registry.champion_alias)
        entries.append(entry)
    return entries


def move_champion(
    ir: IR,
    version: str,
    *,
    action: str,
    by: str | None = None,
    reason: str = "",
    metrics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Point the champion alias at `version` and record who and why: both happen, or neither.

    Everything is checked before the alias moves; the alias moves in one registry call; if the record cannot
    be written, the alias is moved back (unless another move has replaced it meanwhile).
    """
    who = _who(by, reason)
    c = client(ir)
    name, alias = ir.registry.model_name, ir.registry.champion_alias
    _require_version(c, name, version)
    previous = alias_version(ir, alias, c)
    entry = _move(ir, c, alias, version, action=action, by=who, reason=reason, metrics=metrics)
    version_tags = {
        "mlspec.champion_by": who,
        "mlspec.champion_reason": reason,
        "mlspec.champion_action": action,
        "mlspec.previous_champion": previous or "",
    }
    try:
        for tag, value in version_tags.items():
            c.set_model_version_tag(name, version, tag, value)
    except Exception as exc:
        raise StepError(
            f"could not record moving '{alias}' of '{name}' to version {version} ({exc}); "
            + _undo_move(c, name, alias, version, previous, entry["key"])
        ) from exc
    _set_stage(c, name, version, "champion")
    if previous and previous != version:
        _set_stage(c, name, previous, "retired")
    _prune_history(c, name)
    return entry


def start_rollout(ir: IR, version: str, *, kind: str, by: str, reason: str) -> dict[str, Any]:
    """The challenger beat the champion offline; it now runs beside it until the rollout's analysis decides."""
    from mlspec import clock

    c = client(ir)
    name = ir.registry.model_name
    _require_version(c, name, version)
    started = clock.now().isoformat().replace("+00:00", "Z")
    entry = _record(
        c,
        name,
        CHALLENGER_ENTRY,
        _entry(ir.registry.challenger_alias, version, version, "rollout", by, f"{kind}: {reason}"),
    )
    c.set_model_version_tag(name, version, ROLLOUT_STARTED_TAG, started)
    _set_stage(c, name, version, kind)
    return {**entry, "started_at": started}


def reject(
    ir: IR, version: str, *, by: str | None = None, reason: str = "", metrics: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The analysis failed: the version is rejected and `challenger` returns to the champion (or is removed),
    so the servers of the challenger variant serve the champion again. The champion does not move."""
    who = _who(by, reason)
    c = client(ir)
    name, alias = ir.registry.model_name, ir.registry.challenger_alias
    _require_version(c, name, version)
    champion = alias_version(ir, ir.registry.champion_alias, c)
    _set_stage(c, name, version, "rejected")
    if champion is None:
        previous = alias_version(ir, alias, c)
        c.delete_registered_model_alias(name, alias)
        return _record(
            c, name, CHALLENGER_ENTRY, _entry(alias, None, previous, "reject", who, reason, metrics)
        )
    entry = _move(ir, c, alias, champion, action="reject", by=who, reason=reason, metrics=metrics)
    return {**entry, "rejected": version}


def version_tags(ir: IR, version: str, c=None) -> dict[str, str]:
    c = c or client(ir)
    return dict(c.get_model_version(ir.registry.model_name, version).tags)


def _who(by: str | None, reason: str) -> str:
    who = by or os.environ.get("MLSPEC_USER") or _user()
    for label, text, limit in (("--reason", reason, REASON_MAX_CHARS), ("--by", who, BY_MAX_CHARS)):
        if len(text) > limit:
            raise StepError(f"{label} is {len(text)} characters; the limit is {limit}")
    return who


def _entry(
    alias: str,
    version: str | None,
    previous: str | None,
    action: str,
    by: str,
    reason: str,
    metrics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from mlspec import clock

    entry: dict[str, Any] = {
        "alias": alias,
        "version": version,
        "previous": previous,
        "action": action,
        "by": by,
        "reason": reason,
        "at": int(clock.now().timestamp()),
    }
    if metrics:
        entry["metrics"] = metrics
    return entry


def _record(c, name: str, prefix: str, entry: dict[str, Any]) -> dict[str, Any]:
    # the key orders entries: the wall clock's milliseconds (a pinned mlspec.clock would tie them)
    key = f"{prefix}{int(time.time() * 1000):013d}.{secrets.token_hex(4)}"
    c.set_registered_model_tag(name, key, json.dumps(entry, sort_keys=True, default=str))
    return {**entry, "key": key}


def _move(
    ir: IR,
    c,
    alias: str,
    version: str,
    *,
    action: str,
    by: str,
    reason: str,
    metrics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Move `alias` to `version` and record the transition: both happen, or the alias is moved back."""
    name = ir.registry.model_name
    previous = alias_version(ir, alias, c)
    prefix = HISTORY_ENTRY if alias == ir.registry.champion_alias else CHALLENGER_ENTRY
    entry = _entry(alias, version, previous, action, by, reason, metrics)
    c.set_registered_model_alias(name, alias, version)
    try:
        return _record(c, name, prefix, entry)
    except Exception as exc:
        raise StepError(
            f"could not record moving '{alias}' of '{name}' to version {version} ({exc}); "
            + _undo_move(c, name, alias, version, previous, None)
        ) from exc


def _set_stage(c, name: str, version: str, stage: str) -> None:
    c.set_model_version_tag(name, version, STAGE_TAG, stage)


def _require_version(c, name: str, version: str) -> None:
    try:
        c.get_model_version(name, version)
    except Exception as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")):
            raise StepError(f"model '{name}' has no version {version}") from exc
        raise StepError(f"cannot read version {version} of model '{name}': {exc}") from exc


def _undo_move(c, name: str, alias: str, version: str, previous: str | None, key: str | None) -> str:
    """Move the alias back after a failed record; says what state the registry is left in."""
    try:
        if key is not None:
            _delete_tag(c, name, key)
        current = str(c.get_model_version_by_alias(name, alias).version)
        if current != version:
            return f"'{alias}' was moved to version {current} by someone else meanwhile; left there"
        if previous is None:
            c.delete_registered_model_alias(name, alias)
        else:
            c.set_registered_model_alias(name, alias, previous)
    except Exception as exc:
        return f"moving it back failed too ({exc}): '{alias}' may point at {version} with no history entry"
    return f"'{alias}' was moved back to {previous or '(none)'}"


def _delete_tag(c, name: str, key: str) -> None:
    """Delete a registered-model tag that may never have been written."""
    try:
        c.delete_registered_model_tag(name, key)
    except Exception as exc:
        if "RESOURCE_DOES_NOT_EXIST" not in str(getattr(exc, "error_code", "")):
            raise


def _prune_history(c, name: str) -> None:
    """Keep the newest HISTORY_KEEP entries of each kind (best effort: a failure here loses nothing recorded)."""
    try:
        tags = c.get_registered_model(name).tags
        for prefix in (HISTORY_ENTRY, CHALLENGER_ENTRY):
            for key in sorted(k for k in tags if k.startswith(prefix))[:-HISTORY_KEEP]:
                _delete_tag(c, name, key)
    except Exception as exc:
        logging.getLogger("mlspec.runtime").warning("could not prune the champion history: %s", exc)


def rollback(ir: IR, *, by: str | None = None, reason: str = "") -> dict[str, Any]:
    """Return the champion alias to the champion before the current one."""
    c = client(ir)
    current = alias_version(ir, ir.registry.champion_alias, c)
    if current is None:
        raise StepError(f"model '{ir.registry.model_name}' has no champion to roll back")
    previous = None
    for entry in reversed(champion_history(ir, c)):
        if entry["version"] == current and entry["action"] != "rollback":
            if not entry.get("previous") or entry["previous"] == current:
                break
            previous = entry["previous"]
            break
    if previous is None:
        raise StepError(f"champion version {current} of '{ir.registry.model_name}' has no previous champion")
    return move_champion(ir, previous, action="rollback", by=by, reason=reason)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
