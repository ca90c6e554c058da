"""The IR owns every decision, and `mlspec lint` passes exactly what `mlspec compile` emits.

- Generated specs (pools of several vendors and sizes, GPU and CPU serving, SLOs, an overlay) compile with all
  five backends, whose outputs agree with the IR's placements and SLO policy, and so with each other.
- Lint clean <=> every target compiles: for every spec and environment in specs/, over the invalid corpus,
  and over mutations of the example.
- No backend spells a wire name itself: they come from the IR or mlspec.contracts.
"""

from __future__ import annotations

import ast
import copy
import io
import json
import re
import tokenize
from pathlib import Path

import pytest
import yaml
from helpers_core import INVALID, ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

import mlspec
from mlspec import contracts
from mlspec.diagnostics import MlspecError, has_errors

TARGETS = ["kubeflow", "airflow", "terraform", "kubernetes", "cloudformation"]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
# (instance type, GPU type, GPUs per node) across vendors and sizes
GPU_POOLS = [
    ("g5.xlarge", "nvidia-a10g", 1),
    ("g5.12xlarge", "nvidia-a10g", 4),
    ("g6.2xlarge", "nvidia-l4", 1),
    ("p4d.24xlarge", "nvidia-a100", 8),
    ("inf2.xlarge", "aws-inferentia2", 1),
    ("trn1.32xlarge", "aws-trainium", 16),
]


def _yaml_text(data: dict) -> str:
    buf = io.StringIO()
    YAML().dump(data, buf)
    return buf.getvalue()


def _churn() -> dict:
    return YAML(typ="safe", pure=True).load((ROOT / "specs" / "churn.yaml").read_text())


@st.composite
def systems(draw: st.DrawFn) -> dict:
    """A valid spec: churn's data, with generated pools, placements, serving and SLO."""
    data = _churn()
    chosen = draw(st.lists(st.sampled_from(range(len(GPU_POOLS))), min_size=1, max_size=3, unique=True))
    pools = {"cpu": {"instance_type": "m6i.xlarge", "min": 1, "max": 4}}
    for i in chosen:
        instance, _, _ = GPU_POOLS[i]
        pools[f"gpu{i}"] = {"instance_type": instance, "min": 0, "max": draw(st.integers(1, 6))}
    data["infrastructure"]["node_pools"] = pools
    train_pool = draw(st.sampled_from(chosen))
    _, train_type, per_node = GPU_POOLS[train_pool]
    same_type = [i for i in chosen if GPU_POOLS[i][1] == train_type]
    data["training"]["resources"] = {
        "cpu": 4,
        "memory": "16Gi",
        "gpu": {"type": train_type, "count": draw(st.integers(1, per_node))},
        **({"node_pool": f"gpu{train_pool}"} if len(same_type) > 1 or draw(st.booleans()) else {}),
    }
    serving = data["serving"]
    if draw(st.booleans()):
        serve_pool = draw(st.sampled_from(chosen))
        serving["accelerator"] = "gpu"
        serving["resources"] = {
            "cpu": 2,
            "memory": "4Gi",
            "gpu": {"type": GPU_POOLS[serve_pool][1], "count": 1},
            "node_pool": f"gpu{serve_pool}",
        }
        # the pool must hold the rollout's peak, replicas.max + the canary surge (MS224): size it so
        pool = data["infrastructure"]["node_pools"][f"gpu{serve_pool}"]
        pool["max"] = max(pool["max"], -(-25 // GPU_POOLS[serve_pool][2]))
    latency = draw(st.sampled_from([25, 50, 100, 200, 300]))
    availability = draw(st.sampled_from([99.0, 99.5, 99.9, 99.95]))
    serving["slo"] = {"latency_p99_ms": latency, "availability_percent": availability, "window": "30d"}
    budget = 1 - availability / 100
    serving["rollout"]["rollback_on"] = {
        "error_rate": round(draw(st.sampled_from([1.0, 5.0, 10.0])) * budget, 6),
        "latency_p99_ms": latency + draw(st.sampled_from([0, 25, 50])),
    }
    # the spec's staging, with its own registry and bucket (MS250, MS251), and a replica range of its own
    data["environments"] = {
        "staging": {**data["environments"]["staging"], "serving": {"replicas": {"min": 1, "max": 2}}}
    }
    return data


def _compile_all(data: dict, env: str | None = None) -> tuple:
    result = mlspec.compile(mlspec.loads(_yaml_text(data), "specs/churn.yaml"), TARGETS, env=env)
    files = {t: {a.path: a.data().decode() for a in arts} for t, arts in result.artifacts.items()}
    return result.ir, files


def _tolerations(placement) -> list[tuple]:
    return [(t.key, t.value, t.effect) for t in placement.tolerations]


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (`!Ref X`) as plain values: enough to read node groups."""


_CfnLoader.add_multi_constructor(
    "!",
    lambda loader, suffix, node: (
        loader.construct_sequence(node)
        if isinstance(node, yaml.SequenceNode)
        else loader.construct_scalar(node)
    ),
)


def _assert_placements_agree(ir, files: dict) -> None:
    steps = {s.id: s for s in ir.pipeline("training").steps}
    # Kubeflow: the executor's accelerator and the platform spec's selector and tolerations
    docs = list(yaml.safe_load_all(files["kubeflow"]["pipeline.yaml"]))
    executors = docs[0]["deploymentSpec"]["executors"]
    platform = docs[-1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for step_id, step in steps.items():
        resources, p = executors[f"exec-{step_id}"]["container"]["resources"], step.placement
        accelerator = resources.get("accelerator")
        if p.gpu:
            wanted = {"resourceType": p.gpu.resource, "resourceCount": str(p.gpu.count)}
            assert wanted.items() <= accelerator.items()
        else:
            assert accelerator is None
        k8s = platform.get(f"exec-{step_id}", {})
        assert k8s.get("nodeSelector", {}).get("labels", {}) == p.node_selector
        assert [(t["key"], t["value"], t["effect"]) for t in k8s.get("tolerations", [])] == _tolerations(p)
    # Airflow: the pod operators' limits
    dag = files["airflow"][f"{ir.system.name}_training.py"]
    limits = {}
    for node in ast.walk(ast.parse(dag)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
            "KubernetesPodOperator",
            "partial",
        ):
            keywords = {kw.arg: kw.value for kw in node.keywords}
            if "name" in keywords and "container_resources" in keywords:
                amounts = {
                    kw.arg: ast.literal_eval(kw.value) for kw in keywords["container_resources"].keywords
                }
                limits[ast.literal_eval(keywords["name"])] = amounts["limits"]
    for step_id, step in steps.items():
        p = step.placement
        assert limits[step_id] == {
            "cpu": p.cpu,
            "memory": p.memory,
            **({p.gpu.resource: str(p.gpu.count)} if p.gpu else {}),
        }
    # Terraform: the node group of every pinned placement offers it
    tf = json.loads(files["terraform"]["main.tf.json"])["resource"]["aws_eks_node_group"]
    effects = {
        "NO_SCHEDULE": "NoSchedule",
        "PREFER_NO_SCHEDULE": "PreferNoSchedule",
        "NO_EXECUTE": "NoExecute",
    }
    placements = [s.placement for s in steps.values()] + [ir.serving.placement]
    for p in placements:
        if p.node_pool is None:
            continue
        pool = ir.node_pool(p.node_pool)
        group = tf[pool.task_id]
        assert p.node_selector.items() <= group["labels"].items()
        assert [(t["key"], t["value"], effects[t["effect"]]) for t in group["taint"]] == _tolerations(p)
        assert p.gpu is None or (pool.gpu.resource == p.gpu.resource and p.gpu.count <= pool.gpu.per_node)
        family = {"nvidia": "NVIDIA", "neuron": "NEURON", "standard": "STANDARD"}[pool.image_family]
        assert group["ami_type"] == f"AL2023_x86_64_{family}"
    # CloudFormation: the same node group offers it (pools are compared in full in test_cross_infrastructure.py)
    template = yaml.load(files["cloudformation"]["template.yaml"], Loader=_CfnLoader)
    cfn = {
        r["Properties"]["NodegroupName"]: r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::EKS::Nodegroup"
    }
    for p in placements:
        if p.node_pool is None:
            continue
        group = cfn[ir.node_pool(p.node_pool).group_name]
        assert p.node_selector.items() <= group["Labels"].items()
        taints = [(t["Key"], t["Value"], effects[t["Effect"]]) for t in group.get("Taints", [])]
        assert taints == _tolerations(p)
        assert group["AmiType"] == tf[ir.node_pool(p.node_pool).task_id]["ami_type"]
    # Kubernetes: the server's resources, selector and tolerations
    objects = [
        d
        for name, text in files["kubernetes"].items()
        if name.endswith(".yaml")
        for d in yaml.safe_load_all(text)
        if isinstance(d, dict)
    ]
    (server,) = [
        o
        for o in objects
        if o["kind"] in ("Deployment", "Rollout") and o["metadata"]["name"] == ir.serving.id
    ]
    pod, p = server["spec"]["template"]["spec"], ir.serving.placement
    amounts = {"cpu": p.cpu, "memory": p.memory, **({p.gpu.resource: str(p.gpu.count)} if p.gpu else {})}
    assert pod["containers"][0]["resources"] == {"requests": amounts, "limits": amounts}
    assert pod.get("nodeSelector", {}) == p.node_selector
    assert [(t["key"], t["value"], t["effect"]) for t in pod.get("tolerations", [])] == _tolerations(p)
    return objects


def _assert_slo_agrees(ir, objects: list) -> None:
    from mlspec.serving.config import from_ir
    from mlspec.serving.loadtest import LoadResult, slo_violations

    slo = ir.serving.slo
    objective, rollback = slo.objective, slo.rollback
    # the server measures with the IR's buckets, and every threshold is one of them
    buckets = from_ir(ir).latency_buckets
    assert buckets == slo.histogram_buckets_seconds
    assert {objective.latency_bucket_seconds, rollback.max_latency_bucket_seconds} <= set(buckets)
    # the alerts read the objective's bucket, the analysis the rollback's, both with the IR's error classes
    (rule,) = [o for o in objects if o["kind"] == "PrometheusRule" and o["metadata"]["name"].endswith("-slo")]
    text = json.dumps(rule)
    assert set(re.findall(r'le=\\"([^\\"]+)\\"', text)) == {repr(objective.latency_bucket_seconds)}
    assert 'code=~\\"5..\\"' in text and slo.error_status_classes == [5]
    (template,) = [o for o in objects if o["kind"] == "AnalysisTemplate"]
    metrics = {m["name"]: m for m in template["spec"]["metrics"]}
    slow = metrics["slow-request-rate"]["provider"]["prometheus"]["query"]
    assert re.findall(r'le="([^"]+)"', slow) == [repr(rollback.max_latency_bucket_seconds)]
    assert float(metrics["error-rate"]["successCondition"].rsplit("<= ", 1)[1]) == rollback.max_error_rate
    # the load test judges a run just inside and just outside the objective as the alerts would
    n = 1000
    allowed = round(n * (1 - slo.latency_quantile))
    just_in = [0.0001] * (n - allowed) + [objective.latency_bucket_seconds * 2] * allowed
    assert slo_violations(LoadResult(just_in, {"200": n}, 1.0), slo) == []
    just_out = [0.0001] * (n - allowed - 1) + [objective.latency_bucket_seconds * 2] * (allowed + 1)
    assert slo_violations(LoadResult(just_out, {"200": n}, 1.0), slo)


@pytest.mark.engine
@pytest.mark.slow
def test_generated_systems_compile_to_agreeing_artifacts() -> None:
    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(systems(), st.sampled_from([None, "staging"]))
    def check(data: dict, env: str | None) -> None:
        loaded = mlspec.loads(_yaml_text(data), "specs/churn.yaml")
        assert not has_errors(mlspec.lint(loaded)), [d.message for d in mlspec.lint(loaded)]
        ir, files = _compile_all(data, env)
        objects = _assert_placements_agree(ir, files)
        _assert_slo_agrees(ir, objects)

    check()


# ------------------------------------------------------------------------------------------------ lint <=> compile
def _lint_clean(loaded, env: str | None) -> bool:
    return not has_errors(mlspec.lint(loaded, environments=[env] if env else []))


def _compiles(loaded, env: str | None) -> bool:
    try:
        mlspec.compile(loaded, TARGETS, env=env)
    except MlspecError:
        return False
    return True


@pytest.mark.engine
@pytest.mark.parametrize(
    ("spec", "env"),
    [(p, e) for p in SPECS for e in [None, *mlspec.load(p).spec.environments]],
    ids=lambda v: getattr(v, "stem", v or "base"),
)
def test_every_example_and_environment_lints_clean_and_compiles(spec: Path, env: str | None) -> None:
    loaded = mlspec.load(spec)
    assert _lint_clean(loaded, env)
    targets = loaded.spec.targets
    result = mlspec.compile(loaded, targets, env=env)
    assert set(result.artifacts) == set(targets) and not has_errors(result.diagnostics)


@pytest.mark.parametrize("path", sorted(INVALID.glob("*.yaml")), ids=lambda p: p.stem)
def test_the_invalid_corpus_neither_lints_clean_nor_compiles(path: Path) -> None:
    try:
        loaded = mlspec.load(path)
    except MlspecError:
        return  # refused while loading or validating: there is nothing to lint or compile
    assert not _lint_clean(loaded, None)
    assert not _compiles(loaded, None)


MUTATIONS = [
    ("serving", "replicas", "min"),
    ("serving", "accelerator"),
    ("training", "resources", "gpu", "count"),
    ("training", "distributed", "workers"),
    ("infrastructure", "account_id"),
    ("serving", "rollout", "strategy"),
    ("infrastructure", "node_pools", "gpu", "instance_type"),
    ("serving", "rollout", "experiment_duration"),
]
VALUES = [None, 0, 1, 2, 8, "gpu", "cpu", "a-b", "shadow", "p4d.24xlarge", "g4ad.xlarge", "7d", "m6i.large"]


@pytest.mark.engine
@pytest.mark.slow
def test_lint_clean_exactly_when_mutated_specs_compile() -> None:
    base = _churn()

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(st.sampled_from(MUTATIONS), st.sampled_from(VALUES)), min_size=1, max_size=3))
    def check(changes: list) -> None:
        data = copy.deepcopy(base)
        for path, value in changes:
            parent = data
            for part in path[:-1]:
                parent = parent.setdefault(part, {}) if isinstance(parent, dict) else parent
            if value is None:
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = value
        try:
            loaded = mlspec.loads(_yaml_text(data), "specs/churn.yaml")
        except MlspecError:
            return
        assert _lint_clean(loaded, None) == _compiles(loaded, None), changes

    check()


# ------------------------------------------------------------------------------------------------ wire names
WIRE_NAMES = [
    "nvidia.com/gpu",
    "amd.com/gpu",
    "aws.amazon.com/neuron",
    contracts.LABEL_PREFIX,
    contracts.HEALTH_LIVE_PATH,
    contracts.HEALTH_READY_PATH,
    contracts.REQUEST_DURATION,
    contracts.REQUESTS_TOTAL,
    f"{contracts.RETRAIN_EVENT_SCHEME}://",
    contracts.MODEL_FILE,
    contracts.PROFILE_FILE,
]


@pytest.mark.parametrize("backend", TARGETS)
def test_no_backend_spells_a_wire_name_or_a_gpu_resource(backend: str) -> None:
    """`grep -rn 'nvidia.com/gpu' backends/*/mlspec_*` finds nothing: names come from the IR or contracts."""
    found = []
    for path in sorted((ROOT / "backends" / backend / f"mlspec_{backend}").rglob("*")):
        if path.suffix == ".py":
            with path.open("rb") as handle:
                strings = [t.string for t in tokenize.tokenize(handle.readline) if t.type == tokenize.STRING]
        elif path.suffix == ".j2":
            strings = [path.read_text()]
        else:
            continue
        found += [f"{path.relative_to(ROOT)}: {name}" for s in strings for name in WIRE_NAMES if name in s]
    assert not found
