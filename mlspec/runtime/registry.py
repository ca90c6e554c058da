"""MLflow tracking and model registry: the pipeline's run, lineage tags, versions and the champion alias.

Default tracking URI: IR.registry.tracking_uri (a SQLite file under .mlspec/ for the examples); the
MLFLOW_TRACKING_URI environment variable overrides it. Only a pipeline run creates a SQLite registry; every
other use of one that does not exist is an error naming its URI. New versions get the challenger alias; the
champion alias moves only through `promote` (gates and champion comparison re-checked) or by hand. A move is
checked in full before the alias moves, and is recorded with who and why in its own registered-model tag
(`mlspec.champion_history.<ms>.<random>`: concurrent moves never overwrite each other's entry); if recording
fails, the alias is moved back.
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
HISTORY_KEEP = 50  # newest entries kept; older ones are deleted after a move
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
    version = c.create_model_version(
        name, source=f"{run.info.artifact_uri}/model", run_id=run_id, tags=all_tags
    )
    c.set_registered_model_alias(name, ctx.ir.registry.challenger_alias, version.version)
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
    """Every recorded champion move, oldest first."""
    c = c or client(ir)
    try:
        model = c.get_registered_model(ir.registry.model_name)
    except Exception:
        return []
    entries = json.loads(model.tags.get(HISTORY_TAG, "[]"))
    for key in sorted(k for k in model.tags if k.startswith(HISTORY_ENTRY)):
        entries.append(json.loads(model.tags[key]))
    return entries


def move_champion(
    ir: IR, version: str, *, action: str, by: str | None = None, reason: str = ""
) -> dict[str, Any]:
    """Point the champion alias at `version` and record who and why: both happen, or neither.

    Everything is checked before the alias moves; the alias moves in one registry call; if the record cannot
    be written, the alias is moved back (unless another move has replaced it meanwhile).
    """
    who = by or os.environ.get("MLSPEC_USER") or _user()
    for label, text, limit in (("--reason", reason, REASON_MAX_CHARS), ("--by", who, BY_MAX_CHARS)):
        if len(text) > limit:
            raise StepError(f"{label} is {len(text)} characters; the limit is {limit}")
    c = client(ir)
    name, alias = ir.registry.model_name, ir.registry.champion_alias
    _require_version(c, name, version)
    previous = alias_version(ir, alias, c)
    entry = {
        "version": version,
        "previous": previous,
        "action": action,
        "by": who,
        "reason": reason,
        "at": int(time.time()),
    }
    key = f"{HISTORY_ENTRY}{int(time.time() * 1000):013d}.{secrets.token_hex(4)}"
    version_tags = {
        "mlspec.champion_by": who,
        "mlspec.champion_reason": reason,
        "mlspec.champion_action": action,
        "mlspec.previous_champion": previous or "",
    }
    c.set_registered_model_alias(name, alias, version)
    try:
        c.set_registered_model_tag(name, key, json.dumps(entry, sort_keys=True))
        for tag, value in version_tags.items():
            c.set_model_version_tag(name, version, tag, value)
    except Exception as exc:
        raise StepError(
            f"could not record moving '{alias}' of '{name}' to version {version} ({exc}); "
            + _undo_move(c, name, alias, version, previous, key)
        ) from exc
    _prune_history(c, name)
    return entry


def _require_version(c, name: str, version: str) -> None:
    try:
        c.get_model_version(name, version)
    except Exception as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")):
            raise StepError(f"model '{name}' has no version {version}") from exc
        raise StepError(f"cannot read version {version} of model '{name}': {exc}") from exc


def _undo_move(c, name: str, alias: str, version: str, previous: str | None, key: str) -> str:
    """Move the alias back after a failed record; says what state the registry is left in."""
    try:
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
    """Keep the newest HISTORY_KEEP entries (best effort: a failure here loses nothing recorded)."""
    try:
        keys = sorted(k for k in c.get_registered_model(name).tags if k.startswith(HISTORY_ENTRY))
        for key in keys[:-HISTORY_KEEP]:
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
    for entry in reversed(history(ir, c)):
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
