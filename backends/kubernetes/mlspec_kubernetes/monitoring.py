"""The monitoring CronJob: `mlspec monitor` on the IR's schedule (drift, performance, retrain triggers)."""

from __future__ import annotations

from kubernetes import client as k

from mlspec import contracts
from mlspec.ir.model import IR
from mlspec.ir.platform import PUSHGATEWAY_URL
from mlspec_kubernetes import pod
from mlspec_kubernetes.meta import IR_FILE, labels, metadata
from mlspec_kubernetes.workloads import config_volume


def monitor_run_dir(ir: IR) -> str:
    """Reports and the trigger cooldown state must outlive the Job's pod: keep them with the artifacts."""
    root = ir.artifacts_root.rstrip("/")
    return f"{root}/monitoring" if "://" in root else "/tmp/mlspec-monitor"


def name(ir: IR) -> str:
    return f"{ir.system.name}-monitor"


def cron_job(ir: IR, config_name: str) -> k.V1CronJob:
    mon = ir.monitoring
    assert mon is not None
    pipeline = ir.pipeline("monitoring")
    assert pipeline is not None  # lowering adds it whenever monitoring is set
    step = next(s for s in pipeline.steps if s.action == "monitor")
    sa = ir.service_account(step.service_account)
    job_name = name(ir)
    tmp, tmp_mount = pod.tmp_volume()
    cfg, cfg_mount = config_volume(config_name)
    env = [k.V1EnvVar(name="HOME", value="/tmp")]
    if ir.component("pushgateway") is not None:  # the dashboard reads the run's gauges from there
        env.append(k.V1EnvVar(name=contracts.PUSHGATEWAY_URL_ENV, value=PUSHGATEWAY_URL))
    container = k.V1Container(
        name="monitor",
        image=step.image,
        image_pull_policy="Always",
        command=["mlspec"],
        args=["monitor", IR_FILE, "--run-dir", monitor_run_dir(ir)],
        env=env,
        resources=pod.resources(step.placement),
        security_context=pod.container_security_context(),
        volume_mounts=[cfg_mount, tmp_mount],
    )
    spec = k.V1PodSpec(
        service_account_name=sa.name,
        automount_service_account_token=False,
        enable_service_links=False,
        restart_policy="Never",
        security_context=pod.pod_security_context(),
        containers=[container],
        volumes=[cfg, tmp],
        **pod.scheduling(step.placement),
    )
    job = k.V1JobSpec(
        backoff_limit=step.retries,
        active_deadline_seconds=step.timeout_seconds,
        ttl_seconds_after_finished=86400,
        template=k.V1PodTemplateSpec(
            metadata=k.V1ObjectMeta(labels=labels(ir, job_name, "monitor")), spec=spec
        ),
    )
    cron = k.V1CronJobSpec(
        schedule=mon.schedule,
        time_zone="Etc/UTC",
        concurrency_policy="Forbid",
        starting_deadline_seconds=300,
        successful_jobs_history_limit=3,
        failed_jobs_history_limit=3,
        job_template=k.V1JobTemplateSpec(
            metadata=k.V1ObjectMeta(labels=labels(ir, job_name, "monitor")), spec=job
        ),
    )
    return k.V1CronJob(
        api_version="batch/v1", kind="CronJob", metadata=metadata(ir, job_name, "monitor"), spec=cron
    )
