"""The pod KFP would run for each compiled task: KFP's v2 driver mapping applied to pipeline.yaml, then checked
against what the Kubernetes API server accepts (schema and container resource names)."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

import mlspec

ROOT = Path(__file__).resolve().parents[3]
CHURN = ROOT / "specs" / "churn.yaml"

# KFP's v2 driver builds each task's pod spec patch from the compiled pipeline. The function below restates
# (in our own few lines, not a copy) the part mlspec relies on, as of kubeflow/pipelines commit
# 7b70c7b95f6832772efd6fd0029a4024491a0f44:
# - backend/src/v2/driver/driver.go, initPodSpecPatch + getPodResource: limits/requests `memory` and `cpu` from
#   resourceMemoryLimit/Request and resourceCpuLimit/Request, else the deprecated float fields (memory "%vG",
#   cpu "%v"); an accelerator with a type (resourceType, else type) and a count (resourceCount, else count > 0)
#   becomes limits[<type>] = <count>. Each value goes through k8s ParseQuantity (an invalid one fails the task).
# - backend/src/v2/driver/k8s.go, extendPodSpecPatch: nodeSelector.labels -> pod nodeSelector; each
#   toleration's key/operator/value/effect/tolerationSeconds -> pod tolerations; activeDeadlineSeconds.
# Runtime-parameter placeholders and the *Json variants are not used by mlspec and are left out.


def driver_pod_spec(container: dict, executor_config: dict) -> dict:
    """The pod spec KFP's driver derives from one executor's container and kubernetes platform config."""
    resources = container.get("resources", {})
    limits: dict[str, str] = {}
    requests: dict[str, str] = {}
    for into, name, field, deprecated, unit in (
        (limits, "memory", "resourceMemoryLimit", "memoryLimit", "G"),
        (requests, "memory", "resourceMemoryRequest", "memoryRequest", "G"),
        (limits, "cpu", "resourceCpuLimit", "cpuLimit", ""),
        (requests, "cpu", "resourceCpuRequest", "cpuRequest", ""),
    ):
        if resources.get(field):
            into[name] = quantity(resources[field])
        elif resources.get(deprecated):
            into[name] = quantity(go_float(resources[deprecated]) + unit)
    accelerator = resources.get("accelerator")
    if accelerator:
        kind = accelerator.get("resourceType") or accelerator.get("type", "")
        count = accelerator.get("resourceCount") or (
            str(accelerator["count"]) if int(accelerator.get("count", 0)) > 0 else ""
        )
        if kind and count:
            limits[kind] = quantity(count)
    pod: dict = {
        "containers": [
            {
                "name": "main",
                "image": container["image"],
                "resources": {"limits": limits, "requests": requests},
            }
        ]
    }
    if "nodeSelector" in executor_config:
        pod["nodeSelector"] = dict(executor_config["nodeSelector"].get("labels", {}))
    if "tolerations" in executor_config:
        pod["tolerations"] = [
            {k: t[k] for k in ("key", "operator", "value", "effect", "tolerationSeconds") if k in t}
            for t in executor_config["tolerations"]
        ]
    if int(executor_config.get("activeDeadlineSeconds", 0)) > 0:
        pod["activeDeadlineSeconds"] = int(executor_config["activeDeadlineSeconds"])
    return pod


def quantity(text: str) -> str:
    """ParseQuantity's check (kubernetes' own parser); the values mlspec writes are already canonical."""
    from kubernetes.utils import parse_quantity

    parse_quantity(text)  # raises ValueError like ParseQuantity returns an error
    return text


def go_float(value: float) -> str:
    """Go's %v of a float64 (shortest repr, no trailing .0)."""
    text = repr(float(value))
    return text.removesuffix(".0")


# kubernetes/kubernetes pkg/apis/core/validation/validation.go, validateContainerResourceName: a container
# resource is a standard one (cpu, memory, ephemeral-storage, hugepages-<size>) or a domain-qualified extended
# resource outside kubernetes.io. The API server refuses any other key, e.g. a bare GPU product name.
_STANDARD = ("cpu", "memory", "ephemeral-storage")
_QUALIFIED = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)


def container_resource_name_ok(name: str) -> bool:
    if "/" not in name:
        return name in _STANDARD or name.startswith("hugepages-")
    domain = name.split("/", 1)[0]
    native = domain == "kubernetes.io" or domain.endswith(".kubernetes.io")
    return bool(_QUALIFIED.match(name)) and not native and not name.startswith("requests.")


@pytest.fixture(scope="module")
def compiled():
    # Kubeflow owns churn's loop here, so it compiles the monitoring pipeline too
    text = CHURN.read_text("utf-8").replace("  cooldown: 24h\n", "  cooldown: 24h\n  sink: kubeflow\n")
    result = mlspec.compile(mlspec.loads(text, "specs/churn.yaml"), ["kubeflow"])
    files = {a.path: a.data() for a in result.artifacts["kubeflow"]}
    return result.ir, files


def pods(files: dict[str, bytes], name: str) -> dict[str, dict]:
    spec, platform = yaml.safe_load_all(files[name])
    configs = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    return {
        key.removeprefix("exec-"): driver_pod_spec(executor["container"], configs.get(key, {}))
        for key, executor in spec["deploymentSpec"]["executors"].items()
    }


def test_churn_training_pod_requests_the_gpu_on_the_gpu_pool(compiled):
    _, files = compiled
    by_step = pods(files, "pipeline.yaml")
    for step_id in ("tune-trial", "train"):
        pod = by_step[step_id]
        assert pod["containers"][0]["resources"] == {
            "limits": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"},
            "requests": {"cpu": "8", "memory": "32Gi"},
        }
        assert pod["nodeSelector"] == {"mlspec.io/node-pool": "gpu"}
        assert pod["tolerations"] == [
            {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
        ]
        assert pod["activeDeadlineSeconds"] == 7200


@pytest.mark.parametrize(
    ("file", "pipeline_id"), [("pipeline.yaml", "training"), ("monitor.yaml", "monitoring")]
)
def test_every_step_pod_equals_its_ir_placement_and_the_api_server_accepts_it(compiled, file, pipeline_id):
    ir, files = compiled
    by_step = pods(files, file)
    for step in ir.pipeline(pipeline_id).steps:
        pod = by_step[step.id]
        where = step.placement
        expected = {"cpu": where.cpu, "memory": where.memory}
        gpu = {where.gpu.resource: str(where.gpu.count)} if where.gpu else {}
        assert pod["containers"][0]["resources"] == {"limits": {**expected, **gpu}, "requests": expected}
        assert pod.get("nodeSelector", {}) == where.node_selector
        assert pod.get("tolerations", []) == [
            {"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect}
            for t in where.tolerations
        ]
        assert pod["activeDeadlineSeconds"] == step.timeout_seconds
    for step_id, pod in by_step.items():
        resources = pod["containers"][0]["resources"]
        assert all(container_resource_name_ok(n) for r in resources.values() for n in r), (step_id, resources)
        manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": step_id}, "spec": pod}
        kubernetes_validate.validate(manifest, ir.infrastructure.cluster_version, strict=True)


def test_the_old_product_name_accelerator_is_what_the_api_server_refuses():
    # The mapping and the name rule together catch the original bug: accelerator type = the GPU product.
    container = {
        "image": "runtime:1",
        "resources": {
            "accelerator": {"resourceType": "nvidia-a10g", "resourceCount": "1"},
            "resourceCpuLimit": "8",
        },
    }
    limits = driver_pod_spec(container, {})["containers"][0]["resources"]["limits"]
    assert limits == {"cpu": "8", "nvidia-a10g": "1"}
    assert not container_resource_name_ok("nvidia-a10g")
    assert container_resource_name_ok("nvidia.com/gpu") and container_resource_name_ok(
        "aws.amazon.com/neuron"
    )
    assert not container_resource_name_ok("kubernetes.io/gpu")


def test_deprecated_float_fields_follow_the_driver_format():
    container = {
        "image": "runtime:1",
        "resources": {
            "cpuLimit": 2.0,
            "memoryLimit": 1.5,
            "accelerator": {"type": "nvidia.com/gpu", "count": "2"},
        },
    }
    limits = driver_pod_spec(container, {})["containers"][0]["resources"]["limits"]
    assert limits == {"cpu": "2", "memory": "1.5G", "nvidia.com/gpu": "2"}
