"""The manifests agree with the IR (and so with Terraform, which reads the same IR fields) and with
the model server's real metrics."""

from __future__ import annotations

import json
import re

import pytest

from mlspec.ir.model import IR


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def all_pod_specs(objects):
    for o in objects:
        if o["kind"] in ("Deployment", "Rollout"):
            yield o["metadata"]["name"], o["spec"]["template"]["spec"]
        elif o["kind"] == "CronJob":
            yield o["metadata"]["name"], o["spec"]["jobTemplate"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("name", ["gpu", "neuron", "gpu-unmanaged"])
def test_accelerator_scheduling_equals_the_ir_placement(built, name):
    ir, _, objects = built[name]
    placement = ir.serving.placement
    specs = dict(all_pod_specs(objects))
    spec = specs[ir.serving.id]
    (container,) = spec["containers"]
    expected = {"cpu": placement.cpu, "memory": placement.memory, placement.gpu.resource: "1"}
    assert container["resources"] == {"requests": expected, "limits": expected}
    assert spec.get("nodeSelector", {}) == placement.node_selector
    assert spec.get("tolerations", []) == [
        {"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect}
        for t in placement.tolerations
    ]
    pool = ir.node_pool(placement.node_pool)
    if name == "gpu-unmanaged":
        # No pool in the IR: the cluster is not mlspec's, so the pod only requests the resource.
        assert pool is None and "nodeSelector" not in spec and "tolerations" not in spec
        return
    assert pool is not None and pool.gpu is not None
    assert (pool.gpu.product, pool.gpu.resource) == (placement.gpu.product, placement.gpu.resource)
    assert placement.node_selector == pool.node_selector and placement.tolerations == pool.taints
    # CPU workloads (the cache next to a GPU server, the CronJobs) neither select nor tolerate the pool;
    # the rollout's second model server is placed like the first.
    servers = {v.workload for v in ir.serving.variants}
    for pod_name, other in specs.items():
        if pod_name in servers:
            assert other.get("nodeSelector", {}) == placement.node_selector
        else:
            assert "tolerations" not in other and other.get("nodeSelector") != pool.node_selector
            assert placement.gpu.resource not in other["containers"][0]["resources"]["limits"]


def test_cpu_workloads_request_their_placement(built):
    ir, _, objects = built["canary"]
    specs = dict(all_pod_specs(objects))
    monitor = next(s for s in ir.pipeline("monitoring").steps if s.action == "monitor").placement
    for pod_name, placement in (
        (ir.serving.id, ir.serving.placement),
        (f"{ir.system.name}-rollout", monitor),  # the analysis CronJob runs on the monitor step's placement
    ):
        amounts = {"cpu": placement.cpu, "memory": placement.memory}
        assert specs[pod_name]["containers"][0]["resources"] == {"requests": amounts, "limits": amounts}


@pytest.mark.parametrize("name", ["canary", "shadow", "a-b"])
def test_images_accounts_and_role_arns_equal_the_ir(built, name):
    ir, _, objects = built[name]
    accounts = {o["metadata"]["name"]: o for o in by_kind(objects, "ServiceAccount")}
    for pod_name, spec in all_pod_specs(objects):
        if pod_name == ir.serving.cache.service:
            assert "serviceAccountName" not in spec  # Redis needs no cloud identity
            continue
        assert spec["serviceAccountName"] in accounts
        assert spec["containers"][0]["image"] == ir.images["runtime"]
    for sa in ir.service_accounts:
        # Airflow's KubernetesPodOperator (kubernetes mode) starts the training pods here as this account
        if sa.id == "training" and not ("airflow" in ir.targets and ir.airflow_mode == "kubernetes"):
            assert sa.name not in accounts
            continue
        obj = accounts[sa.name]
        assert obj["metadata"]["namespace"] == sa.namespace
        assert obj["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == sa.role_arn
        assert sa.role_arn == f"arn:aws:iam::{ir.infrastructure.account_id}:role/{sa.role_name}"
        assert obj["automountServiceAccountToken"] is False


def test_configmap_carries_the_ir_and_its_buckets(built):
    ir, _, objects = built["canary"]
    (cm,) = [o for o in by_kind(objects, "ConfigMap") if o["metadata"]["name"] == f"{ir.system.name}-ir"]
    carried = IR.model_validate_json(cm["data"]["ir.json"])
    assert carried == ir
    bucket = ir.infrastructure.artifacts_bucket
    assert carried.artifacts_root.startswith(f"s3://{bucket}/")
    assert carried.serving.prediction_log.startswith(f"s3://{bucket}/")
    checksum = next(o for o in objects if o["kind"] == "Rollout")["spec"]["template"]["metadata"][
        "annotations"
    ]
    import hashlib

    assert checksum["mlspec.io/config-sha256"] == hashlib.sha256(cm["data"]["ir.json"].encode()).hexdigest()


def _crons(objects) -> dict[str, dict]:
    return {c["metadata"]["name"]: c for c in by_kind(objects, "CronJob")}


def _container(cron: dict) -> dict:
    (c,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return c


def test_monitor_cronjob_runs_on_the_ir_schedule_when_kubernetes_owns_the_loop(built):
    ir, _, objects = built["kubernetes-loop"]
    assert ir.monitoring.owner == ir.retraining.owner == ir.retraining.sink == "kubernetes"
    crons = _crons(objects)
    cron = crons["churn-monitor"]
    assert cron["spec"]["schedule"] == ir.monitoring.schedule
    c = _container(cron)
    assert c["command"] == ["mlspec"] and c["args"] == [
        "monitor",
        "/etc/mlspec/ir.json",
        "--run-dir",
        f"{ir.artifacts_root}/monitoring",
    ]
    # the monitor starts retraining Jobs through the API: its container alone mounts a short-lived token,
    # and its Role allows reading the retrain template and creating Jobs, nothing else
    monitor_pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (api,) = [v for v in monitor_pod["volumes"] if v["name"] == "kube-api-access"]
    assert api["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"] == 3600
    assert {
        "name": "kube-api-access",
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
        "readOnly": True,
    } in c["volumeMounts"]
    (role,) = by_kind(objects, "Role")
    assert role["rules"] == [
        {
            "apiGroups": ["batch"],
            "resources": ["cronjobs"],
            "resourceNames": ["churn-retrain"],
            "verbs": ["get"],
        },
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]},
    ]
    (binding,) = by_kind(objects, "RoleBinding")
    assert binding["subjects"][0]["name"] == ir.service_account("monitoring").name
    # the retraining Job: `mlspec run` on the IR, where train runs; scheduled on the training cron (Kubernetes
    # is the only orchestrator, so the schedule trigger is its own)
    retrain = crons["churn-retrain"]
    assert retrain["spec"]["schedule"] == ir.pipeline("training").schedule and not retrain["spec"].get(
        "suspend"
    )
    assert _container(retrain)["args"] == ["run", "/etc/mlspec/ir.json"]
    train = next(s for s in ir.pipeline("training").steps if s.action == "train")
    pod = retrain["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == ir.service_account("training").name
    assert pod.get("nodeSelector", {}) == train.placement.node_selector
    assert pod["automountServiceAccountToken"] is False


def test_only_the_loop_owner_monitors(built):
    """churn's loop belongs to Airflow: no monitor CronJob here, which would race its trigger state."""
    ir, _, objects = built["canary"]
    assert ir.monitoring.owner == "airflow"
    assert set(_crons(objects)) == {"churn-rollout"} and not by_kind(objects, "Role")


def test_the_rollout_analysis_runs_mlspec_analyze(built):
    for name in ("canary", "shadow", "a-b"):
        ir, _, objects = built[name]
        cron = _crons(objects)["churn-rollout"]
        assert cron["spec"]["schedule"] == ir.serving.rollout.analysis.schedule
        c = _container(cron)
        assert c["args"][:3] == ["analyze", "/etc/mlspec/ir.json", "--apply"]
        assert {
            "name": "MLSPEC_PROMETHEUS_URL",
            "value": "http://prometheus-operated.monitoring.svc:9090",
        } in c["env"]
    for name in ("rolling", "blue-green"):  # promoted at training: nothing to analyze online
        _, _, objects = built[name]
        assert "churn-rollout" not in _crons(objects)


def _rules(objects, name):
    rule = next(o for o in by_kind(objects, "PrometheusRule") if o["metadata"]["name"] == name)
    return [r for g in rule["spec"]["groups"] for r in g["rules"]]


def _alert_le(objects, ir) -> set[str]:
    exprs = " ".join(r["expr"] for r in _rules(objects, f"{ir.serving.id}-slo"))
    return set(re.findall(r'le="([^"]+)"', exprs))


@pytest.mark.parametrize("name", ["canary", "env-staging", "a-b"])
def test_alert_bucket_is_the_servers_slo_bucket(built, name):
    """The `le` the alerts read is exported verbatim by the server's metrics with the IR's buckets."""
    from prometheus_client import generate_latest

    from mlspec.serving.metrics import Metrics

    ir, _, objects = built[name]
    slo = ir.serving.slo
    assert slo.objective.latency_bucket_seconds in slo.histogram_buckets_seconds
    (le,) = _alert_le(objects, ir)
    assert float(le) == slo.objective.latency_bucket_seconds
    metrics = Metrics(slo.histogram_buckets_seconds, ir.serving.max_batch_size)
    metrics.latency.labels(route="infer").observe(0.01)
    metrics.requests.labels(route="infer", code="200").inc()
    exposition = generate_latest(metrics.registry).decode()
    assert f'mlspec_request_duration_seconds_bucket{{le="{le}",route="infer"}}' in exposition
    assert 'mlspec_requests_total{code="200",route="infer"}' in exposition


def test_server_config_takes_the_ir_buckets(built):
    """The server builds its histogram from the IR's buckets, so every threshold is an exact bucket."""
    from mlspec.serving.config import from_ir

    ir, _, _ = built["canary"]
    assert from_ir(ir).latency_buckets == ir.serving.slo.histogram_buckets_seconds


def test_burn_rate_alerts_follow_the_ir(built):
    ir, _, objects = built["canary"]
    objective = ir.serving.slo.objective
    rules = _rules(objects, f"{ir.serving.id}-slo")
    alerts = {r["alert"]: r for r in rules if "alert" in r}
    severities = {a.severity for a in objective.burn_rate_alerts}
    assert len(alerts) == 2 * len(severities)  # availability and latency, per severity
    budgets = {
        "availability": objective.error_budget,
        "latency": round(1 - ir.serving.slo.latency_quantile, 10),
    }
    for alert in alerts.values():
        labels = alert["labels"]
        budget = budgets[labels["slo"]]
        series = "request_errors" if labels["slo"] == "availability" else "request_slow"
        expected = [
            f"(mlspec:{series}:ratio_rate{a.long_window} > ({a.factor!r} * {budget!r})"
            f" and mlspec:{series}:ratio_rate{a.short_window} > ({a.factor!r} * {budget!r}))"
            for a in objective.burn_rate_alerts
            if a.severity == labels["severity"]
        ]
        assert alert["expr"].split("\nor\n") == expected
    recorded = {r["record"] for r in rules if "record" in r}
    used = set(re.findall(r"mlspec:[a-z_]+:ratio_rate\w+", json.dumps(list(alerts.values()))))
    assert used == recorded


def test_rules_read_the_slo_policy_not_defaults(built):
    """Another policy in the IR (4xx and 5xx as errors, one page alert on other windows) changes the rules
    and the analysis together: nothing in the backend re-derives them."""
    from mlspec_kubernetes import delivery, slo

    from mlspec.backends import EmitContext
    from mlspec.ir.model import BurnRateAlert

    ir, _, _ = built["canary"]
    policy = ir.serving.slo
    objective = policy.objective.model_copy(
        update={
            "burn_rate_alerts": [
                BurnRateAlert(severity="page", long_window="2h", short_window="10m", factor=10)
            ]
        }
    )
    policy = policy.model_copy(
        update={"error_status_classes": [4, 5], "objective": objective, "latency_quantile": 0.95}
    )
    ir = ir.model_copy(update={"serving": ir.serving.model_copy(update={"slo": policy})})
    rule = slo.prometheus_rule(ir)
    rules = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    assert {r["record"] for r in rules if "record" in r} == {
        f"mlspec:request_{series}:ratio_rate{w}" for series in ("errors", "slow") for w in ("10m", "2h")
    }
    assert all(
        'code=~"4..|5.."' in r["expr"]
        for r in rules
        if r.get("record", "").startswith("mlspec:request_errors")
    )
    latency = next(r for r in rules if r.get("labels", {}).get("slo") == "latency")
    assert latency["expr"].startswith("(mlspec:request_slow:ratio_rate2h > (10.0 * 0.05)")
    template = delivery.analysis_template(ir, EmitContext(), count=None)
    metrics = {m["name"]: m for m in template["spec"]["metrics"]}
    assert 'code=~"4..|5.."' in metrics["error-rate"]["provider"]["prometheus"]["query"]
    assert metrics["slow-request-rate"]["successCondition"].endswith("result[0] <= 0.05")


def test_latency_percentiles_are_recorded_for_dashboards(built):
    ir, _, objects = built["shadow"]
    rules = _rules(objects, f"{ir.serving.id}-latency")
    assert [r["record"] for r in rules] == [
        f"mlspec:request_duration_seconds:p{p:g}_rate5m" for p in ir.monitoring.latency_percentiles
    ]
    for rule, p in zip(rules, ir.monitoring.latency_percentiles, strict=True):
        assert rule["expr"].startswith(
            f"histogram_quantile({p / 100!r}, sum by (namespace, job, variant, le)"
        )
        # every server, the shadow included: its latency is what a shadow rollout is for
        assert f'job=~"{ir.serving.id}|{ir.serving.id}-shadow"' in rule["expr"]
