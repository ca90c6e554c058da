"""The four backends' outputs agree with each other, because each translates the same IR decisions.

Compared across the real Terraform JSON, Kubernetes YAML, KFP YAML and Airflow DAG:
- placement: every GPU workload requests the IR's extended resource and count, selects its node pool and
  tolerates the pool's taints; the node group carries those labels and taints and boots an AMI whose driver
  advertises that resource;
- SLO: the PrometheusRule and the AnalysisTemplate read `serving.slo`: the same status classes, exact
  buckets, budgets, burn rates and windows, and the rollback limits;
- identity and storage: IRSA roles, trust subjects, ServiceAccounts, bucket and repository names.

Each backend compiles in its own fixture, so one broken backend fails only the assertions about it.
"""

from __future__ import annotations

import ast
import io
import json
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

import mlspec
from mlspec import contracts

ROOT = Path(__file__).resolve().parents[1]
TF_EFFECT = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule", "NO_EXECUTE": "NoExecute"}
# The EKS AMI whose driver makes the kubelet advertise each extended resource (a fact of AWS, restated here
# rather than imported: the test must not agree with the backend by construction).
DRIVER_AMI = {"nvidia.com/gpu": "AL2023_x86_64_NVIDIA", "aws.amazon.com/neuron": "AL2023_x86_64_NEURON"}
# Spec variants: churn as written (GPU training, CPU serving), and serving on each kind of accelerator.
SERVING_ACCELERATORS = {"nvidia": "nvidia-a10g", "neuron": "aws-inferentia2"}


def spec_text(serving_on: str | None = None) -> str:
    from ruamel.yaml import YAML

    rt = YAML()
    data = rt.load((ROOT / "specs" / "churn.yaml").read_text("utf-8"))
    if serving_on is not None:
        gpu_type = SERVING_ACCELERATORS[serving_on]
        data["serving"]["accelerator"] = "gpu"
        data["serving"]["resources"]["gpu"] = {"type": gpu_type, "count": 1}
        # the canary's peak (3 replicas + 1 surge pod) on one-accelerator nodes: what the pools hold (MS224)
        data["serving"]["replicas"] = {"min": 1, "max": 3}
        if gpu_type.startswith("aws-"):
            data["infrastructure"]["node_pools"]["inf"] = {"instance_type": "inf2.xlarge", "min": 0, "max": 4}
    buf = io.StringIO()
    rt.dump(data, buf)
    return buf.getvalue()


@cache
def compiled(target: str, serving_on: str | None = None) -> tuple:
    """(IR, {path: text}) of one target for a variant."""
    loaded = mlspec.loads(spec_text(serving_on), "specs/churn.yaml")
    result = mlspec.compile(loaded, [target])
    return result.ir, {a.path: a.data().decode() for a in result.artifacts[target]}


def terraform(serving_on: str | None = None) -> tuple:
    ir, files = compiled("terraform", serving_on)
    return ir, json.loads(files["main.tf.json"])


def kubernetes(serving_on: str | None = None) -> tuple:
    ir, files = compiled("kubernetes", serving_on)
    manifests = (text for path, text in files.items() if path.endswith(".yaml"))
    return ir, [doc for text in manifests for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]


def kinds(objects, kind):
    return [o for o in objects if o.get("kind") == kind]


def tolerations(placement) -> list[tuple[str, str, str]]:
    return [(t.key, t.value, t.effect) for t in placement.tolerations]


def gpu_steps(ir):
    return [s for p in ir.pipelines for s in p.steps if s.placement.gpu]


# ------------------------------------------------------------------------------------------------ placement


@pytest.mark.parametrize("serving_on", [None, *SERVING_ACCELERATORS])
def test_node_groups_offer_what_the_placements_ask_for(serving_on):
    """Every pinned GPU placement lands on a node group with its labels, its taints and the AMI whose
    driver advertises its resource."""
    ir, tf = terraform(serving_on)
    groups = tf["resource"]["aws_eks_node_group"]
    placements = [s.placement for s in gpu_steps(ir)] + ([ir.serving.placement] if serving_on else [])
    assert placements
    for placement in placements:
        pool = ir.node_pool(placement.node_pool)
        assert pool is not None and pool.gpu is not None
        assert (pool.gpu.resource, pool.gpu.product) == (placement.gpu.resource, placement.gpu.product)
        assert placement.gpu.count <= pool.gpu.per_node
        group = groups[pool.task_id]
        assert placement.node_selector.items() <= group["labels"].items()
        assert [(t["key"], t["value"], TF_EFFECT[t["effect"]]) for t in group["taint"]] == tolerations(
            placement
        )
        assert group["ami_type"] == DRIVER_AMI[placement.gpu.resource]
    for pool in ir.infrastructure.node_pools:
        if pool.gpu is None:  # CPU pools: no taint keeps CPU work off, no GPU driver
            assert groups[pool.task_id]["ami_type"] == "AL2023_x86_64_STANDARD"
            assert groups[pool.task_id]["taint"] == []


@pytest.mark.parametrize("serving_on", [None, *SERVING_ACCELERATORS])
def test_kubernetes_pods_follow_their_placement(serving_on):
    ir, objects = kubernetes(serving_on)
    _, tf = terraform(serving_on)
    pods = {}
    for o in objects:
        if o["kind"] in ("Deployment", "Rollout"):
            pods[o["metadata"]["name"]] = o["spec"]["template"]["spec"]
        elif o["kind"] == "CronJob":
            pods[o["metadata"]["name"]] = o["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    placement = ir.serving.placement
    servers = {v.workload for v in ir.serving.variants}  # every model server of the rollout
    assert ir.serving.id in servers
    amounts = {"cpu": placement.cpu, "memory": placement.memory}
    if placement.gpu:
        amounts[placement.gpu.resource] = str(placement.gpu.count)
    for server in (pods[name] for name in servers):
        assert server["containers"][0]["resources"] == {"requests": amounts, "limits": amounts}
        assert server.get("nodeSelector", {}) == placement.node_selector
        assert [(t["key"], t["value"], t["effect"]) for t in server.get("tolerations", [])] == tolerations(
            placement
        )
        assert all(t["operator"] == "Equal" for t in server.get("tolerations", []))
        if placement.node_pool:  # the node group Terraform creates carries the selected labels
            group = tf["resource"]["aws_eks_node_group"][ir.node_pool(placement.node_pool).task_id]
            assert server["nodeSelector"].items() <= group["labels"].items()
    gpu_resources = {p.gpu.resource for p in ir.infrastructure.node_pools if p.gpu}
    for name, spec in pods.items():
        if name not in servers:  # the cache and the CronJobs are CPU work: off the accelerator pools
            assert "tolerations" not in spec
            assert not gpu_resources & set(spec["containers"][0]["resources"]["limits"])


def test_kubeflow_tasks_follow_their_placement():
    """Needs the kubeflow backend on IR 2.0 (branch ir2-orch)."""
    ir, files = compiled("kubeflow")
    documents = list(yaml.safe_load_all(files["pipeline.yaml"]))
    executors = documents[0]["deploymentSpec"]["executors"]
    platform = documents[-1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    steps = ir.pipeline("training").steps
    assert gpu_steps(ir)
    for step in steps:
        resources = executors[f"exec-{step.id}"]["container"]["resources"]
        k8s = platform.get(f"exec-{step.id}", {})
        p = step.placement
        assert (resources["resourceCpuLimit"], resources["resourceMemoryLimit"]) == (p.cpu, p.memory)
        assert (resources["resourceCpuRequest"], resources["resourceMemoryRequest"]) == (p.cpu, p.memory)
        if p.gpu:
            assert resources["accelerator"]["resourceType"] == p.gpu.resource
            assert resources["accelerator"]["resourceCount"] == str(p.gpu.count)
        else:
            assert "accelerator" not in resources
        assert k8s.get("nodeSelector", {}).get("labels", {}) == p.node_selector
        assert [(t["key"], t["value"], t["effect"]) for t in k8s.get("tolerations", [])] == tolerations(p)


def _pod_operators(dag_source: str) -> dict[str, dict[str, ast.expr]]:
    """KubernetesPodOperator(...) and KubernetesPodOperator.partial(...) calls: pod name -> keyword nodes."""
    out = {}
    for node in ast.walk(ast.parse(dag_source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        base = func.value if isinstance(func, ast.Attribute) else None
        if name == "KubernetesPodOperator" or (
            name == "partial" and isinstance(base, ast.Name) and base.id == "KubernetesPodOperator"
        ):
            keywords = {kw.arg: kw.value for kw in node.keywords if kw.arg}
            out[ast.literal_eval(keywords["name"])] = keywords
    return out


def _literal(node: ast.expr | None):
    """A literal(...) or plain literal argument of the generated DAG."""
    if node is None:
        return None
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "literal":
        node = node.args[0]
    return ast.literal_eval(node)


def test_airflow_pods_follow_their_placement():
    """Needs the airflow backend on IR 2.0 (branch ir2-orch)."""
    ir, files = compiled("airflow")
    operators = _pod_operators(files[f"{ir.system.name}_training.py"])
    steps = ir.pipeline("training").steps
    assert set(operators) == {s.id for s in steps}
    for step in steps:
        keywords, p = operators[step.id], step.placement
        resources = keywords["container_resources"]
        assert isinstance(resources, ast.Call)
        amounts = {kw.arg: ast.literal_eval(kw.value) for kw in resources.keywords}
        limits = {"cpu": p.cpu, "memory": p.memory, **({p.gpu.resource: str(p.gpu.count)} if p.gpu else {})}
        assert amounts["limits"] == limits
        assert {k: v for k, v in amounts["requests"].items() if k in ("cpu", "memory")} == {
            "cpu": p.cpu,
            "memory": p.memory,
        }
        assert (_literal(keywords.get("node_selector")) or {}) == p.node_selector
        found = []
        if "tolerations" in keywords:
            for call in keywords["tolerations"].elts:  # type: ignore[attr-defined]
                kw = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
                assert kw["operator"] == "Equal"
                found.append((kw["key"], kw["value"], kw["effect"]))
        assert found == tolerations(p)


# ------------------------------------------------------------------------------------------------ SLO


def test_prometheus_rule_reads_serving_slo():
    from mlspec.units import duration_seconds

    ir, objects = kubernetes()
    slo = ir.serving.slo
    objective = slo.objective
    (rule,) = [o for o in kinds(objects, "PrometheusRule") if o["metadata"]["name"].endswith("-slo")]
    rules = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    records = {r["record"]: r["expr"] for r in rules if "record" in r}
    alerts = [r for r in rules if "alert" in r]
    # exact bucket of the objective, which the server exports (it is one of the IR's buckets)
    buckets = set(re.findall(r'le="([^"]+)"', " ".join(records.values())))
    assert buckets == {repr(objective.latency_bucket_seconds)}
    assert objective.latency_bucket_seconds in slo.histogram_buckets_seconds
    assert "histogram_quantile" not in json.dumps(rule)
    # errors are the IR's status classes, on the contracts' metric names
    assert slo.error_status_classes == [5]
    for name, expr in records.items():
        metric = contracts.REQUESTS_TOTAL if "request_errors" in name else contracts.REQUEST_DURATION
        assert metric in expr
        assert ('code=~"5.."' in expr) == ("request_errors" in name)
    # every burn-rate alert of the IR, with its windows, factor and the right budget
    windows = {w for a in objective.burn_rate_alerts for w in (a.long_window, a.short_window)}
    assert {n.rsplit("ratio_rate", 1)[1] for n in records} == windows
    assert all(duration_seconds(w) <= objective.window_seconds for w in windows)
    budget = {"availability": objective.error_budget, "latency": round(1 - slo.latency_quantile, 10)}
    series = {"availability": "request_errors", "latency": "request_slow"}
    for alert in alerts:
        kind, severity = alert["labels"]["slo"], alert["labels"]["severity"]
        terms = alert["expr"].split("\nor\n")
        expected = [a for a in objective.burn_rate_alerts if a.severity == severity]
        assert len(terms) == len(expected)
        for term, a in zip(terms, expected, strict=True):
            limit = f"({a.factor!r} * {budget[kind]!r})"
            assert f"mlspec:{series[kind]}:ratio_rate{a.long_window} > {limit}" in term
            assert f"mlspec:{series[kind]}:ratio_rate{a.short_window} > {limit}" in term
    assert {(a["labels"]["slo"], a["labels"]["severity"]) for a in alerts} == {
        (kind, a.severity) for kind in budget for a in objective.burn_rate_alerts
    }


def test_rollout_analysis_judges_like_the_alerts():
    """The canary's AnalysisTemplate counts the same errors and reads latency from an exact bucket, as the
    alerts do, with the IR's rollback limits."""
    ir, objects = kubernetes()
    slo = ir.serving.slo
    rollback = slo.rollback
    (template,) = kinds(objects, "AnalysisTemplate")
    metrics = {m["name"]: m for m in template["spec"]["metrics"]}
    assert set(metrics) == {"error-rate", "slow-request-rate"}
    errors = metrics["error-rate"]["provider"]["prometheus"]["query"]
    slow = metrics["slow-request-rate"]["provider"]["prometheus"]["query"]
    assert contracts.REQUESTS_TOTAL in errors and 'code=~"5.."' in errors
    assert re.findall(r'le="([^"]+)"', slow) == [repr(rollback.max_latency_bucket_seconds)]
    assert rollback.max_latency_bucket_seconds in slo.histogram_buckets_seconds
    assert contracts.REQUEST_DURATION in slow and "histogram_quantile" not in slow
    limits = {name: m["successCondition"].rsplit("<= ", 1)[1] for name, m in metrics.items()}
    assert float(limits["error-rate"]) == rollback.max_error_rate
    assert float(limits["slow-request-rate"]) == round(1 - slo.latency_quantile, 10)
    # the alerts' error ratio is the same expression over another selector and window
    (rule,) = [o for o in kinds(objects, "PrometheusRule") if o["metadata"]["name"].endswith("-slo")]
    record = next(
        r["expr"]
        for g in rule["spec"]["groups"]
        for r in g["rules"]
        if r.get("record", "").endswith("errors:ratio_rate5m")
    )

    def shape(expr: str) -> str:  # the expression without its label matchers, windows and grouping
        expr = expr.replace("{{args.revision-hash}}", "hash")
        return re.sub(r"\{[^}]*\}|\[[^\]]*\]|sum by \([^)]*\)|sum", "", expr)

    assert shape(record) == shape(errors)
    assert 'code=~"5.."' in record


# ------------------------------------------------------------------------------------------------ identity


def test_service_accounts_roles_and_trust_agree():
    ir, tf = terraform()
    _, k8s = kubernetes()
    accounts = {o["metadata"]["name"]: o for o in kinds(k8s, "ServiceAccount")}
    roles = {r["name"]: key for key, r in tf["resource"]["aws_iam_role"].items()}
    documents = tf["data"]["aws_iam_policy_document"]
    for sa in ir.service_accounts:
        key = roles[sa.role_name]  # Terraform creates the IRSA role under the IR's exact name ...
        subjects = [
            value
            for statement in documents[f"{key}_assume"]["statement"]
            for condition in statement["condition"]
            if condition["variable"].endswith(":sub")
            for value in condition["values"]
        ]
        assert subjects == [f"system:serviceaccount:{sa.namespace}:{sa.name}"]  # ... trusted for that SA
        assert f"{sa.id}_role_arn" in tf["output"]
        k8s_sa = accounts[sa.name]  # ... and Kubernetes creates that SA annotated with the role
        assert k8s_sa["metadata"]["namespace"] == sa.namespace
        assert k8s_sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == sa.role_arn
        assert sa.role_arn.endswith(f":role/{sa.role_name}")


def test_airflow_pods_run_as_the_training_account_and_are_allowed_out():
    """Needs the airflow backend on IR 2.0 (branch ir2-orch)."""
    ir, files = compiled("airflow")
    _, k8s = kubernetes()
    dag = files[f"{ir.system.name}_training.py"]
    training = ir.service_account("training")
    operators = _pod_operators(dag)
    assert {ast.literal_eval(op["service_account_name"]) for op in operators.values()} == {training.name}
    assert {_literal(op["namespace"]) for op in operators.values()} == {training.namespace}
    policy = next(p for p in kinds(k8s, "NetworkPolicy") if p["metadata"]["name"].endswith("pipeline-steps"))
    selector = policy["spec"]["podSelector"]
    assert len(operators) == len(ir.pipeline("training").steps)
    for op in operators.values():
        labels = _literal(op["labels"])
        assert labels[contracts.SYSTEM_LABEL] == ir.system.name
        assert set(selector["matchLabels"].items()) <= set(labels.items())
        assert all(expr["key"] in labels for expr in selector["matchExpressions"])


def test_bucket_and_repository_agree():
    ir, tf = terraform()
    _, k8s = kubernetes()
    infra = ir.infrastructure
    assert tf["resource"]["aws_s3_bucket"]["artifacts"]["bucket"] == infra.artifacts_bucket
    assert tf["resource"]["aws_ecr_repository"]["models"]["name"] == infra.container_registry
    assert ir.artifacts_root.startswith(f"s3://{infra.artifacts_bucket}/")
    (config,) = [c for c in kinds(k8s, "ConfigMap") if contracts.IR_FILE in c["data"]]
    carried = json.loads(config["data"][contracts.IR_FILE])
    assert carried["infrastructure"]["artifacts_bucket"] == infra.artifacts_bucket


def test_kubeflow_runs_under_the_artifacts_root():
    """Needs the kubeflow backend on IR 2.0 (branch ir2-orch)."""
    ir, files = compiled("kubeflow")
    assert f"{ir.artifacts_root}/runs" in files["pipeline.yaml"]
    # churn's loop belongs to Airflow: Kubeflow schedules nothing and compiles no monitor of its own
    assert ir.retraining.owner == "airflow"
    assert "recurring-run.json" not in files and "monitor.yaml" not in files


def test_one_target_schedules_training_and_owns_the_monitor():
    """Exactly one target compiles the training cron, the retrain event and the monitor of a system."""
    ir, airflow = compiled("airflow")
    _, kubeflow = compiled("kubeflow")
    _, k8s = kubernetes()
    owner = ir.retraining.owner
    assert owner == ir.monitoring.owner == "airflow"
    cron = next(t.cron for t in ir.retraining.triggers if t.kind == "schedule")
    assert cron in airflow["churn_training.py"] and "churn_monitoring.py" in airflow
    assert (
        not any(name.endswith("recurring-run.json") for name in kubeflow) and "monitor.yaml" not in kubeflow
    )
    assert not [c for c in kinds(k8s, "CronJob") if c["metadata"]["name"] == f"{ir.system.name}-monitor"]
    # owned by Kubeflow instead, the schedules and the monitor move there
    owned = mlspec.loads(
        spec_text(None).replace("  cooldown: 24h", "  cooldown: 24h\n  sink: kubeflow"), "c.yaml"
    )
    ir = mlspec.compile(owned, ["kubeflow"]).ir
    result = mlspec.compile(owned, ["kubeflow", "airflow"])
    files = {t: [a.path for a in arts] for t, arts in result.artifacts.items()}
    assert ir.retraining.owner == "kubeflow" and ir.retraining.sink == "kubeflow"
    assert {"monitor.yaml", "recurring-run.json", "monitor-recurring-run.json"} <= set(files["kubeflow"])
    assert "churn_monitoring.py" not in files["airflow"]
    training = next(a for a in result.artifacts["airflow"] if a.path == "churn_training.py").data().decode()
    assert "schedule=None" in training  # started by hand only: Kubeflow's cron owns the schedule
