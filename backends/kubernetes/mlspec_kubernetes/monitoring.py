"""The loop's CronJobs: the monitor (when Kubernetes owns the loop), the rollout analysis, the retraining template.

<system>-monitor    `mlspec monitor` on the monitoring schedule; only when the IR names Kubernetes the loop's
                    owner (another owner's monitor would race it on the trigger state)
<system>-rollout    `mlspec analyze --apply` on the analysis schedule, for shadow, canary and a-b: promotes the
                    challenger when the analysis passes, rejects it when it fails
<system>-retrain    the retraining Job template (`mlspec run` on the compiled IR): suspended, the kubernetes
                    sink starts Jobs from it; scheduled on the training cron when Kubernetes owns the loop
"""

from __future__ import annotations

from kubernetes import client as k

from mlspec import contracts
from mlspec.ir.model import IR, Placement, Step
from mlspec.ir.platform import PUSHGATEWAY_URL
from mlspec_kubernetes import pod
from mlspec_kubernetes.meta import IR_FILE, labels, metadata
from mlspec_kubernetes.workloads import config_volume

NEVER = "0 0 1 1 *"  # the schedule field of a suspended template (a suspended CronJob never runs it)
SA_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"  # where in-cluster clients look
API_ACCESS = "kube-api-access"
TOKEN_SECONDS = 3600


def api_access_volume() -> k.V1Volume:
    """A short-lived API token, the cluster CA and the namespace, for the one container that calls the API.

    What `automountServiceAccountToken` would mount into every container of the pod, mounted explicitly into
    this one (the kubelet rotates the token before it expires)."""
    return k.V1Volume(
        name=API_ACCESS,
        projected=k.V1ProjectedVolumeSource(
            default_mode=0o444,
            sources=[
                k.V1VolumeProjection(
                    service_account_token=k.V1ServiceAccountTokenProjection(
                        path="token", expiration_seconds=TOKEN_SECONDS
                    )
                ),
                k.V1VolumeProjection(
                    config_map=k.V1ConfigMapProjection(
                        name="kube-root-ca.crt", items=[k.V1KeyToPath(key="ca.crt", path="ca.crt")]
                    )
                ),
                k.V1VolumeProjection(
                    downward_api=k.V1DownwardAPIProjection(
                        items=[
                            k.V1DownwardAPIVolumeFile(
                                path="namespace",
                                field_ref=k.V1ObjectFieldSelector(field_path="metadata.namespace"),
                            )
                        ]
                    )
                ),
            ],
        ),
    )


def monitor_run_dir(ir: IR) -> str:
    """Reports and the trigger cooldown state must outlive the Job's pod: keep them with the artifacts."""
    root = ir.artifacts_root.rstrip("/")
    return f"{root}/monitoring" if "://" in root else "/tmp/mlspec-monitor"


def name(ir: IR) -> str:
    return f"{ir.system.name}-monitor"


def rollout_name(ir: IR) -> str:
    return f"{ir.system.name}-rollout"


def owns_monitor(ir: IR) -> bool:
    return ir.monitoring is not None and ir.monitoring.owner == "kubernetes"


def runs_analysis(ir: IR) -> bool:
    a = ir.serving.rollout.analysis if ir.serving else None
    return a is not None and a.promotion == "after-analysis"


def starts_retraining(ir: IR) -> bool:
    return ir.retraining is not None and ir.retraining.sink == "kubernetes"


def _step(ir: IR, pipeline_id: str, action: str) -> Step:
    pipeline = ir.pipeline(pipeline_id)
    assert pipeline is not None, f"IR has no {pipeline_id} pipeline"
    return next(s for s in pipeline.steps if s.action == action)


def _cron_job(
    ir: IR,
    job_name: str,
    component: str,
    schedule: str,
    container: k.V1Container,
    placement: Placement,
    account: str,
    *,
    retries: int,
    deadline: int | None,
    config_name: str,
    suspend: bool = False,
    api_token: bool = False,
) -> k.V1CronJob:
    tmp, tmp_mount = pod.tmp_volume()
    cfg, cfg_mount = config_volume(config_name)
    volumes, mounts = [cfg, tmp], [cfg_mount, tmp_mount]
    if api_token:
        volumes.append(api_access_volume())
        mounts.append(k.V1VolumeMount(name=API_ACCESS, mount_path=SA_TOKEN_PATH, read_only=True))
    container.image_pull_policy = "Always"
    container.security_context = pod.container_security_context()
    container.resources = pod.resources(placement)
    container.volume_mounts = mounts
    container.env = [k.V1EnvVar(name="HOME", value="/tmp"), *(container.env or [])]
    spec = k.V1PodSpec(
        service_account_name=ir.service_account(account).name,
        automount_service_account_token=False,
        enable_service_links=False,
        restart_policy="Never",
        security_context=pod.pod_security_context(),
        containers=[container],
        volumes=volumes,
        **pod.scheduling(placement),
    )
    job = k.V1JobSpec(
        backoff_limit=retries,
        active_deadline_seconds=deadline,
        ttl_seconds_after_finished=86400,
        template=k.V1PodTemplateSpec(
            metadata=k.V1ObjectMeta(labels=labels(ir, job_name, component)), spec=spec
        ),
    )
    cron = k.V1CronJobSpec(
        schedule=schedule,
        time_zone="Etc/UTC",
        concurrency_policy="Forbid",
        starting_deadline_seconds=300,
        successful_jobs_history_limit=3,
        failed_jobs_history_limit=3,
        suspend=True if suspend else None,
        job_template=k.V1JobTemplateSpec(
            metadata=k.V1ObjectMeta(labels=labels(ir, job_name, component)), spec=job
        ),
    )
    return k.V1CronJob(
        api_version="batch/v1", kind="CronJob", metadata=metadata(ir, job_name, component), spec=cron
    )


def cron_job(ir: IR, config_name: str) -> k.V1CronJob:
    """`mlspec monitor` on the IR's schedule (drift, performance, the retraining triggers)."""
    mon = ir.monitoring
    assert mon is not None
    step = _step(ir, "monitoring", "monitor")
    env = []
    if ir.component("pushgateway") is not None:  # the dashboard reads the run's gauges from there
        env.append(k.V1EnvVar(name=contracts.PUSHGATEWAY_URL_ENV, value=PUSHGATEWAY_URL))
    container = k.V1Container(
        name="monitor",
        image=step.image,
        command=["mlspec"],
        args=["monitor", IR_FILE, "--run-dir", monitor_run_dir(ir)],
        env=env or None,
    )
    return _cron_job(
        ir,
        name(ir),
        "monitor",
        mon.schedule,
        container,
        step.placement,
        step.service_account,
        retries=step.retries,
        deadline=step.timeout_seconds,
        config_name=config_name,
        api_token=starts_retraining(ir),
    )


def rollout_cron_job(ir: IR, config_name: str, prometheus: str) -> k.V1CronJob:
    """`mlspec analyze --apply` on the analysis schedule: the promotion or rejection of a challenger."""
    a = ir.serving.rollout.analysis if ir.serving else None
    assert a is not None and a.schedule is not None
    step = _step(ir, "monitoring", "monitor") if ir.pipeline("monitoring") else None
    placement = (
        step.placement
        if step
        else Placement(cpu="1", memory="2Gi", gpu=None, node_pool=None, node_selector={}, tolerations=[])
    )
    container = k.V1Container(
        name="analyze",
        image=ir.images["runtime"],
        command=["mlspec"],
        args=["analyze", IR_FILE, "--apply", "--by", rollout_name(ir)],
        env=[k.V1EnvVar(name="MLSPEC_PROMETHEUS_URL", value=prometheus)],
    )
    return _cron_job(
        ir,
        rollout_name(ir),
        "rollout",
        a.schedule,
        container,
        placement,
        "monitoring",
        retries=1,
        deadline=1800,
        config_name=config_name,
    )


def retrain_template(ir: IR, config_name: str) -> k.V1CronJob:
    """The retraining Job: the whole training pipeline (`mlspec run`) in one pod with the train step's place.

    Suspended unless Kubernetes owns the loop and a schedule trigger gives the training cron: then it is the
    orchestrator of that cron. The kubernetes sink starts Jobs from its template either way.
    """
    assert ir.retraining is not None
    train = _step(ir, "training", "train")
    training = ir.pipeline("training")
    assert training is not None
    cron = training.schedule if ir.retraining.owner == "kubernetes" else None
    container = k.V1Container(
        name="train",
        image=train.image,
        command=["mlspec"],
        args=["run", IR_FILE],
        working_dir="/tmp",  # .mlspec/runs on the scratch volume; the model goes to the registry
    )
    deadline = sum(s.timeout_seconds or 0 for s in training.steps) or None
    return _cron_job(
        ir,
        contracts.retrain_job_template(ir.system.name),
        "retrain",
        cron or NEVER,
        container,
        train.placement,
        "training",
        retries=train.retries,
        deadline=deadline,
        config_name=config_name,
        suspend=cron is None,
    )


def rbac(ir: IR) -> list[dict]:
    """The monitor may read the retrain template and create Jobs from it, in its namespace, nothing else."""
    role = f"{ir.system.name}-retrain"
    account = ir.service_account("monitoring")
    meta = {"name": role, "namespace": ir.system.namespace, "labels": labels(ir, role, "rbac")}
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [
                {
                    "apiGroups": ["batch"],
                    "resources": ["cronjobs"],
                    "resourceNames": [contracts.retrain_job_template(ir.system.name)],
                    "verbs": ["get"],
                },
                {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": account.name, "namespace": account.namespace}],
        },
    ]
