"""MLflow tracking and model registry: the pipeline's run, lineage tags, versions and the champion alias.

Default tracking URI: IR.registry.tracking_uri (a SQLite file under .mlspec/ for the examples); the
MLFLOW_TRACKING_URI environment variable overrides it. New versions get the challenger alias; the champion
alias moves only through `promote` (gates and champion comparison re-checked) or by hand, and every move is
recorded in the registered model's `mlspec.champion_history` tag with who and why.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from mlspec.ir.model import IR
from mlspec.runtime import StepError

HISTORY_TAG = "mlspec.champion_history"


def tracking_uri(ir: IR) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or ir.registry.tracking_uri


def client(ir: IR):
    """An MlflowClient for the IR's registry; fails fast with a clear message when a server is down."""
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
    elif uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///") :]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    from mlflow import MlflowClient

    try:
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    except Exception as exc:
        raise StepError(f"cannot open the MLflow registry at {uri}: {exc}") from exc


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
    c = client(ctx.ir)
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
    c = c or client(ir)
    try:
        model = c.get_registered_model(ir.registry.model_name)
    except Exception:
        return []
    return json.loads(model.tags.get(HISTORY_TAG, "[]"))


def move_champion(
    ir: IR, version: str, *, action: str, by: str | None = None, reason: str = ""
) -> dict[str, Any]:
    """Point the champion alias at `version` (one registry call, so it moves atomically) and record it."""
    c = client(ir)
    name = ir.registry.model_name
    try:
        c.get_model_version(name, version)
    except Exception as exc:
        raise StepError(f"model '{name}' has no version {version}") from exc
    previous = alias_version(ir, ir.registry.champion_alias, c)
    who = by or os.environ.get("MLSPEC_USER") or _user()
    c.set_registered_model_alias(name, ir.registry.champion_alias, version)
    entry = {
        "version": version,
        "previous": previous,
        "action": action,
        "by": who,
        "reason": reason,
        "at": int(time.time()),
    }
    hist = [*history(ir, c), entry]
    c.set_registered_model_tag(name, HISTORY_TAG, json.dumps(hist[-50:]))
    for key, value in {
        "mlspec.champion_by": who,
        "mlspec.champion_reason": reason,
        "mlspec.champion_action": action,
        "mlspec.previous_champion": previous or "",
    }.items():
        c.set_model_version_tag(name, version, key, value)
    return entry


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
