"""The train step's launcher: where it runs the workers, how it fills the job template in for a run, and how
it reads a finished Job or TrainJob. (No Kubernetes API server runs here: the cluster path is proved by the
template's schema tests and the two-host test, which run exactly what these functions produce.)"""

from __future__ import annotations

import sys

import pytest

from mlspec import contracts
from mlspec.ir.model import Distribution, Placement
from mlspec.runtime import StepError, launch
from mlspec.runtime.context import RunDir, StepContext


def distribution(nodes: int, per_node: int, launcher: str) -> Distribution:
    command = ["python", "-m", "torch.distributed.run"]
    command += ["--standalone"] if launcher == "standalone" else []
    command += [f"--nnodes={nodes}", f"--nproc-per-node={per_node}", "--max-restarts=3"]
    return Distribution(
        launcher=launcher,
        nodes=nodes,
        processes_per_node=per_node,
        world_size=nodes * per_node,
        backend="gloo",
        max_restarts=3,
        rendezvous_port=contracts.RENDEZVOUS_PORT,
        command=[*command, "-m", "mlspec.runtime", "train"],
        env={"MLSPEC_DDP": "1"},
        placement=Placement(
            cpu="1", memory="1Gi", gpu=None, node_pool=None, node_selector={}, tolerations=[]
        ),
        template="demo-train-job" if nodes > 1 else None,
    )


def test_a_job_that_spans_nodes_runs_its_whole_world_on_this_machine_outside_a_cluster() -> None:
    argv = launch.local_command(distribution(3, 2, "job"))
    assert argv[0] == sys.executable
    assert argv[1:] == [
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes=1",
        "--nproc-per-node=6",
        "--max-restarts=3",
        "-m",
        "mlspec.runtime",
        "train",
    ]
    one_node = distribution(1, 4, "standalone")
    assert launch.local_command(one_node)[1:] == one_node.command[1:]  # the IR's own command


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, True),
        ({}, False),
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "MLSPEC_LAUNCH": "local"}, False),
        ({"MLSPEC_LAUNCH": "kubernetes"}, True),
    ],
)
def test_on_a_cluster_means_in_a_pod_unless_told(monkeypatch, env, expected) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("MLSPEC_LAUNCH", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert launch.on_cluster() is expected


def test_the_workers_get_the_steps_overrides_and_nothing_of_its_outputs() -> None:
    argv = [
        "train",
        "--ir",
        "ir.json",
        "--run-dir",
        "s3://b/r",
        "--data",
        "train=s3://b/t.parquet",
        "--hparam=lr=0.01",
        "--output",
        "x=/tmp/x",
        "--result-file",
        "/airflow/xcom/return.json",
    ]
    assert launch.worker_args(argv) == ["--data", "train=s3://b/t.parquet", "--hparam", "lr=0.01"]


def test_fill_sets_the_run_into_env_and_args_and_escapes_the_kubelets_syntax() -> None:
    template = [
        {"kind": "Service", "metadata": {"name": "demo-train"}},
        {
            "kind": "Job",
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "args": ["--ir", "$(MLSPEC_IR)", "--run-dir", "$(MLSPEC_RUN_DIR)"],
                                "env": [
                                    {"name": "MLSPEC_IR", "value": ""},
                                    {"name": "MLSPEC_RUN_DIR", "value": ""},
                                    {"name": "OTHER", "value": "kept"},
                                ],
                            }
                        ]
                    }
                }
            },
        },
    ]
    filled = launch.fill(template, ir_json='{"a": "$(HOME)"}', run_dir="s3://b/r", args=["--data", "x=$(y)"])
    container = filled[1]["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [
        {"name": "MLSPEC_IR", "value": '{"a": "$$(HOME)"}'},
        {"name": "MLSPEC_RUN_DIR", "value": "s3://b/r"},
        {"name": "OTHER", "value": "kept"},
    ]
    assert container["args"][-2:] == ["--data", "x=$$(y)"]
    assert template[1]["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == ""  # a copy


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({}, None),
        ({"conditions": [{"type": "Complete", "status": "True"}]}, (True, "complete")),
        (
            {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]},
            (False, "BackoffLimitExceeded"),
        ),
        ({"conditions": [{"type": "Failed", "status": "False"}]}, None),
        (
            {"conditions": [{"type": "Complete", "status": "True", "message": "jobset completed"}]},
            (True, "jobset completed"),
        ),
    ],
)
def test_outcome_of_a_job_or_trainjob(status, expected) -> None:
    assert launch.outcome({"status": status}) == expected


def test_a_cluster_job_needs_a_shared_run_folder(tmp_path) -> None:
    from pathlib import Path

    from mlspec import api

    ir = api.lower(api.load(Path(__file__).resolve().parents[2] / "specs" / "churn.yaml"))
    ctx = StepContext(step_id="train", ir=ir, run=RunDir(str(tmp_path)), argv=["train"])
    with pytest.raises(StepError, match="run folder must be shared storage"):
        launch.on_kubernetes(ctx, distribution(2, 1, "job"))
