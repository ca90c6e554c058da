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
    assert ir.ir_version == IR_VERSION == "2.4"
    text = ir.to_json()
    assert IR.model_validate_json(text) == ir
    assert json.loads(text)["system"]["spec_path"] == "specs/churn.yaml"
    assert ir.system.spec_sha256 == churn.document.content_sha256


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
    assert train.placement.cpu == "2" and train.placement.memory == "4Gi" and train.timeout_seconds == 7200
    # every step's placement is complete: a backend never falls back to its own defaults
    assert all(s.placement.cpu and s.placement.memory for p in ir.pipelines for s in p.steps)
    # no infrastructure section: terraform has nothing to build, so it is not a default target
    assert ir.targets == ["kubeflow", "airflow", "kubernetes"]


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
    assert features.task_id == "build_features" and features.user.files == ["features"]
    # the runtime runs every step: it expands the placeholders and checks the step's data contract
    assert features.command == ["python", "-m", "mlspec.runtime", "build-features"]
    assert features.user.argv == ["python", "f.py", "--out", "{outputs.features}"]
    assert "build-features" in next(s for s in steps if s.id == "train").depends_on


def test_gpu_step_placement_is_the_pool_decision(churn) -> None:
    ir = mlspec.lower(churn)
    train = next(s for s in ir.pipelines[0].steps if s.id == "train")
    gpu = train.placement.gpu
    assert (gpu.vendor, gpu.product, gpu.resource, gpu.count) == (
        "nvidia",
        "nvidia-a10g",
        "nvidia.com/gpu",
        1,
    )
    pool = ir.node_pool(train.placement.node_pool)
    assert pool is not None and pool.gpu.product == gpu.product and pool.gpu.resource == gpu.resource
    assert pool.image_family == "nvidia" and pool.gpu.per_node == 1  # g5.xlarge, from the catalog
    assert train.placement.node_selector == pool.node_selector == {"mlspec.io/node-pool": "gpu"}
    assert train.placement.tolerations == pool.taints
    assert [(t.key, t.effect) for t in pool.taints] == [("nvidia.com/gpu", "NoSchedule")]
    assert pool.node_selector.items() <= pool.labels.items()
    cpu_pool = ir.node_pool("cpu")
    assert cpu_pool is not None and cpu_pool.taints == [] and cpu_pool.gpu is None
    assert cpu_pool.image_family == "standard"


def test_gpu_serving_runs_on_the_only_gpu_pool() -> None:
    text = CHURN.read_text().replace("  accelerator: cpu\n", "  accelerator: gpu\n")
    # the canary's peak (3 replicas + 1 surge pod) fits the 4 one-GPU nodes the pool grows to (MS224)
    text = text.replace("  replicas: {min: 2, max: 20}\n", "  replicas: {min: 1, max: 3}\n")
    ir = mlspec.lower(mlspec.loads(text))
    where = ir.serving.placement
    assert where.node_pool == "gpu" and where.gpu.product == "nvidia-a10g" and where.gpu.count == 1
    assert ir.serving.accelerator == "gpu"


def test_vendors_decide_resource_name_taint_and_image_family() -> None:
    text = CHURN.read_text().replace(
        "    gpu: {instance_type: g5.xlarge, min: 0, max: 4, accelerator: nvidia-a10g}\n",
        "    gpu: {instance_type: g5.xlarge, min: 0, max: 4, accelerator: nvidia-a10g}\n"
        "    amd: {instance_type: g4ad.xlarge, max: 2}\n"
        "    neuron: {instance_type: inf2.xlarge, max: 2}\n",
    )
    ir = mlspec.lower(mlspec.loads(text))
    amd, neuron = ir.node_pool("amd"), ir.node_pool("neuron")
    assert (amd.gpu.product, amd.gpu.resource, amd.image_family) == ("amd-v520", "amd.com/gpu", "standard")
    assert (neuron.gpu.resource, neuron.image_family) == ("aws.amazon.com/neuron", "neuron")
    assert [t.key for t in amd.taints] == ["amd.com/gpu"]


def test_two_pools_of_one_gpu_type_need_a_named_pool() -> None:
    text = CHURN.read_text().replace(
        "    gpu: {instance_type: g5.xlarge, min: 0, max: 4, accelerator: nvidia-a10g}\n",
        "    gpu: {instance_type: g5.xlarge, min: 0, max: 4}\n    gpu-spot: {instance_type: g5.2xlarge, max: 4, spot: true}\n",
    )
    codes = [(d.code, d.location.line) for d in mlspec.lint(mlspec.loads(text))]
    assert codes == [("MS202", 49)]  # training.resources.gpu.type: which of the two pools?
    pinned = text.replace(
        "gpu: {type: nvidia-a10g, count: 1}}", "gpu: {type: nvidia-a10g, count: 1}, node_pool: gpu-spot}"
    )
    ir = mlspec.lower(mlspec.loads(pinned))
    assert next(s for s in ir.pipelines[0].steps if s.id == "train").placement.node_pool == "gpu-spot"


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
    # (the platform table follows the registry: prod's in-cluster MLflow server is a declared prerequisite)
    assert prod.component("mlflow") is not None and base.component("mlflow") is None
    unchanged = {
        "system": base.system,
        "infrastructure": base.infrastructure,
        "registry": base.registry,
        "platform": base.platform,
    }
    # and every environment pushes its image to a repository of its own (MS250): the rest is the base's
    assert prod.image is not None and base.image is not None
    assert prod.image.ecr_repository == "churn-prod" and base.image.ecr_repository == "churn"
    unchanged |= {"image": base.image, "images": base.images}
    same_image = (
        prod.model_copy(update=unchanged).to_json().replace(prod.image.repository, base.image.repository)
    )
    assert same_image == base.to_json()


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
    assert ir.serving.slo.objective.latency_bucket_seconds in ir.serving.slo.histogram_buckets_seconds
    text = MINIMAL + "training: {resources: {cpu: 0.5, memory: 1.5Gi}}\n"
    train = next(s for s in mlspec.lower(mlspec.loads(text)).pipelines[0].steps if s.id == "train")
    assert (train.placement.cpu, train.placement.memory) == ("500m", "1.5Gi")


def test_a_reader_ignores_fields_of_a_newer_minor_version_and_refuses_a_newer_major(churn) -> None:
    from mlspec.ir.model import IRVersionError, read_ir

    data = json.loads(mlspec.lower(churn).to_json())
    newer = {**data, "ir_version": "2.7", "new_top_level": {"x": 1}}
    newer["serving"] = {**data["serving"], "new_serving_field": True}
    newer["pipelines"][0]["steps"][0]["new_step_field"] = [1, 2]
    assert read_ir(newer) == mlspec.lower(churn)
    with pytest.raises(pydantic.ValidationError):  # writing stays strict
        IR.model_validate(newer)
    with pytest.raises(IRVersionError, match=r"IR version 3\.0 .* upgrade the runtime image"):
        read_ir({**data, "ir_version": "3.0"})
    with pytest.raises(IRVersionError, match=r"IR version 1 .* recompile the spec"):
        read_ir({**data, "ir_version": "1"})


def test_one_catalog_of_built_in_steps() -> None:
    from mlspec.ir.catalog import BUILTIN_STEP_IDS
    from mlspec.runtime.steps import ACTIONS

    assert set(ACTIONS) == {*BUILTIN_STEP_IDS, "user"}  # "user": a user step under its data contract
    ir = mlspec.lower(mlspec.load(CHURN))
    for pipeline in ir.pipelines:
        for step in pipeline.steps:
            assert step.kind == "user" or step.action == step.id in BUILTIN_STEP_IDS
