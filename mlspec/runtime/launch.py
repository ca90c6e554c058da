"""How the train step starts its workers, as `training.distribution` decided.

- standalone (one node, several processes): the IR's command, torchrun --standalone, on this machine.
- job / trainjob (workers span nodes), in a pod of a cluster: the job the kubernetes target declares. The
  step reads the template from its ConfigMap (`distribution.template`), fills in this run (the IR, the shared
  run folder, the step's --data/--hparam overrides), creates it, waits for it, and returns rank 0's result.
- job / trainjob anywhere else (`mlspec run`, kfp.local, Airflow's local mode): the same world of processes
  on this machine (torchrun --standalone), so a local run trains the model the cluster would.

`MLSPEC_LAUNCH=local|kubernetes` overrides the choice, which otherwise is "in a pod" (KUBERNETES_SERVICE_HOST).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from typing import Any

from mlspec import contracts
from mlspec.ir.model import Distribution
from mlspec.runtime import StepError
from mlspec.runtime.context import StepContext, is_remote

LAUNCH_ENV = "MLSPEC_LAUNCH"
POLL_SECONDS = 10.0
NAME_LABEL = (
    "app.kubernetes.io/name"  # Kubernetes' recommended label; the template's pods carry the job's name
)
# The step's own arguments that the workers get too; the rest (--ir, --run-dir, outputs) are the launcher's.
FORWARDED = ("--data", "--hparam")


def train(ctx: StepContext, d: Distribution) -> dict[str, Any]:
    ctx.run.remove(*ctx.run.result_parts("train"))  # an earlier attempt's result is not this run's rank 0's
    if d.nodes > 1 and on_cluster():
        return on_kubernetes(ctx, d)
    return on_this_machine(ctx, d)


def on_cluster() -> bool:
    mode = os.environ.get(LAUNCH_ENV)
    if mode in ("local", "kubernetes"):
        return mode == "kubernetes"
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def local_command(d: Distribution) -> list[str]:
    """torchrun for this machine: the IR's command on one node, else every process of the job here."""
    if d.nodes == 1:
        argv = list(d.command)
    else:
        argv = [
            "python",
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nnodes=1",
            f"--nproc-per-node={d.world_size}",
            f"--max-restarts={d.max_restarts}",
            *d.command[d.command.index("-m", 3) :],  # -m mlspec.runtime train
        ]
    argv[0] = sys.executable
    return argv


def worker_args(argv: list[str]) -> list[str]:
    """The step's --data/--hparam overrides from its own argv (STEP_ID first), for the workers."""
    out, rest = [], list(argv[1:])
    while rest:
        arg = rest.pop(0)
        flag, eq, value = arg.partition("=")
        if flag in FORWARDED:
            out += [flag, value if eq else (rest.pop(0) if rest else "")]
    return out


def _rank_zero_result(ctx: StepContext, d: Distribution, cause: str | None) -> dict[str, Any]:
    result = ctx.run.result("train")
    if cause is not None or result is None or result.get("status") != "succeeded":
        why = (result or {}).get("error") or cause or "rank 0 wrote no result"
        raise StepError(
            f"distributed training ({d.nodes} node(s) x {d.processes_per_node} process(es)) failed: {why}"
        )
    return {k: v for k, v in result.items() if k not in ("status", "step", "duration_seconds")}


def on_this_machine(ctx: StepContext, d: Distribution) -> dict[str, Any]:
    argv = [*local_command(d), *ctx.argv[1:]]
    env = {**os.environ, **d.env}
    if d.nodes > 1:
        print(
            f"training spans {d.nodes} nodes on a cluster; here its {d.world_size} processes run on this machine",
            file=sys.stderr,
            flush=True,
        )
    code = subprocess.run(argv, env=env, check=False).returncode
    return _rank_zero_result(ctx, d, None if code == 0 else f"torchrun exited with {code}")


# ------------------------------------------------------------------------------------------------ on a cluster


def fill(
    objects: list[dict[str, Any]], *, ir_json: str, run_dir: str, args: list[str]
) -> list[dict[str, Any]]:
    """The template's objects for this run: the IR and run folder in the workers' environment, and the
    step's overrides after the arguments that name the run folder. `$(` is escaped for the kubelet."""
    out = copy.deepcopy(objects)
    values = {contracts.IR_ENV: ir_json, contracts.RUN_DIR_ENV: run_dir}
    extra = [a.replace("$(", "$$(") for a in args]
    stack: list[Any] = [out]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for entry in node.get("env") or []:
                if isinstance(entry, dict) and entry.get("name") in values:
                    entry["value"] = values[entry["name"]].replace("$(", "$$(")
            if isinstance(node.get("args"), list) and f"$({contracts.RUN_DIR_ENV})" in node["args"]:
                node["args"] = [*node["args"], *extra]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return out


def outcome(obj: dict[str, Any]) -> tuple[bool, str] | None:
    """(succeeded, why) once a Job or TrainJob has finished, else None."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") in ("Complete", "Succeeded"):
            return True, cond.get("message") or "complete"
        if cond.get("type") == "Failed":
            return False, cond.get("message") or cond.get("reason") or "failed"
    return None


def on_kubernetes(ctx: StepContext, d: Distribution) -> dict[str, Any]:
    import yaml
    from kubernetes import config, dynamic
    from kubernetes.client import ApiClient, CoreV1Api

    if not is_remote(ctx.run.root):
        raise StepError(
            f"training spans {d.nodes} nodes: the run folder must be shared storage (s3://...), not "
            f"{ctx.run.root}"
        )
    if d.template is None:
        raise StepError("the IR names no job template for training.distribution")
    config.load_incluster_config()
    api = ApiClient()
    namespace = ctx.ir.system.namespace
    try:
        cm = CoreV1Api(api).read_namespaced_config_map(d.template, namespace)
    except Exception as exc:
        raise StepError(
            f"cannot read the training job template ConfigMap {namespace}/{d.template} (the kubernetes target "
            f"declares it): {exc}"
        ) from exc
    objects = [o for o in yaml.safe_load_all(cm.data[contracts.TRAIN_JOB_TEMPLATE_KEY]) if o]
    ir_json = json.dumps(ctx.ir.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    objects = fill(objects, ir_json=ir_json, run_dir=ctx.run.root, args=worker_args(ctx.argv))
    client = dynamic.DynamicClient(api)
    job = next(o for o in objects if o["kind"] in ("Job", "TrainJob"))
    name = job["metadata"]["name"]
    jobs = client.resources.get(api_version=job["apiVersion"], kind=job["kind"])
    _clear_previous(jobs, name, namespace)
    created = jobs.create(body=job, namespace=namespace)
    owner = {"apiVersion": job["apiVersion"], "kind": job["kind"], "name": name, "uid": created.metadata.uid}
    for obj in objects:
        if obj is not job:  # the headless Service lives and goes with its job
            obj["metadata"]["ownerReferences"] = [owner]
            kind = client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            _clear_previous(kind, obj["metadata"]["name"], namespace)
            kind.create(body=obj, namespace=namespace)
    print(
        f"launched {job['kind']} {namespace}/{name}: {d.nodes} node(s) x {d.processes_per_node}", flush=True
    )
    while (done := outcome(jobs.get(name=name, namespace=namespace).to_dict())) is None:
        time.sleep(POLL_SECONDS)
    succeeded, why = done
    if not succeeded:
        why += _log_tail(api, namespace, name)
    return _rank_zero_result(ctx, d, None if succeeded else f"{job['kind']} {name}: {why}")


def _clear_previous(kind, name: str, namespace: str) -> None:
    """Delete a finished object of the same name (one training job per system at a time)."""
    from kubernetes.dynamic.exceptions import NotFoundError

    try:
        previous = kind.get(name=name, namespace=namespace).to_dict()
    except NotFoundError:
        return
    if kind.kind in ("Job", "TrainJob") and outcome(previous) is None:
        raise StepError(f"{kind.kind} {namespace}/{name} is still running: one training run at a time")
    kind.delete(name=name, namespace=namespace, body={"propagationPolicy": "Foreground"})
    for _ in range(60):
        try:
            kind.get(name=name, namespace=namespace)
        except NotFoundError:
            return
        time.sleep(2)
    raise StepError(f"{kind.kind} {namespace}/{name} from an earlier run is not gone after 2 minutes")


def _log_tail(api, namespace: str, name: str, lines: int = 20) -> str:
    from kubernetes.client import CoreV1Api

    core = CoreV1Api(api)
    try:
        pods = core.list_namespaced_pod(namespace, label_selector=f"{NAME_LABEL}={name}").items
        failed = [p for p in pods if p.status.phase == "Failed"] or pods
        if not failed:
            return ""
        log = core.read_namespaced_pod_log(failed[0].metadata.name, namespace, tail_lines=lines)
    except Exception:  # the log is a courtesy: the job's own condition already says why
        return ""
    return f"\n---- last lines of pod {failed[0].metadata.name} ----\n{log}"
