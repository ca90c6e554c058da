"""SLO alerting: recording rules and multi-window, multi-burn-rate alerts (Google SRE workbook, ch. 5),
plus the ServiceMonitor that scrapes the server.

Metric contract with the model server (mlspec serve):
  mlspec_request_duration_seconds  histogram, buckets = IR serving.latency_buckets_seconds
  mlspec_requests_total{code="<HTTP status>"}  counter
The latency SLO is read from the bucket whose `le` equals IR serving.slo.latency_bucket_seconds exactly,
formatted the way prometheus_client formats `le` (Go float formatting), so no interpolation is involved.
"""

from __future__ import annotations

import math
from typing import Any

from mlspec.ir.model import IR
from mlspec_kubernetes.meta import dict_metadata, serving_of

MONITORING_API = "monitoring.coreos.com/v1"
REQUESTS = "mlspec_requests_total"
DURATION = "mlspec_request_duration_seconds"
# (severity, long window, short window, burn-rate factor)
BURN_RATES = (
    ("page", "1h", "5m", 14.4),
    ("page", "6h", "30m", 6.0),
    ("ticket", "1d", "2h", 3.0),
    ("ticket", "3d", "6h", 1.0),
)
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
LATENCY_QUANTILE = 0.99  # the latency objective is a p99: 1% of requests may exceed the bucket


def go_float(value: float) -> str:
    """`le` label text as prometheus_client writes it (its floatToGoString)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(float(value))
    dot = text.find(".")
    if value > 0 and dot > 6:
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+0{dot - 1}"
    return text


def _num(value: float) -> str:
    return repr(round(value, 10))


def user_facing_jobs(ir: IR) -> list[str]:
    """Prometheus `job` labels (= Service names) of the Services that answer users."""
    s = serving_of(ir)
    return [s.id, f"{s.id}-challenger"] if s.rollout.strategy == "a-b" else [s.id]


def prometheus_rule(ir: IR) -> dict[str, Any]:
    s = serving_of(ir)
    assert s is not None and s.slo is not None
    jobs = user_facing_jobs(ir)
    job = f'job="{jobs[0]}"' if len(jobs) == 1 else f'job=~"{"|".join(jobs)}"'
    sel = f'namespace="{ir.system.namespace}",{job}'
    le = go_float(s.slo.latency_bucket_seconds)
    by = "sum by (namespace, job)"
    records = []
    for w in WINDOWS:
        records.append(
            {
                "record": f"mlspec:request_errors:ratio_rate{w}",
                "expr": (
                    f'{by} (rate({REQUESTS}{{{sel},code=~"5.."}}[{w}]))\n/\n{by} (rate({REQUESTS}{{{sel}}}[{w}]))'
                ),
            }
        )
        records.append(
            {
                "record": f"mlspec:request_slow:ratio_rate{w}",
                "expr": (
                    f'1 - (\n  {by} (rate({DURATION}_bucket{{{sel},le="{le}"}}[{w}]))\n  /\n'
                    f"  {by} (rate({DURATION}_count{{{sel}}}[{w}]))\n)"
                ),
            }
        )

    objectives = (
        (
            "availability",
            "request_errors",
            round(1 - s.slo.availability_percent / 100, 10),
            f"availability below {s.slo.availability_percent}%",
        ),
        (
            "latency",
            "request_slow",
            round(1 - LATENCY_QUANTILE, 10),
            f"more than 1% of requests slower than {s.slo.latency_p99_ms:g} ms (le={le})",
        ),
    )
    alerts = []
    for slo, series, budget, what in objectives:
        for severity in ("page", "ticket"):
            terms = [
                f"(mlspec:{series}:ratio_rate{long} > ({_num(f)} * {_num(budget)})"
                f" and mlspec:{series}:ratio_rate{short} > ({_num(f)} * {_num(budget)}))"
                for sev, long, short, f in BURN_RATES
                if sev == severity
            ]
            alerts.append(
                {
                    "alert": f"{_camel(s.id)}{slo.capitalize()}BudgetBurn{severity.capitalize()}",
                    "expr": "\n or \n".join(terms),
                    "labels": {"severity": severity, "slo": slo, "service": s.id},
                    "annotations": {
                        "summary": f"{s.id}: {slo} error budget burning too fast ({severity})",
                        "description": f"The {s.slo.window} {slo} SLO ({what}) is at risk: the error budget is "
                        "being consumed faster than the multi-window burn-rate thresholds allow.",
                    },
                }
            )
    return {
        "apiVersion": MONITORING_API,
        "kind": "PrometheusRule",
        "metadata": dict_metadata(ir, f"{s.id}-slo", "slo"),
        "spec": {
            "groups": [
                {"name": f"{s.id}-slo-recording", "interval": "30s", "rules": records},
                {"name": f"{s.id}-slo-alerts", "rules": alerts},
            ]
        },
    }


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def service_monitor(ir: IR) -> dict[str, Any]:
    s = serving_of(ir)
    assert s is not None
    relabel = [
        # Argo Rollouts' per-revision hash: the AnalysisTemplate selects the new revision's pods with it.
        {
            "action": "replace",
            "sourceLabels": ["__meta_kubernetes_pod_label_rollouts_pod_template_hash"],
            "targetLabel": "rollouts_pod_template_hash",
        },
        # champion / challenger / shadow / canary / stable: compare variants on the same dashboard.
        {
            "action": "replace",
            "sourceLabels": ["__meta_kubernetes_pod_label_mlspec_io_variant"],
            "targetLabel": "variant",
        },
    ]
    return {
        "apiVersion": MONITORING_API,
        "kind": "ServiceMonitor",
        "metadata": dict_metadata(ir, s.id, "metrics"),
        "spec": {
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/part-of": ir.system.name,
                    "app.kubernetes.io/component": "server",
                }
            },
            "namespaceSelector": {"matchNames": [ir.system.namespace]},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s", "relabelings": relabel}],
        },
    }
