"""Two-host training on this machine, from the generated Indexed Job: two network namespaces joined by a veth
pair stand in for two nodes, and each runs the exact command, arguments and environment the Job gives its pod
(filled in by the train step's launcher, $(VAR) expanded as the kubelet does, the pod's hostname and the
headless Service's DNS names in place). torchrun's c10d rendezvous and DDP on gloo run over the veth link;
the model equals a single process's with the same seed and global batch.

Needs root (network namespaces); it creates and deletes its own namespaces, binds only to their veth
addresses, and stops every process it starts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from k8s_testlib import churn_text, emit, ir_for

from mlspec import contracts
from mlspec.runtime import launch
from mlspec.runtime.__main__ import main

pytestmark = pytest.mark.engine  # root and iproute2: network namespaces
TIMEOUT = 420


def cpu_workers_ir(workers: int):
    """churn on CPU workers (gloo), without tuning, two epochs: two workers span two pods."""
    text = churn_text().replace(
        "  resources: {cpu: 8, memory: 32Gi, gpu: {type: nvidia-a10g, count: 1}}\n",
        f"  resources: {{cpu: 2, memory: 4Gi}}\n  distributed: {{workers: {workers}}}\n",
    )
    ir = ir_for(text)
    hp = {"epochs": 2, "lr": 0.01, "batch_size": 256}
    return ir.model_copy(
        update={"training": ir.training.model_copy(update={"tuning": None, "hyperparameters": hp})}
    )


def kubelet_expand(value: str, env: dict[str, str]) -> str:
    """$(VAR) from the container's environment, $$ as a literal $: what the kubelet does to command and args."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
        lambda m: env.get(m.group(1), m.group(0)) if m.group(1) else "$",
        value,
    )


class Hosts:
    """Two network namespaces joined by a veth pair (eth0 in each), named after this test run."""

    def __init__(self, tag: str, subnet: str) -> None:
        self.names = [f"mlspec-{tag}-{i}" for i in (0, 1)]
        self.addresses = [f"{subnet}.1", f"{subnet}.2"]

    def __enter__(self) -> Hosts:
        a, b = self.names
        self._ip("netns", "add", a)
        self._ip("netns", "add", b)
        self._ip("link", "add", f"{a[-10:]}v", "type", "veth", "peer", "name", f"{b[-10:]}v")
        for ns, link, address in zip(self.names, (f"{a[-10:]}v", f"{b[-10:]}v"), self.addresses, strict=True):
            self._ip("link", "set", link, "netns", ns)
            self._ip("-n", ns, "link", "set", link, "name", "eth0")
            self._ip("-n", ns, "addr", "add", f"{address}/30", "dev", "eth0")
            self._ip("-n", ns, "link", "set", "eth0", "up")
            self._ip("-n", ns, "link", "set", "lo", "up")
        return self

    def __exit__(self, *exc) -> None:
        for ns in self.names:
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)

    @staticmethod
    def _ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def pod_processes(job: dict, service: dict, hosts: Hosts, folder: Path, extra_env: dict[str, str]):
    """Start pod i of the Indexed Job in namespace i; returns the processes and their logs."""
    name, subdomain = job["metadata"]["name"], job["spec"]["template"]["spec"]["subdomain"]
    assert subdomain == service["metadata"]["name"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    dns = "".join(
        f"{address} {name}-{i}.{subdomain} {name}-{i}\n" for i, address in enumerate(hosts.addresses)
    )
    procs = []
    for index, ns in enumerate(hosts.names):
        env = {e["name"]: e["value"] for e in container["env"]}
        env["JOB_COMPLETION_INDEX"] = str(index)  # the Job controller's, for an Indexed Job
        env = {k: kubelet_expand(v, env) for k, v in env.items()}
        argv = [kubelet_expand(a, env) for a in [*container["command"], *container["args"]]]
        hosts_file = folder / f"hosts-{index}"
        hosts_file.write_text(f"127.0.0.1 localhost\n{dns}")
        # the pod's own hostname and the cluster DNS names, in a mount and UTS namespace of this "node" only
        wrapper = f'mount --bind {hosts_file} /etc/hosts && hostname {name}-{index} && exec "$@"'
        log = (folder / f"pod-{index}.log").open("w")
        procs.append(
            (
                subprocess.Popen(
                    [
                        "ip",
                        "netns",
                        "exec",
                        ns,
                        "unshare",
                        "--uts",
                        "--mount",
                        "sh",
                        "-c",
                        wrapper,
                        "pod",
                        *argv,
                    ],
                    env={**env, **extra_env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                ),
                folder / f"pod-{index}.log",
            )
        )
    return procs


def test_two_hosts_train_the_model_one_process_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = Path(__file__).resolve().parents[3]
    monkeypatch.chdir(root)
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    ir = cpu_workers_ir(2)
    d = ir.training.distribution
    assert (d.launcher, d.nodes, d.processes_per_node, d.backend) == ("job", 2, 1, "gloo")

    # The run's data, once: both "nodes" share the run folder (an S3 prefix on a cluster).
    spread_run = tmp_path / "spread"
    ir_file = tmp_path / "ir.json"
    ir_file.write_text(ir.to_json())
    assert main(["validate-data", "--ir", str(ir_file), "--run-dir", str(spread_run)]) == 0

    # The objects the train step's launcher would create for this run.
    artifacts, _ = emit(ir, allow_unsupported=False)
    config = next(yaml.safe_load(a.data()) for a in artifacts if a.path == f"configmap-{d.template}.yaml")
    template = [o for o in yaml.safe_load_all(config["data"][contracts.TRAIN_JOB_TEMPLATE_KEY]) if o]
    ir_json = json.dumps(ir.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    service, job = launch.fill(template, ir_json=ir_json, run_dir=str(spread_run), args=[])

    host_env = {
        "PATH": os.environ["PATH"],  # the image: this machine's interpreter and mlspec
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "MLFLOW_TRACKING_URI": tracking,
        "MLSPEC_NOW": os.environ["MLSPEC_NOW"],
    }
    tag, subnet = f"t{os.getpid() % 100000}", f"10.213.{os.getpid() % 250}"
    with Hosts(tag, subnet) as hosts:
        procs = pod_processes(job, service, hosts, tmp_path, host_env)
        try:
            codes = [proc.wait(timeout=TIMEOUT) for proc, _ in procs]
        finally:
            for proc, _ in procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
    logs = "\n".join(f"---- {log.name}\n{log.read_text()[-3000:]}" for _, log in procs)
    assert codes == [0, 0], logs
    spread = json.loads((spread_run / "steps" / "train" / "result.json").read_text())
    assert spread["status"] == "succeeded" and spread["workers"] == 2, logs

    # One process, the same seed, split and global batch.
    single_ir = cpu_workers_ir(1)
    single_run = tmp_path / "single"
    shutil.copytree(spread_run / "data", single_run / "data")
    shutil.copytree(spread_run / "steps" / "validate-data", single_run / "steps" / "validate-data")
    single_file = tmp_path / "single.json"
    single_file.write_text(single_ir.to_json())
    assert main(["train", "--ir", str(single_file), "--run-dir", str(single_run)]) == 0
    one = torch.load(single_run / "model" / "model.pt", weights_only=False).state_dict()
    two = torch.load(spread_run / "model" / "model.pt", weights_only=False).state_dict()
    assert one.keys() == two.keys()
    assert max(float((one[k].float() - two[k].float()).abs().max()) for k in one) < 1e-5
