"""The sinks that start a retraining run: each reaches one orchestrator (`retraining.sink`, MLSPEC_RETRAIN_SINK).

local       `python -m mlspec run SPEC` as a subprocess (waits when MLSPEC_RETRAIN_WAIT=1);
airflow     an asset event for `mlspec://<system>/retrain` through Airflow 3's REST API (AIRFLOW_API_URL;
            AIRFLOW_API_TOKEN, or AIRFLOW_USERNAME/AIRFLOW_PASSWORD for /auth/token);
kubeflow    a run of the training pipeline uploaded as `<system>-training` (its newest version), through
            kfp.Client (KFP_HOST, default the in-cluster API; MLSPEC_KFP_PIPELINE: a package file instead);
kubernetes  a Job made from the job template of the suspended CronJob `<system>-retrain` (what
            `kubectl create job --from=cronjob/...` does), through the Kubernetes API (in-cluster credentials,
            else KUBECONFIG);
orchestrator
            sends nothing: the orchestrator running the step emits the event itself (the Airflow monitoring
            DAG's asset outlet). Sending it here too would start two retraining runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from mlspec import contracts
from mlspec.runtime.triggers import SinkError

KFP_IN_CLUSTER = "http://ml-pipeline.kubeflow.svc.cluster.local:8888"
SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def send(ir, result: dict[str, Any], sink: str, *, wait: bool) -> dict[str, Any]:
    if sink == "local":
        return _local(ir, result, wait)
    if sink == "airflow":
        return _airflow(ir, result)
    if sink == "kubeflow":
        return _kubeflow(ir, result)
    if sink == "kubernetes":
        return _kubernetes(ir, result)
    if sink == "orchestrator":
        return {"sink": "orchestrator", "note": "the orchestrator emits the retraining event"}
    raise SinkError(
        f"unknown retraining sink {sink!r}; use local, airflow, kubeflow, kubernetes or orchestrator"
    )


def _reason(result: dict[str, Any]) -> str:
    return ",".join(result.get("fired_triggers", []))


# ----------------------------------------------------------------------------------------------- local


def _find_spec(ir) -> str | None:
    """The spec file under the CWD: its project path, else a file of the same name with the IR's spec content."""
    from mlspec.diagnostics import MlspecError
    from mlspec.loader import load_file

    if Path(ir.system.spec_path).is_file():
        return ir.system.spec_path
    name = Path(ir.system.spec_path).name
    for candidate in sorted(Path(".").glob(f"**/{name}")):
        if ".mlspec" in candidate.parts or "generated" in candidate.parts:
            continue
        try:
            if load_file(str(candidate)).content_sha256 == ir.system.spec_sha256:
                return str(candidate)
        except MlspecError:
            continue
    return None


def _local(ir, result: dict[str, Any], wait: bool) -> dict[str, Any]:
    spec = os.environ.get("MLSPEC_RETRAIN_SPEC") or _find_spec(ir)
    if spec is None or not Path(spec).exists():
        raise SinkError(
            f"local sink: spec {ir.system.spec_path} not found from {Path.cwd()} (set MLSPEC_RETRAIN_SPEC)"
        )
    cmd = [sys.executable, "-m", "mlspec", "run", spec]
    if ir.system.environment:
        cmd += ["--env", ir.system.environment]
    log_dir = Path(".mlspec") / "monitoring"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{ir.system.name}-retrain.log"
    env = {**os.environ, contracts.RETRAIN_REASON_ENV: _reason(result)}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=not wait
        )
        if not wait:
            return {"sink": "local", "command": cmd, "pid": proc.pid, "log": str(log_path)}
        rc = proc.wait()
    if rc != 0:
        tail = log_path.read_text(errors="replace")[-2000:]
        raise SinkError(f"local sink: `{' '.join(cmd)}` exited with {rc}; log {log_path}:\n{tail}")
    return {"sink": "local", "command": cmd, "returncode": rc, "log": str(log_path)}


# ----------------------------------------------------------------------------------------------- airflow


def _airflow(ir, result: dict[str, Any]) -> dict[str, Any]:
    import httpx

    base = os.environ.get("AIRFLOW_API_URL")
    if not base:
        raise SinkError("airflow sink: set AIRFLOW_API_URL (e.g. http://airflow-api-server:8080)")
    base = base.rstrip("/")
    uri = contracts.retrain_event_uri(ir.system.name)
    headers = {"Accept": "application/json"}
    with httpx.Client(timeout=float(os.environ.get("MLSPEC_SINK_TIMEOUT", "30"))) as client:
        try:
            token = os.environ.get("AIRFLOW_API_TOKEN")
            if not token and os.environ.get("AIRFLOW_USERNAME"):
                resp = client.post(
                    f"{base}/auth/token",
                    json={
                        "username": os.environ["AIRFLOW_USERNAME"],
                        "password": os.environ.get("AIRFLOW_PASSWORD", ""),
                    },
                )
                _raise(resp, "airflow sink: login")
                token = resp.json()["access_token"]
            if token:
                headers["Authorization"] = f"Bearer {token}"
            resp = client.get(
                f"{base}/api/v2/assets", params={"uri_pattern": uri, "limit": 100}, headers=headers
            )
            _raise(resp, "airflow sink: asset lookup")
            asset = next((a for a in resp.json().get("assets", []) if a.get("uri") == uri), None)
            if asset is None:
                raise SinkError(f"airflow sink: no asset with uri {uri} (is the retrain DAG deployed?)")
            extra = {
                "fired_triggers": result.get("fired_triggers", []),
                "system": ir.system.name,
                "drifted_features": result.get("drifted_features", []),
            }
            resp = client.post(
                f"{base}/api/v2/assets/events",
                json={"asset_id": asset["id"], "extra": extra},
                headers=headers,
            )
            _raise(resp, "airflow sink: create asset event")
        except httpx.HTTPError as exc:
            raise SinkError(f"airflow sink: cannot reach {base}: {exc}") from exc
        event = resp.json()
    return {"sink": "airflow", "asset_uri": uri, "asset_id": asset["id"], "event_id": event.get("id")}


def _raise(resp, what: str) -> None:
    if resp.status_code >= 400:
        raise SinkError(f"{what} failed: HTTP {resp.status_code} {resp.text[:500]}")


# ----------------------------------------------------------------------------------------------- kubeflow


def _kfp_client():
    # A KFP step's processes inherit _KFP_RUNTIME=true, which makes the kfp package skip its client and compiler
    # (importing kfp.client then fails on a circular import). This process is mlspec's step, not KFP's executor,
    # and has not imported kfp: it imports the package as a client does.
    os.environ.pop("_KFP_RUNTIME", None)
    from kfp import client

    host = os.environ.get("KFP_HOST") or KFP_IN_CLUSTER
    token_path = os.environ.get("KF_PIPELINES_SA_TOKEN_PATH")
    credentials = (
        client.ServiceAccountTokenVolumeCredentials(path=token_path)
        if token_path and Path(token_path).exists()
        else None
    )
    return client.Client(
        host=host, namespace=os.environ.get("KFP_NAMESPACE", "kubeflow"), credentials=credentials
    )


def _kubeflow(ir, result: dict[str, Any]) -> dict[str, Any]:
    """A run of the uploaded training pipeline (its newest version) in the system's experiment."""
    import warnings

    name = contracts.pipeline_name(ir.system.name, "training")
    run_name = f"{ir.system.name}-retrain"
    experiment = os.environ.get("KFP_EXPERIMENT", ir.system.name)
    account = ir.service_account("training").name
    package = os.environ.get("MLSPEC_KFP_PIPELINE")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # kfp warns about its own API version on every client
        try:
            client = _kfp_client()
            if package:
                if not Path(package).exists():
                    raise SinkError(f"kubeflow sink: pipeline package {package} not found")
                run = client.create_run_from_pipeline_package(
                    pipeline_file=package,
                    arguments={},
                    run_name=run_name,
                    experiment_name=experiment,
                    service_account=account,
                )
                return {"sink": "kubeflow", "run_id": run.run_id, "pipeline_package": package}
            pipeline_id = client.get_pipeline_id(name)
            if pipeline_id is None:
                raise SinkError(
                    f"kubeflow sink: no pipeline named {name!r} is uploaded (upload "
                    f"generated/{ir.system.name}/kubeflow/pipeline.yaml under that name)"
                )
            versions = client.list_pipeline_versions(pipeline_id, page_size=1, sort_by="created_at desc")
            if not versions.pipeline_versions:
                raise SinkError(f"kubeflow sink: pipeline {name!r} has no version")
            version_id = versions.pipeline_versions[0].pipeline_version_id
            experiment_id = client.create_experiment(experiment).experiment_id
            run = client.run_pipeline(
                experiment_id=experiment_id,
                job_name=run_name,
                params={},
                pipeline_id=pipeline_id,
                version_id=version_id,
                service_account=account,
            )
        except SinkError:
            raise
        except Exception as exc:
            raise SinkError(f"kubeflow sink: cannot create a run: {type(exc).__name__}: {exc}") from exc
    return {"sink": "kubeflow", "run_id": run.run_id, "pipeline_id": pipeline_id, "version_id": version_id}


# ----------------------------------------------------------------------------------------------- kubernetes


def _kube_api():
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
        except Exception as exc:
            raise SinkError(f"kubernetes sink: no in-cluster credentials and no kubeconfig ({exc})") from exc
    return client.BatchV1Api()


def _kubernetes(ir, result: dict[str, Any]) -> dict[str, Any]:
    """A Job from the retrain CronJob's template, owned by that CronJob (its history limits clean it up)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    template_name = contracts.retrain_job_template(ir.system.name)
    namespace = ir.system.namespace
    api = _kube_api()
    try:
        cron = api.read_namespaced_cron_job(template_name, namespace)
        template = cron.spec.job_template
        for container in template.spec.template.spec.containers:
            container.env = [
                *(e for e in container.env or [] if e.name != contracts.RETRAIN_REASON_ENV),
                client.V1EnvVar(name=contracts.RETRAIN_REASON_ENV, value=_reason(result)),
            ]
        meta = client.V1ObjectMeta(
            generate_name=f"{template_name}-",
            namespace=namespace,
            labels=dict(template.metadata.labels or {}) if template.metadata else {},
            annotations={"cronjob.kubernetes.io/instantiate": "manual"},
            owner_references=[
                client.V1OwnerReference(
                    api_version="batch/v1",
                    kind="CronJob",
                    name=cron.metadata.name,
                    uid=cron.metadata.uid,
                    controller=True,
                )
            ],
        )
        job = api.create_namespaced_job(
            namespace, client.V1Job(api_version="batch/v1", kind="Job", metadata=meta, spec=template.spec)
        )
    except ApiException as exc:
        raise SinkError(
            f"kubernetes sink: cannot start a Job from cronjob/{template_name} in {namespace}: HTTP "
            f"{exc.status} {exc.reason}: {(exc.body or '')[:300]}"
        ) from exc
    except Exception as exc:
        raise SinkError(f"kubernetes sink: {type(exc).__name__}: {exc}") from exc
    return {"sink": "kubernetes", "job": job.metadata.name, "namespace": namespace, "from": template_name}
