"""The IR: versioned, frozen, JSON-serializable, fully resolved, with node pools shared by GPU workloads."""

from __future__ import annotations

import json
import re

import pydantic
import pytest
from helpers_core import CHURN, MINIMAL

import mlspec
from mlspec.diagnostics import MlspecError
from mlspec.ir.model import IR, IR_VERSION

DNS_1123 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@pytest.fixture(scope="module")
def churn() -> mlspec.api.LoadedSpec:
    return mlspec.load(CHURN)


def test_versioned_and_json_round_trip(churn) -> None:
    ir = mlspec.lower(churn)
    assert ir.ir_version == IR_VERSION == "1"
    text = ir.to_json()
    assert IR.model_validate_json(text) == ir
    assert json.loads(text)["system"]["spec_path"] == "specs/churn.yaml"
    assert ir.system.spec_sha256 == churn.document.sha256


def test_frozen(churn) -> None:
    ir = mlspec.lower(churn)
    with pytest.raises(pydantic.ValidationError):
        ir.system.name = "other"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        ir.pipelines[0].steps[0].retries = 9  # type: ignore[misc]


def test_defaults_resolved() -> None:
    ir = mlspec.lower(mlspec.loads(MINIMAL))
    assert ir.registry.model_name == "demo" and ir.registry.experiment == "demo"
    assert ir.system.namespace == "demo"
    assert ir.data.task == "classification" and ir.data.features == ["x"]
    assert ir.data.sources[0].format == "csv"
    train = next(s for s in ir.pipelines[0].steps if s.id == "train")
    assert train.resources.cpu == "2" and train.resources.memory == "4Gi" and train.timeout_seconds == 7200
    assert ir.targets == ["kubeflow", "airflow", "terraform", "kubernetes"]


def test_names_legal_for_every_target(churn) -> None:
    ir = mlspec.lower(churn)
    for pipeline in ir.pipelines:
        assert DNS_1123.match(pipeline.id) and IDENTIFIER.match(pipeline.task_id)
        ids = [s.id for s in pipeline.steps]
        assert len(ids) == len(set(ids))
        for step in pipeline.steps:
            assert DNS_1123.match(step.id), step.id
            assert IDENTIFIER.match(step.task_id), step.task_id
            assert set(step.depends_on) <= set(ids)
            assert set(step.conditions) <= {c.id for c in pipeline.conditions}
    for pool in ir.infrastructure.node_pools:
        assert DNS_1123.match(pool.id) and IDENTIFIER.match(pool.task_id)
    assert DNS_1123.match(ir.serving.id)


def test_user_step_names_and_order() -> None:
    text = MINIMAL + (
        "steps:\n"
        "  - {name: build-features, command: [python, f.py, --out, '{outputs.features}'], before: train}\n"
        "  - {name: prep, command: [python, p.py], before: build-features}\n"
    )
    ir = mlspec.lower(mlspec.loads(text))
    steps = ir.pipelines[0].steps
    ids = [s.id for s in steps]
    assert ids.index("prep") < ids.index("build-features") < ids.index("train")
    features = next(s for s in steps if s.id == "build-features")
    assert features.task_id == "build_features" and features.outputs == ["features"]
    assert "build-features" in next(s for s in steps if s.id == "train").depends_on


def test_gpu_step_and_pool_share_one_object(churn) -> None:
    ir = mlspec.lower(churn)
    train = next(s for s in ir.pipelines[0].steps if s.id == "train")
    pool = ir.node_pool(train.resources.node_pool)
    assert pool is not None and pool.gpu_type == train.resources.gpu_type == "nvidia-a10g"
    assert [(t.key, t.effect) for t in pool.taints] == [("nvidia.com/gpu", "NoSchedule")]
    assert pool.node_selector.items() <= pool.labels.items()
    cpu_pool = ir.node_pool("cpu")
    assert cpu_pool is not None and cpu_pool.taints == [] and cpu_pool.gpu_count == 0


def test_gpu_serving_references_gpu_pool() -> None:
    text = CHURN.read_text().replace("  accelerator: cpu\n", "  accelerator: gpu\n")
    ir = mlspec.lower(mlspec.loads(text))
    pool = ir.node_pool(ir.serving.resources.node_pool)
    assert pool is not None and pool.gpu_type == ir.serving.resources.gpu_type == "nvidia-a10g"
    assert ir.serving.resources.gpu_count == 1


def test_custom_labels_and_taints_carry_through() -> None:
    text = CHURN.read_text().replace(
        "accelerator: nvidia-a10g}",
        "accelerator: nvidia-a10g, labels: {team: ml}, taints: [{key: dedicated, value: gpu, effect: NoExecute}]}",
    )
    pool = mlspec.lower(mlspec.loads(text)).node_pool("gpu")
    assert pool.labels["team"] == "ml" and pool.labels["mlspec.io/node-pool"] == "gpu"
    assert [(t.key, t.value, t.effect) for t in pool.taints] == [("dedicated", "gpu", "NoExecute")]


def test_environment_overlay_deep_merges(churn) -> None:
    base = mlspec.lower(churn)
    staging = mlspec.lower(churn, "staging")
    assert staging.system.environment == "staging"
    assert (staging.serving.replicas_min, staging.serving.replicas_max) == (1, 3)
    assert staging.infrastructure.cluster_name == "ml-staging"
    # untouched keys beside the overlaid ones survive the merge
    assert staging.serving.target_cpu_percent == base.serving.target_cpu_percent
    assert staging.infrastructure.cluster_version == base.infrastructure.cluster_version
    assert staging.infrastructure.state.key.endswith("/staging/terraform.tfstate")
    assert staging.infrastructure.artifacts_bucket == "acme-ml-artifacts-staging"
    assert staging.artifacts_root == "s3://acme-ml-artifacts-staging/churn"
    prod = mlspec.lower(churn, "prod")
    # prod only points the registry at the in-cluster MLflow server
    assert prod.registry.tracking_uri == "http://mlflow.mlflow.svc.cluster.local:5000"
    unchanged = {"system": base.system, "infrastructure": base.infrastructure, "registry": base.registry}
    assert prod.model_copy(update=unchanged) == base


def test_unknown_environment(churn) -> None:
    with pytest.raises(MlspecError) as info:
        mlspec.lower(churn, "qa")
    (d,) = info.value.diagnostics
    assert d.code == "MS110" and "staging" in d.message


def test_lowering_is_deterministic(churn) -> None:
    assert mlspec.lower(churn).to_json() == mlspec.lower(mlspec.load(CHURN)).to_json()


def test_durations_and_quantities_normalized(churn) -> None:
    ir = mlspec.lower(churn)
    assert ir.serving.rollout.step_duration_seconds == 600
    assert ir.retraining.cooldown_seconds == 86400
    assert ir.serving.slo.latency_bucket_seconds in ir.serving.latency_buckets_seconds
    text = MINIMAL + "training: {resources: {cpu: 0.5, memory: 1.5Gi}}\n"
    train = next(s for s in mlspec.lower(mlspec.loads(text)).pipelines[0].steps if s.id == "train")
    assert (train.resources.cpu, train.resources.memory) == ("500m", "1.5Gi")
