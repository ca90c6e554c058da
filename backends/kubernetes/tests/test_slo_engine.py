"""Prometheus itself (promtool) evaluates the generated rules and the rollout analysis over the series the
server's real metrics expose: the alerts and the analysis call the same traffic an error, or slow, the way
the IR's `serving.slo` defines it (status classes, exact buckets), not by histogram_quantile interpolation."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

PROMTOOL = shutil.which("promtool")
# the new revision's pod-template hash the analysis is run for
HASH = "6d4f9c7b8"  # pragma: allowlist secret
MINUTES = 80  # of synthetic traffic, one scrape a minute
EVAL = "75m"
PER_MINUTE = 1000


def promtool(*args: str, cwd=None) -> subprocess.CompletedProcess:
    if PROMTOOL is None:
        pytest.fail("promtool is not installed (scripts/setup.sh installs Debian's prometheus package)")
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def server_series(ir, codes: dict[str, int], latencies: dict[float, int]) -> list[dict[str, str]]:
    """One minute of traffic recorded by the server's own Metrics, as promtool input series that grow by
    that minute's counts every minute, with the labels a scrape adds (namespace, job, revision hash)."""
    from mlspec.serving.metrics import Metrics

    metrics = Metrics(ir.serving.slo.histogram_buckets_seconds, ir.serving.max_batch_size)
    for code, count in codes.items():
        metrics.requests.labels(route="infer", code=code).inc(count)
    for seconds, count in latencies.items():
        for _ in range(count):
            metrics.latency.labels(route="infer").observe(seconds)
    scrape = {"namespace": ir.system.namespace, "job": ir.serving.id, "rollouts_pod_template_hash": HASH}
    series = []
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name.endswith(("_bucket", "_count")) or sample.name == "mlspec_requests_total":
                labels = ",".join(f'{k}="{v}"' for k, v in sorted({**sample.labels, **scrape}.items()))
                series.append(
                    {"series": f"{sample.name}{{{labels}}}", "values": f"0+{sample.value:g}x{MINUTES}"}
                )
    return series


def rule_file(objects, name) -> dict:
    rule = next(o for o in objects if o["kind"] == "PrometheusRule" and o["metadata"]["name"] == name)
    return rule["spec"]


def analysis_verdicts(objects) -> list[dict]:
    """Each analysis metric as a PromQL expression that is 1 when its successCondition fails, else 0
    (no result, e.g. no 5xx series at all, or NaN passes, as the successCondition says)."""
    (template,) = [o for o in objects if o["kind"] == "AnalysisTemplate"]
    out = []
    for metric in template["spec"]["metrics"]:
        limit = re.fullmatch(r".*result\[0\] <= ([0-9.e-]+)", metric["successCondition"]).group(1)
        query = metric["provider"]["prometheus"]["query"].replace("{{args.revision-hash}}", HASH)
        out.append({"name": metric["name"], "expr": f"(({query}) > bool {limit}) or vector(0)"})
    return out


def alerts_by_verdict(rules: dict) -> dict[tuple[str, str], dict]:
    """(slo, severity) -> the alert rule."""
    return {
        (r["labels"]["slo"], r["labels"]["severity"]): r
        for g in rules["groups"]
        for r in g["rules"]
        if "alert" in r
    }


# name -> (status codes per minute, latency seconds -> requests per minute, alerts firing, analyses failing)
SCENARIOS = {
    # 4xx are the client's; every request in the objective's bucket (interpolation puts p99 right below it)
    "healthy": ({"200": 700, "404": 300}, {0.15: PER_MINUTE}, set(), set()),
    # 2% 5xx: above 14.4 x the 0.1% budget, and the 1% rollback limit
    "errors": (
        {"200": 980, "503": 20},
        {0.15: PER_MINUTE},
        {("availability", "page"), ("availability", "ticket")},
        {"error-rate"},
    ),
    # 20% of requests at 300 ms: slower than the 200 ms objective's bucket and the 250 ms rollback bucket
    "slow": (
        {"200": PER_MINUTE},
        {0.15: 800, 0.3: 200},
        {("latency", "page"), ("latency", "ticket")},
        {"slow-request-rate"},
    ),
    # 10% at 220 ms: slow for the SLO (6 x 1% budget over 6h/30m pages), within the rollback bucket
    "slow-for-the-slo-only": (
        {"200": PER_MINUTE},
        {0.15: 900, 0.22: 100},
        {("latency", "page"), ("latency", "ticket")},
        set(),
    ),
}


def test_alerts_and_analysis_judge_traffic_alike(built, tmp_path):
    ir, _, objects = built["canary"]
    slo = ir.serving.slo
    assert slo.rollback.max_latency_bucket_seconds == 0.25 and slo.objective.latency_bucket_seconds == 0.2
    rules = rule_file(objects, f"{ir.serving.id}-slo")
    (tmp_path / "slo.yaml").write_text(yaml.safe_dump(rules))
    alerts = alerts_by_verdict(rules)
    assert len(alerts) == 4
    verdicts = analysis_verdicts(objects)
    assert {v["name"] for v in verdicts} == {"error-rate", "slow-request-rate"}
    scrape = {"namespace": ir.system.namespace, "job": ir.serving.id}
    tests = []
    for name, (codes, latencies, firing, failing) in SCENARIOS.items():
        alert_tests = [
            {
                "eval_time": EVAL,
                "alertname": rule["alert"],
                "exp_alerts": [
                    {"exp_labels": {**rule["labels"], **scrape}, "exp_annotations": rule["annotations"]}
                ]
                if key in firing
                else [],
            }
            for key, rule in sorted(alerts.items())
        ]
        expr_tests = [
            {
                "eval_time": EVAL,
                "expr": v["expr"],
                "exp_samples": [{"labels": "{}", "value": 1 if v["name"] in failing else 0}],
            }
            for v in verdicts
        ]
        tests.append(
            {
                "name": name,
                "interval": "1m",
                "input_series": server_series(ir, codes, latencies),
                "alert_rule_test": alert_tests,
                "promql_expr_test": expr_tests,
            }
        )
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump({"rule_files": ["slo.yaml"], "tests": tests}))
    out = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("name", ["canary", "a-b", "shadow", "gpu-unmanaged"])
def test_promtool_accepts_every_rule(built, name, tmp_path):
    _, _, objects = built[name]
    files = []
    for rule in (o for o in objects if o["kind"] == "PrometheusRule"):
        path = tmp_path / f"{rule['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(rule["spec"]))
        files.append(str(path))
    assert len(files) == 2  # the SLO and the dashboards' latency percentiles
    out = promtool("check", "rules", *files)
    assert out.returncode == 0, out.stdout + out.stderr
