"""Training that spans nodes: the job template the train step launches, and what launching it needs.

For `training.distribution.launcher` job or trainjob the IR's train step (on Kubeflow or Airflow) launches the
workers on the cluster and waits for them (mlspec.runtime.launch). It reads the template from a ConfigMap
(`distribution.template`), fills in the run (mlspec.contracts.IR_ENV, RUN_DIR_ENV and the step's overrides),
and creates the objects. Emitted here, once per system:

  ConfigMap <template>      the job template (key contracts.TRAIN_JOB_TEMPLATE_KEY):
                            job: a headless Service + an Indexed Job (torchrun c10d rendezvous on pod 0)
                            trainjob: a Kubeflow Trainer TrainJob on the torch-distributed runtime
  Role/RoleBinding          the training ServiceAccount may read the template, create and watch the job
  NetworkPolicy             workers talk to each other (rendezvous and collectives), and to S3 and the registry

The template is not a kustomization resource itself: applying it would start a training run.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k

from mlspec import contracts
from mlspec.ir.model import IR, Distribution, Step
from mlspec_kubernetes import pod
from mlspec_kubernetes.meta import dict_metadata, labels, metadata, selector

TRAINER_API = "trainer.kubeflow.org/v1alpha1"
TRAINJOB_RUNTIME = "torch-distributed"  # the ClusterTrainingRuntime Kubeflow Trainer installs
TRAINJOB_NODE = "node"  # its replicated job and container
COMPONENT = "train-worker"
FINISHED_TTL_SECONDS = 86400
SHM_LIMIT = "8Gi"  # NCCL moves data between local GPUs through /dev/shm


def distribution_of(ir: IR) -> Distribution | None:
    d = ir.training.distribution
    return d if d is not None and d.launcher in ("job", "trainjob") else None


def job_name(ir: IR) -> str:
    return f"{ir.system.name}-train"


def objects(ir: IR) -> list[Any]:
    """The ConfigMap with the template, the launcher's RBAC and the workers' NetworkPolicy (or nothing)."""
    d = distribution_of(ir)
    if d is None:
        return []
    assert d.template is not None  # lowering names it for job and trainjob
    from mlspec_kubernetes.render import dump, to_dict

    api = k.ApiClient()
    text = "---\n".join(dump(to_dict(obj, api)) for obj in template(ir))
    config = k.V1ConfigMap(
        api_version="v1",
        kind="ConfigMap",
        metadata=metadata(ir, d.template, "train-launcher"),
        data={contracts.TRAIN_JOB_TEMPLATE_KEY: text},
    )
    return [config, *rbac(ir, d), network_policy(ir)]


def template(ir: IR) -> list[Any]:
    d = distribution_of(ir)
    assert d is not None
    if d.launcher == "trainjob":
        return [train_job(ir, d)]
    return [headless_service(ir, d), indexed_job(ir, d)]


def _train_step(ir: IR) -> Step:
    pipeline = ir.pipeline("training")
    assert pipeline is not None
    return next(s for s in pipeline.steps if s.action == "train")


def _env(values: dict[str, str]) -> list[k.V1EnvVar]:
    return [k.V1EnvVar(name=key, value=value) for key, value in values.items()]


def _worker_env(ir: IR, d: Distribution, rendezvous: dict[str, str]) -> list[k.V1EnvVar]:
    """HOME, the collective settings, the rendezvous, and the two values the launcher fills in per run."""
    return _env(
        {
            "HOME": "/tmp",
            **d.env,
            **rendezvous,
            contracts.IR_ENV: "",
            contracts.RUN_DIR_ENV: "",
        }
    )


def _args() -> list[str]:
    # The kubelet expands $(VAR) from the container's environment; the launcher fills both in.
    return ["--ir", f"$({contracts.IR_ENV})", "--run-dir", f"$({contracts.RUN_DIR_ENV})"]


def _volumes(d: Distribution) -> tuple[list[k.V1Volume], list[k.V1VolumeMount]]:
    tmp, tmp_mount = pod.tmp_volume()
    volumes, mounts = [tmp], [tmp_mount]
    if d.placement.gpu is not None and d.processes_per_node > 1:
        volumes.append(
            k.V1Volume(name="dshm", empty_dir=k.V1EmptyDirVolumeSource(medium="Memory", size_limit=SHM_LIMIT))
        )
        mounts.append(k.V1VolumeMount(name="dshm", mount_path="/dev/shm"))
    return volumes, mounts


def headless_service(ir: IR, d: Distribution) -> k.V1Service:
    """Gives pod i the name <job>-<i>.<job>: node 0 hosts the rendezvous; ready or not, it must resolve."""
    name = job_name(ir)
    spec = k.V1ServiceSpec(
        cluster_ip="None",
        publish_not_ready_addresses=True,
        selector=selector(ir, name),
        ports=[k.V1ServicePort(name="rendezvous", port=d.rendezvous_port, protocol="TCP")],
    )
    return k.V1Service(api_version="v1", kind="Service", metadata=metadata(ir, name, COMPONENT), spec=spec)


def indexed_job(ir: IR, d: Distribution) -> k.V1Job:
    """One pod per node; torchrun's c10d rendezvous on pod 0, restarts of the whole group on failure."""
    name = job_name(ir)
    step = _train_step(ir)
    volumes, mounts = _volumes(d)
    rendezvous = {
        "PET_RDZV_BACKEND": "c10d",
        "PET_RDZV_ENDPOINT": f"{name}-0.{name}:{d.rendezvous_port}",
        "PET_RDZV_ID": name,
    }
    container = k.V1Container(
        name="trainer",
        image=step.image,
        image_pull_policy="Always",
        command=list(d.command),
        args=_args(),
        env=_worker_env(ir, d, rendezvous),
        ports=[k.V1ContainerPort(name="rendezvous", container_port=d.rendezvous_port, protocol="TCP")],
        resources=pod.resources(d.placement),
        security_context=pod.container_security_context(),
        volume_mounts=mounts,
    )
    spec = k.V1PodSpec(
        subdomain=name,
        service_account_name=ir.service_account(step.service_account).name,
        automount_service_account_token=False,
        enable_service_links=False,
        restart_policy="Never",
        security_context=pod.pod_security_context(),
        containers=[container],
        volumes=volumes,
        **pod.scheduling(d.placement),
    )
    job = k.V1JobSpec(
        completion_mode="Indexed",
        completions=d.nodes,
        parallelism=d.nodes,
        # torchrun restarts the group after a process fails; a lost pod is recreated and rejoins.
        backoff_limit=d.max_restarts,
        active_deadline_seconds=step.timeout_seconds,
        ttl_seconds_after_finished=FINISHED_TTL_SECONDS,
        template=k.V1PodTemplateSpec(metadata=k.V1ObjectMeta(labels=_pod_labels(ir, name)), spec=spec),
    )
    return k.V1Job(api_version="batch/v1", kind="Job", metadata=metadata(ir, name, COMPONENT), spec=job)


def _pod_labels(ir: IR, name: str) -> dict[str, str]:
    return labels(
        ir, name, COMPONENT, **{contracts.SYSTEM_LABEL: ir.system.name, contracts.STEP_LABEL: "train"}
    )


def train_job(ir: IR, d: Distribution) -> dict[str, Any]:
    """A TrainJob on Trainer's torch runtime, which injects torchrun's PET_* rendezvous variables itself."""
    api = k.ApiClient()
    name = job_name(ir)
    step = _train_step(ir)
    volumes, mounts = _volumes(d)
    resources = api.sanitize_for_serialization(pod.resources(d.placement))
    env = api.sanitize_for_serialization(_worker_env(ir, d, {}))
    pod_spec: dict[str, Any] = {
        "serviceAccountName": ir.service_account(step.service_account).name,
        "securityContext": api.sanitize_for_serialization(pod.pod_security_context()),
        "containers": [
            {
                "name": TRAINJOB_NODE,
                "securityContext": api.sanitize_for_serialization(pod.container_security_context()),
                "volumeMounts": api.sanitize_for_serialization(mounts),
            }
        ],
        "volumes": api.sanitize_for_serialization(volumes),
    }
    scheduling = pod.scheduling(d.placement)
    if scheduling["node_selector"]:
        pod_spec["nodeSelector"] = scheduling["node_selector"]
    if scheduling["tolerations"]:
        pod_spec["tolerations"] = api.sanitize_for_serialization(scheduling["tolerations"])
    node_labels = {"labels": _pod_labels(ir, name)}
    patch = {
        "manager": contracts.MANAGED_BY,
        "trainingRuntimeSpec": {
            "template": {
                "spec": {
                    "replicatedJobs": [
                        {
                            "name": TRAINJOB_NODE,
                            "template": {
                                "metadata": node_labels,
                                "spec": {"template": {"metadata": node_labels, "spec": pod_spec}},
                            },
                        }
                    ]
                }
            }
        },
    }
    spec: dict[str, Any] = {
        "runtimeRef": {
            "name": TRAINJOB_RUNTIME,
            "kind": "ClusterTrainingRuntime",
            "apiGroup": "trainer.kubeflow.org",
        },
        "trainer": {
            "image": step.image,
            "command": list(d.command),
            "args": _args(),
            "env": env,
            "numNodes": d.nodes,
            "numProcPerNode": d.processes_per_node,
            "resourcesPerNode": resources,
        },
        "runtimePatches": [patch],
    }
    if step.timeout_seconds:
        spec["activeDeadlineSeconds"] = step.timeout_seconds
    return {
        "apiVersion": TRAINER_API,
        "kind": "TrainJob",
        "metadata": dict_metadata(ir, name, COMPONENT),
        "spec": spec,
    }


def rbac(ir: IR, d: Distribution) -> list[Any]:
    """The training ServiceAccount (the train step's pod) reads the template and runs the job it describes."""
    name = f"{ir.system.name}-train-launcher"
    rules = [
        k.V1PolicyRule(
            api_groups=[""], resources=["configmaps"], resource_names=[d.template or ""], verbs=["get"]
        ),
        k.V1PolicyRule(api_groups=[""], resources=["pods", "pods/log"], verbs=["get", "list"]),
    ]
    if d.launcher == "trainjob":
        rules.append(
            k.V1PolicyRule(
                api_groups=["trainer.kubeflow.org"],
                resources=["trainjobs"],
                verbs=["create", "get", "delete"],
            )
        )
    else:
        rules += [
            k.V1PolicyRule(api_groups=["batch"], resources=["jobs"], verbs=["create", "get", "delete"]),
            k.V1PolicyRule(api_groups=[""], resources=["services"], verbs=["create", "get", "delete"]),
        ]
    role = k.V1Role(
        api_version="rbac.authorization.k8s.io/v1",
        kind="Role",
        metadata=metadata(ir, name, "train-launcher"),
        rules=rules,
    )
    account = ir.service_account(_train_step(ir).service_account)
    binding = k.V1RoleBinding(
        api_version="rbac.authorization.k8s.io/v1",
        kind="RoleBinding",
        metadata=metadata(ir, name, "train-launcher"),
        role_ref=k.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=name),
        subjects=[k.RbacV1Subject(kind="ServiceAccount", name=account.name, namespace=account.namespace)],
    )
    return [role, binding]


def network_policy(ir: IR) -> k.V1NetworkPolicy:
    from mlspec_kubernetes.network import peers_policy

    return peers_policy(ir, f"{job_name(ir)}-workers", selector(ir, job_name(ir)))
