"""Capacity adds up (MS224, MS225) and training spreads as the IR says (placement.training_plan): the same
decisions in lint and lowering."""

from __future__ import annotations

import pytest
from helpers_core import MINIMAL

import mlspec
from mlspec.diagnostics import MlspecError

INFRA = """infrastructure:
  account_id: "123456789012"
  region: us-east-1
  cluster: {name: ml, version: '1.31'}
  storage: {artifacts_bucket: acme-ml-artifacts}
  node_pools:
    cpu: {instance_type: m6i.xlarge}
"""


# the image lives in the account's ECR repository (MS229) and pods reach a shared registry (MS251)
MINIMAL_ON_ECR = (
    MINIMAL.replace("ghcr.io/acme/demo:", "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo:")
    + 'registry:\n  mlflow: {tracking_uri: "http://mlflow.mlflow.svc.cluster.local:5000"}\n'
)


def spec(training: str = "", serving: str = "", pools: str = "", targets: str = "[kubernetes]") -> str:
    return MINIMAL_ON_ECR + training + serving + INFRA + pools + f"targets: {targets}\n"


def codes(text: str) -> list[str]:
    return sorted(d.code for d in mlspec.lint(mlspec.loads(text)))


def spread(text: str):
    ir = mlspec.lower(mlspec.loads(text))
    train = next(s for s in ir.pipeline("training").steps if s.action == "train")
    return ir.training.distribution, train


@pytest.mark.parametrize(
    ("gpu", "workers", "pool", "expected"),
    [
        # workers x GPUs vs what the pool grows to (nodes x GPUs per node)
        ("{type: nvidia-a10g}", 4, "g5.xlarge, max: 2", ["MS224"]),
        ("{type: nvidia-a10g}", 4, "g5.xlarge, max: 4", []),
        ("{type: nvidia-a10g, count: 4}", 2, "g5.12xlarge, max: 1", ["MS224"]),
        ("{type: nvidia-a10g, count: 4}", 2, "g5.48xlarge, max: 1", []),
        # three-GPU workers on four-GPU nodes: one per node, and a GPU idle on each
        ("{type: nvidia-a10g, count: 3}", 2, "g5.12xlarge, max: 1", ["MS224", "MS225"]),
        ("{type: nvidia-a10g, count: 3}", 2, "g5.12xlarge, max: 2", ["MS225"]),
        # more GPUs than a node has: a placement error (MS202), not a capacity one
        ("{type: nvidia-a10g, count: 16}", 1, "g5.48xlarge, max: 8", ["MS202"]),
    ],
)
def test_training_capacity(gpu: str, workers: int, pool: str, expected: list[str]) -> None:
    text = spec(
        training=f"training: {{resources: {{gpu: {gpu}}}, distributed: {{workers: {workers}}}}}\n",
        pools=f"    gpu: {{instance_type: {pool}}}\n",
    )
    assert codes(text) == expected
    if "MS224" in expected:
        with pytest.raises(MlspecError, match="MS224"):
            mlspec.lower(mlspec.loads(text))  # lowering refuses what lint refuses: lint clean <=> compiles


SERVING = "serving:\n  accelerator: gpu\n  replicas: {{min: 2, max: 12}}\n  rollout: {rollout}\n"


@pytest.mark.parametrize(
    ("rollout", "nodes", "expected"),
    [
        ("{strategy: shadow}", 12, ["MS224"]),  # 12 replicas + a 12-replica shadow on 12 one-GPU nodes
        ("{strategy: shadow}", 24, []),
        ("{strategy: blue-green}", 23, ["MS224"]),  # the preview stack is a full second set
        ("{strategy: a-b, traffic_split: 10, experiment_duration: 1d}", 24, []),
        ("{strategy: rolling}", 14, ["MS224"]),  # 12 + 25% surge = 15
        ("{strategy: rolling}", 15, []),
        ("{strategy: canary, steps: [50, 100], step_duration: 5m}", 15, []),
    ],
)
def test_serving_capacity_counts_the_rollout_surge(rollout: str, nodes: int, expected: list[str]) -> None:
    text = spec(
        serving=SERVING.format(rollout=rollout),
        pools=f"    gpu: {{instance_type: g5.xlarge, max: {nodes}}}\n",
        targets="[ir]",
    )
    assert codes(text) == expected


def test_idle_serving_gpus_are_a_warning() -> None:
    text = spec(
        serving="serving:\n  accelerator: gpu\n  resources: {gpu: {type: nvidia-a10g, count: 2}}\n",
        pools="    gpu: {instance_type: g5.12xlarge, max: 2}\n",
    )
    (d,) = mlspec.lint(mlspec.loads(text))
    assert (d.code, str(d.severity)) == ("MS225", "warning") and "1 of the 2 GPUs" in d.message


def test_workers_that_fit_one_node_share_one_pod() -> None:
    text = spec(
        training="training: {resources: {gpu: {type: nvidia-a10g, count: 2}}, distributed: {workers: 2}}\n",
        pools="    gpu: {instance_type: g5.12xlarge, max: 1}\n",
    )
    d, train = spread(text)
    assert (d.launcher, d.nodes, d.processes_per_node, d.world_size) == ("standalone", 1, 4, 4)
    assert train.placement.gpu.count == 4 and d.backend == "nccl"
    assert d.command[:4] == ["python", "-m", "torch.distributed.run", "--standalone"]
    assert "--nproc-per-node=4" in d.command and d.template is None


def test_workers_that_span_nodes_run_as_a_job_and_the_step_launches_it() -> None:
    text = spec(
        training="training: {resources: {gpu: {type: nvidia-a10g}}, distributed: {workers: 3, launcher: trainjob}}\n",
        pools="    gpu: {instance_type: g5.xlarge, max: 3}\n",
    )
    d, train = spread(text)
    assert (d.launcher, d.nodes, d.processes_per_node, d.world_size) == ("trainjob", 3, 1, 3)
    assert d.placement.gpu.count == 1 and d.placement.node_pool == "gpu"
    assert train.placement.gpu is None  # the launcher waits; the workers hold the GPUs
    assert d.template == "demo-train-job" and d.env["TORCH_NCCL_ASYNC_ERROR_HANDLING"] == "1"


def test_one_process_per_gpu_and_trials_take_one_gpu() -> None:
    text = spec(
        training="training:\n  resources: {gpu: {type: nvidia-a10g, count: 4}}\n"
        "  tuning: {trials: 2, metric: {name: auc}, space: {lr: {uniform: [0.001, 0.01]}}}\n",
        pools="    gpu: {instance_type: g5.12xlarge, max: 2}\n",
    )
    d, train = spread(text)
    assert (d.launcher, d.processes_per_node, train.placement.gpu.count) == ("standalone", 4, 4)
    ir = mlspec.lower(mlspec.loads(text))
    trial = next(s for s in ir.pipeline("training").steps if s.action == "tune-trial")
    assert trial.placement.gpu.count == 1  # a trial is one process


def test_cpu_workers_are_gloo_pods() -> None:
    d, train = spread(MINIMAL + "training: {distributed: {workers: 2}}\ntargets: [kubernetes]\n")
    assert (d.launcher, d.nodes, d.processes_per_node, d.backend) == ("job", 2, 1, "gloo")
    assert d.env == {"MLSPEC_DDP": "1", "OMP_NUM_THREADS": "1"} and train.placement.cpu == "250m"
