"""SLO alerting: recording rules and multi-window, multi-burn-rate alerts (Google SRE workbook, ch. 5),
latency percentiles for dashboards, and the ServiceMonitor that scrapes the server.

Everything a verdict depends on comes from the IR's `serving.slo`: the objective's exact bucket, the error
budget, the status classes that count as errors, the burn-rate alerts and their windows. The server
exports the metrics named in mlspec.contracts with `slo.histogram_buckets_seconds` as its buckets.
"""

from __future__ import annotations

import re
from typing import Any

from mlspec import contracts
from mlspec.ir.model import IR, SloObjective
from mlspec.ir.platform import MONITORING_API
from mlspec.units import duration_seconds
from mlspec_kubernetes import promql
from mlspec_kubernetes.meta import dict_metadata, serving_of

BY_JOB = "sum by (namespace, job)"
PERCENTILE_WINDOW = "5m"


def user_facing_jobs(ir: IR) -> list[str]:
    """Prometheus `job` labels (= Service names) of the Services that answer users."""
    s = serving_of(ir)
    return [s.id, f"{s.id}-challenger"] if s.rollout.strategy == "a-b" else [s.id]


def _selector(ir: IR, jobs: list[str]) -> str:
    return f'namespace="{ir.system.namespace}",{promql.job_matcher(jobs)}'


def windows(objective: SloObjective) -> list[str]:
    """Every window the burn-rate alerts read, shortest first."""
    found = {w for a in objective.burn_rate_alerts for w in (a.long_window, a.short_window)}
    return sorted(found, key=duration_seconds)


def _percent(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def prometheus_rule(ir: IR) -> dict[str, Any]:
    s = serving_of(ir)
    slo = s.slo
    objective = slo.objective
    assert objective is not None
    sel = _selector(ir, user_facing_jobs(ir))
    records = []
    for w in windows(objective):
        records.append(
            {
                "record": f"mlspec:request_errors:ratio_rate{w}",
                "expr": promql.error_ratio(sel, slo.error_status_classes, w, BY_JOB),
            }
        )
        records.append(
            {
                "record": f"mlspec:request_slow:ratio_rate{w}",
                "expr": promql.slow_ratio(sel, objective.latency_bucket_seconds, w, BY_JOB),
            }
        )
    le = promql.go_float(objective.latency_bucket_seconds)
    slow_budget = round(1 - slo.latency_quantile, 10)
    objectives = (
        (
            "availability",
            "request_errors",
            objective.error_budget,
            f"availability below {objective.availability_percent:g}%; errors are "
            + ", ".join(f"{c}xx" for c in slo.error_status_classes),
        ),
        (
            "latency",
            "request_slow",
            slow_budget,
            f"more than {_percent(slow_budget)} of requests slower than {objective.latency_p99_ms:g} ms "
            f"(le={le})",
        ),
    )
    severities = list(dict.fromkeys(a.severity for a in objective.burn_rate_alerts))
    alerts = []
    for name, series, budget, what in objectives:
        for severity in severities:
            terms = []
            for a in (a for a in objective.burn_rate_alerts if a.severity == severity):
                limit = f"({promql.number(a.factor)} * {promql.number(budget)})"
                terms.append(
                    f"(mlspec:{series}:ratio_rate{a.long_window} > {limit}"
                    f" and mlspec:{series}:ratio_rate{a.short_window} > {limit})"
                )
            alerts.append(
                {
                    "alert": f"{_camel(s.id)}{name.capitalize()}BudgetBurn{severity.capitalize()}",
                    "expr": "\nor\n".join(terms),
                    "labels": {"severity": severity, "slo": name, "service": s.id},
                    "annotations": {
                        "summary": f"{s.id}: {name} error budget burning too fast ({severity})",
                        "description": f"The {objective.window} {name} SLO ({what}) is at risk: the error "
                        "budget is being consumed faster than the multi-window burn-rate thresholds allow.",
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


def percentile_name(percentile: float) -> str:
    """95 -> p95, 99.9 -> p99_9 (a legal metric-name part)."""
    return "p" + f"{percentile:g}".replace(".", "_")


def latency_percentiles_rule(ir: IR, servers: list[str]) -> dict[str, Any] | None:
    """Recording rules for `monitoring.operational.latency_percentiles`, per server Service and variant.

    These are for dashboards only: histogram_quantile interpolates inside a bucket, so no alert or rollout
    verdict reads them (those read the exact SLO bucket, see prometheus_rule and the AnalysisTemplate).
    """
    s = serving_of(ir)
    if ir.monitoring is None or not ir.monitoring.latency_percentiles:
        return None
    sel = _selector(ir, servers)  # every server of the system, a shadow too: dashboards compare variants
    rules = [
        {
            "record": f"mlspec:request_duration_seconds:{percentile_name(p)}_rate{PERCENTILE_WINDOW}",
            "expr": promql.quantile(
                sel, p / 100, PERCENTILE_WINDOW, f"namespace, job, {contracts.LABEL_VARIANT}"
            ),
        }
        for p in ir.monitoring.latency_percentiles
    ]
    return {
        "apiVersion": MONITORING_API,
        "kind": "PrometheusRule",
        "metadata": dict_metadata(ir, f"{s.id}-latency", "metrics"),
        "spec": {"groups": [{"name": f"{s.id}-latency-percentiles", "interval": "30s", "rules": rules}]},
    }


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def _meta_label(label: str) -> str:
    """The service-discovery label Prometheus derives from a pod label (non [a-zA-Z0-9_] -> _)."""
    return "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", label)


def service_monitor(ir: IR) -> dict[str, Any]:
    s = serving_of(ir)
    relabel = [
        # Argo Rollouts' per-revision hash: the AnalysisTemplate selects the new revision's pods with it.
        {
            "action": "replace",
            "sourceLabels": [_meta_label("rollouts-pod-template-hash")],
            "targetLabel": "rollouts_pod_template_hash",
        },
        # champion / challenger / shadow / canary / stable: compare variants on the same dashboard.
        {
            "action": "replace",
            "sourceLabels": [_meta_label(contracts.VARIANT_LABEL)],
            "targetLabel": contracts.LABEL_VARIANT,
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
            "endpoints": [
                {
                    "port": contracts.PORT_NAME,
                    "path": contracts.METRICS_PATH,
                    "interval": "15s",
                    "relabelings": relabel,
                }
            ],
        },
    }
