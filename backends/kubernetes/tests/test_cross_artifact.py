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


def test_gpu_scheduling_equals_the_ir_node_pool(built):
    ir, _, objects = built["gpu"]
    (pool,) = [p for p in ir.infrastructure.node_pools if p.gpu_count]
    specs = dict(all_pod_specs(objects))
    spec = specs[ir.serving.id]
    assert spec["nodeSelector"] == pool.node_selector
    assert spec["tolerations"] == [
        {"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect} for t in pool.taints
    ]
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == str(
        ir.serving.resources.gpu_count
    )
    # CPU workloads must not land on (or tolerate) the GPU pool.
    for name, other in specs.items():
        if name != ir.serving.id:
            assert "tolerations" not in other and other.get("nodeSelector") != pool.node_selector


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
    (cm,) = by_kind(objects, "ConfigMap")
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


def test_monitor_cronjob_runs_on_the_ir_schedule(built):
    ir, _, objects = built["canary"]
    (cron,) = by_kind(objects, "CronJob")
    assert cron["spec"]["schedule"] == ir.monitoring.schedule
    (c,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["mlspec"] and c["args"] == [
        "monitor",
        "/etc/mlspec/ir.json",
        "--run-dir",
        f"{ir.artifacts_root}/monitoring",
    ]


def _alert_le(objects) -> set[str]:
    (rule,) = by_kind(objects, "PrometheusRule")
    exprs = " ".join(r["expr"] for g in rule["spec"]["groups"] for r in g["rules"])
    return set(re.findall(r'le="([^"]+)"', exprs))


@pytest.mark.parametrize("name", ["canary", "env-staging", "a-b"])
def test_alert_bucket_is_the_servers_slo_bucket(built, name):
    """The `le` the alerts read is exported verbatim by the real server metrics for this IR."""
    from prometheus_client import generate_latest

    from mlspec.serving.config import from_ir
    from mlspec.serving.metrics import Metrics

    ir, _, objects = built[name]
    assert ir.serving.slo.latency_bucket_seconds in ir.serving.latency_buckets_seconds
    (le,) = _alert_le(objects)
    assert float(le) == ir.serving.slo.latency_bucket_seconds
    config = from_ir(ir)
    metrics = Metrics(config.latency_buckets, config.max_batch_size)
    metrics.latency.labels(route="infer").observe(0.01)
    metrics.requests.labels(route="infer", code="200").inc()
    exposition = generate_latest(metrics.registry).decode()
    assert f'mlspec_request_duration_seconds_bucket{{le="{le}",route="infer"}}' in exposition
    assert 'mlspec_requests_total{code="200",route="infer"}' in exposition


def test_burn_rate_windows_and_factors(built):
    ir, _, objects = built["canary"]
    (rule,) = by_kind(objects, "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert len(alerts) == 4
    page = next(
        r
        for r in alerts.values()
        if r["labels"] == {"severity": "page", "slo": "availability", "service": ir.serving.id}
    )
    assert "ratio_rate1h > (14.4 * 0.001)" in page["expr"] and "ratio_rate5m > (14.4 * 0.001)" in page["expr"]
    assert "ratio_rate6h > (6.0 * 0.001)" in page["expr"] and "ratio_rate30m > (6.0 * 0.001)" in page["expr"]
    ticket = next(
        r for r in alerts.values() if r["labels"]["severity"] == "ticket" and r["labels"]["slo"] == "latency"
    )
    assert "ratio_rate1d > (3.0 * 0.01)" in ticket["expr"] and "ratio_rate2h > (3.0 * 0.01)" in ticket["expr"]
    assert "ratio_rate3d > (1.0 * 0.01)" in ticket["expr"] and "ratio_rate6h > (1.0 * 0.01)" in ticket["expr"]
    recorded = {r["record"] for g in rule["spec"]["groups"] for r in g["rules"] if "record" in r}
    used = set(re.findall(r"mlspec:[a-z_]+:ratio_rate\w+", json.dumps(list(alerts.values()))))
    assert used <= recorded
