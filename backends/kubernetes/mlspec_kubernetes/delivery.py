"""Progressive delivery, one function per IR rollout strategy.

rolling    -> Deployment (maxUnavailable 0)
canary     -> Argo Rollouts Rollout: setWeight/pause steps from the IR + background AnalysisTemplate, for new
              revisions of the server; and a challenger Deployment serving the challenger alias, which an Istio
              VirtualService gives the first step's weight while the analysis CronJob judges it
blue-green -> Argo Rollouts Rollout: active/preview Services + post-promotion AnalysisTemplate
shadow     -> champion Deployment + a shadow Deployment fed by an Istio VirtualService mirror
a-b        -> champion and challenger Deployments + an Istio VirtualService weighted split

The second model server of shadow, canary and a-b serves the registry's challenger alias and hot-reloads
when it moves; the analysis CronJob (mlspec_kubernetes.monitoring) promotes or rejects it. Names, aliases
and variants come from the IR's `serving.variants`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mlspec import contracts
from mlspec.backends import EmitContext
from mlspec.ir.model import IR, Variant
from mlspec.ir.platform import ISTIO_API, PROMETHEUS_URL, ROLLOUTS_API
from mlspec.ir.policy import MAX_SURGE_PERCENT
from mlspec_kubernetes import promql
from mlspec_kubernetes import workloads as w
from mlspec_kubernetes.meta import dict_metadata, selector, serving_of

DEFAULT_PROMETHEUS = PROMETHEUS_URL  # the Prometheus the platform kustomization runs
ANALYSIS_INTERVAL_S = 60
ANALYSIS_WINDOW = "2m"  # rate window of each measurement
VARIANT_HEADER = "x-mlspec-variant"  # response header naming the variant that answered (a-b, canary)


@dataclass
class Delivery:
    objects: list[Any] = field(default_factory=list)
    # Deployments/Rollouts serving traffic, for NetworkPolicies and PDBs: name -> component
    servers: list[str] = field(default_factory=list)


def build(ir: IR, ctx: EmitContext, config_name: str, ir_json: str) -> Delivery:
    strategy = serving_of(ir).rollout.strategy
    return _STRATEGIES[strategy](ir, ctx, config_name, ir_json)


def _replicas(ir: IR) -> int | None:
    return None if w.autoscaled(serving_of(ir)) else serving_of(ir).replicas_min  # the HPA owns replicas


def _plain(
    ir: IR,
    name: str,
    variant: str,
    config_name: str,
    ir_json: str,
    model_uri: str | None = None,
    min_replicas: int | None = None,
) -> list[Any]:
    """A Deployment with its Service, HPA and PDB."""
    template = w.server_pod_template(ir, name, variant, config_name, ir_json, model_uri)
    objs = [
        w.deployment(ir, name, template, _replicas(ir)),
        w.service(ir, name, name, serving_of(ir).port),
        w.pdb(ir, name),
    ]
    if w.autoscaled(serving_of(ir)):
        objs.append(w.hpa(ir, name, "apps/v1", "Deployment", min_replicas))
    return objs


def rolling(ir: IR, ctx: EmitContext, config_name: str, ir_json: str) -> Delivery:
    name = serving_of(ir).id
    return Delivery(_plain(ir, name, contracts.CHAMPION, config_name, ir_json), [name])


def _second(ir: IR) -> Variant:
    """The variant beside the champion (shadow or challenger), as lowering named it."""
    return next(v for v in serving_of(ir).variants if v.name != contracts.CHAMPION)


def _second_server(ir: IR, config_name: str, ir_json: str) -> tuple[Variant, list[Any]]:
    v = _second(ir)
    return v, _plain(
        ir, v.workload, v.name, config_name, ir_json, _alias_uri(ir, v.model_alias), min_replicas=1
    )


def _rollout(ir: IR, config_name: str, ir_json: str, strategy: dict[str, Any]) -> list[Any]:
    from kubernetes.client import ApiClient

    name = serving_of(ir).id
    template = ApiClient().sanitize_for_serialization(
        w.server_pod_template(ir, name, None, config_name, ir_json)
    )
    spec: dict[str, Any] = {}
    if not w.autoscaled(serving_of(ir)):
        spec["replicas"] = serving_of(ir).replicas_min
    spec.update(
        {
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector(ir, name)},
            "template": template,
            "strategy": strategy,
        }
    )
    rollout = {
        "apiVersion": ROLLOUTS_API,
        "kind": "Rollout",
        "metadata": dict_metadata(ir, name, "server"),
        "spec": spec,
    }
    objs: list[Any] = [rollout, w.service(ir, name, name, serving_of(ir).port), w.pdb(ir, name)]
    if w.autoscaled(serving_of(ir)):
        objs.append(w.hpa(ir, name, ROLLOUTS_API, "Rollout"))
    return objs


def _variant_metadata(canary: str, stable: str) -> dict[str, Any]:
    return {
        "canaryMetadata": {"labels": {contracts.VARIANT_LABEL: canary}},
        "stableMetadata": {"labels": {contracts.VARIANT_LABEL: stable}},
    }


def _analysis_ref(ir: IR) -> dict[str, Any]:
    return {
        "templates": [{"templateName": f"{serving_of(ir).id}-analysis"}],
        "args": [{"name": "revision-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}],
    }


def analysis_template(ir: IR, ctx: EmitContext, count: int | None) -> dict[str, Any] | None:
    """The new revision's error and slow-request ratios against the IR's rollback thresholds.

    Judged like the SLO alerts (mlspec_kubernetes.promql): errors are the SLO's status classes, and the
    latency limit is an exact bucket: at most 1 - latency_quantile of requests may be slower than it.
    """
    slo = serving_of(ir).slo
    limits = slo.rollback
    if limits is None or (limits.max_error_rate is None and limits.max_latency_bucket_seconds is None):
        return None
    sel = f'namespace="{ir.system.namespace}",rollouts_pod_template_hash="{{{{args.revision-hash}}}}"'
    address = ctx.options.get("prometheus_address", DEFAULT_PROMETHEUS)
    metrics = []

    def metric(name: str, query: str, limit: float) -> dict[str, Any]:
        m: dict[str, Any] = {
            "name": name,
            "interval": f"{ANALYSIS_INTERVAL_S}s",
            # No traffic yet (empty or NaN) is not a failure; one repeated breach aborts and rolls back.
            "successCondition": f"len(result) == 0 || isNaN(result[0]) || result[0] <= {promql.number(limit)}",
            "failureLimit": 1,
            "provider": {"prometheus": {"address": "{{args.prometheus-address}}", "query": query}},
        }
        if count is not None:
            m["count"] = count
        return m

    if limits.max_error_rate is not None:
        query = promql.error_ratio(sel, slo.error_status_classes, ANALYSIS_WINDOW)
        metrics.append(metric("error-rate", query, limits.max_error_rate))
    if limits.max_latency_bucket_seconds is not None:
        query = promql.slow_ratio(sel, limits.max_latency_bucket_seconds, ANALYSIS_WINDOW)
        metrics.append(metric("slow-request-rate", query, 1 - slo.latency_quantile))
    return {
        "apiVersion": ROLLOUTS_API,
        "kind": "AnalysisTemplate",
        "metadata": dict_metadata(ir, f"{serving_of(ir).id}-analysis", "analysis"),
        "spec": {
            "args": [{"name": "revision-hash"}, {"name": "prometheus-address", "value": address}],
            "metrics": metrics,
        },
    }


def canary(ir: IR, ctx: EmitContext, config_name: str, ir_json: str) -> Delivery:
    r = serving_of(ir).rollout
    steps: list[dict[str, Any]] = []
    for weight in r.steps:
        steps.append({"setWeight": weight})
        if weight < 100:
            steps.append(
                {"pause": {"duration": f"{r.step_duration_seconds}s"} if r.step_duration_seconds else {}}
            )
    strategy: dict[str, Any] = {
        "canary": {
            **_variant_metadata("canary", "stable"),
            "maxSurge": f"{MAX_SURGE_PERCENT}%",  # what lint sizes the pool for (policy.peak_server_pods)
            "maxUnavailable": 0,
            "steps": steps,
        }
    }
    template = analysis_template(ir, ctx, count=None)
    objs = _rollout(ir, config_name, ir_json, strategy)
    if template:
        strategy["canary"]["analysis"] = {**_analysis_ref(ir), "startingStep": 1}
        objs.append(template)
    # a new model version: the challenger Deployment takes the first step's share while it is judged
    challenger, extra = _second_server(ir, config_name, ir_json)
    weight = r.steps[0] if r.steps else 0
    objs += extra
    objs.append(
        _virtual_service(
            ir,
            {
                "name": "canary",
                "route": [
                    _route(ir, serving_of(ir).id, contracts.CHAMPION, 100 - weight),
                    _route(ir, challenger.workload, challenger.name, weight),
                ],
            },
        )
    )
    return Delivery(objs, [serving_of(ir).id, challenger.workload])


def blue_green(ir: IR, ctx: EmitContext, config_name: str, ir_json: str) -> Delivery:
    r = serving_of(ir).rollout
    name = serving_of(ir).id
    window = r.step_duration_seconds or 600
    count = max(1, math.ceil(window / ANALYSIS_INTERVAL_S))
    bg: dict[str, Any] = {
        "activeService": name,
        "previewService": f"{name}-preview",
        "activeMetadata": {"labels": {contracts.VARIANT_LABEL: "active"}},
        "previewMetadata": {"labels": {contracts.VARIANT_LABEL: "preview"}},
        "autoPromotionEnabled": True,
        # Keep the old ReplicaSet warm for the whole post-promotion analysis: rollback is a selector switch.
        "scaleDownDelaySeconds": window + 2 * ANALYSIS_INTERVAL_S,
    }
    template = analysis_template(ir, ctx, count=count)
    objs = _rollout(ir, config_name, ir_json, {"blueGreen": bg})
    objs.append(w.service(ir, f"{name}-preview", name, serving_of(ir).port))
    if template:
        bg["postPromotionAnalysis"] = _analysis_ref(ir)
        objs.append(template)
    return Delivery(objs, [name])


def _virtual_service(ir: IR, http: dict[str, Any]) -> dict[str, Any]:
    meta = dict_metadata(ir, serving_of(ir).id, "traffic")
    return {
        "apiVersion": ISTIO_API,
        "kind": "VirtualService",
        "metadata": meta,
        "spec": {"hosts": [_host(ir, serving_of(ir).id)], "http": [http]},
    }


def _host(ir: IR, service: str) -> str:
    return f"{service}.{ir.system.namespace}.svc.cluster.local"


def _destination(ir: IR, service: str) -> dict[str, Any]:
    return {"host": _host(ir, service), "port": {"number": serving_of(ir).port}}


def _alias_uri(ir: IR, alias: str) -> str:
    return f"models:/{ir.registry.model_name}@{alias}"


def shadow(ir: IR, ctx: EmitContext, config_name: str, ir_json: str) -> Delivery:
    name = serving_of(ir).id
    objs = _plain(ir, name, contracts.CHAMPION, config_name, ir_json)
    shadow_variant, extra = _second_server(ir, config_name, ir_json)
    objs += extra
    # The mesh sends a copy of each request to the shadow and discards its response: it serves nobody.
    objs.append(
        _virtual_service(
            ir,
            {
                "name": "primary",
                "route": [{"destination": _destination(ir, name), "weight": 100}],
                "mirror": _destination(ir, shadow_variant.workload),
                "mirrorPercentage": {"value": float(serving_of(ir).rollout.shadow_percent)},
            },
        )
    )
    return Delivery(objs, [name, shadow_variant.workload])


def _route(ir: IR, service: str, variant: str, weight: int) -> dict[str, Any]:
    # The response header lets clients attribute business outcomes to the variant that served them.
    return {
        "destination": _destination(ir, service),
        "weight": weight,
        "headers": {"response": {"set": {VARIANT_HEADER: variant}}},
    }


def a_b(ir: IR, ctx: EmitContext, config_name: str, ir_json: str) -> Delivery:
    r = serving_of(ir).rollout
    name = serving_of(ir).id
    split = r.traffic_split if r.traffic_split is not None else 50
    objs = _plain(ir, name, contracts.CHAMPION, config_name, ir_json)
    challenger, extra = _second_server(ir, config_name, ir_json)
    objs += extra
    # The split lasts until the analysis CronJob's verdict after experiment_duration: it promotes the
    # challenger (the champion Deployment reloads it) or rejects it (the challenger Deployment reloads the
    # champion), which ends the experiment either way.
    objs.append(
        _virtual_service(
            ir,
            {
                "name": "a-b",
                "route": [
                    _route(ir, name, contracts.CHAMPION, 100 - split),
                    _route(ir, challenger.workload, challenger.name, split),
                ],
            },
        )
    )
    return Delivery(objs, [name, challenger.workload])


_STRATEGIES = {"rolling": rolling, "canary": canary, "blue-green": blue_green, "shadow": shadow, "a-b": a_b}
