"""The Kubernetes backend: a capability table plus generate(); each concern lives in its own module."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from mlspec import contracts
from mlspec.backends import Artifact, BaseBackend, EmitContext, Feature, capability_table
from mlspec.ir.model import IR

PREVIEW = "dashboard-preview.html"  # the dashboard without Grafana, for review; not applied


class KubernetesBackend(BaseBackend):
    name = "kubernetes"
    version = "2"
    # Training pipelines, their steps and triggers belong to the orchestrators; infrastructure to Terraform.
    # When Kubernetes owns the loop, its monitor CronJob evaluates the triggers and starts retraining Jobs.
    capabilities: ClassVar = capability_table(
        full=(
            Feature.SERVING,
            Feature.SERVING_GPU,
            Feature.SERVING_AUTOSCALING,
            Feature.SERVING_CACHE,
            Feature.SERVING_SLO,
            Feature.PIPELINE_MONITORING,
            Feature.ROLLOUT_ROLLING,
            Feature.ROLLOUT_CANARY,
            Feature.ROLLOUT_BLUE_GREEN,
            Feature.ROLLOUT_SHADOW,
            Feature.ROLLOUT_A_B,
            Feature.ROLLOUT_EXPERIMENT_DURATION,
            Feature.TRAINING_DISTRIBUTED,
        ),
        not_yet=(Feature.INFRASTRUCTURE_GCP,),
        impossible=(Feature.INFRASTRUCTURE_NO_ACCOUNT_ID,),
    )
    reasons: ClassVar = {
        Feature.INFRASTRUCTURE_GCP: "workload identity is only expressed for AWS (IRSA)",
        Feature.INFRASTRUCTURE_NO_ACCOUNT_ID: "IRSA role ARNs on the ServiceAccounts need "
        "infrastructure.account_id; without them pods cannot reach the bucket",
    }

    def generate(self, ir: IR, ctx: EmitContext) -> list[Artifact]:
        from mlspec_kubernetes import (
            cache,
            dashboard,
            delivery,
            monitoring,
            network,
            platform,
            preview,
            readme,
            render,
            slo,
            training,
            workloads,
        )

        ir_json = ir.to_json()
        config_name = f"{ir.system.name}-ir"
        objects: list[Any] = [
            workloads.namespace(ir, mesh=self._mesh(ir)),
            workloads.config_map(ir, config_name, ir_json),
        ]
        used_accounts = {ir.serving.service_account} if ir.serving else set()
        servers: list[str] = []
        previews: list[Artifact] = []
        cache_name = None
        jobs: list[str] = []  # CronJob pods: each gets its own egress policy
        prometheus = ctx.options.get("prometheus_address", delivery.DEFAULT_PROMETHEUS)
        if ir.serving:
            plan = delivery.build(ir, ctx, config_name, ir_json)
            objects += plan.objects
            servers = plan.servers
            objects.append(slo.service_monitor(ir))
            if ir.serving.slo.objective:
                objects.append(slo.prometheus_rule(ir))
            percentiles = slo.latency_percentiles_rule(ir, servers)
            if percentiles:
                objects.append(percentiles)
            board = dashboard.to_json(ir, servers)
            objects.append(dashboard.config_map(ir, board))
            previews.append(Artifact(PREVIEW, preview.render(json.loads(board), ir.system.spec_path)))
            if ir.serving.cache:
                cache_name = ir.serving.cache.service
                objects += cache.objects(ir, ctx.options.get("cache_image", cache.DEFAULT_IMAGE))
        if monitoring.owns_monitor(ir):
            jobs.append(monitoring.name(ir))
            objects.append(monitoring.cron_job(ir, config_name))
            used_accounts.add("monitoring")
        if monitoring.runs_analysis(ir):
            jobs.append(monitoring.rollout_name(ir))
            objects.append(monitoring.rollout_cron_job(ir, config_name, prometheus))
            used_accounts.add("monitoring")
        if monitoring.starts_retraining(ir):
            jobs.append(contracts.retrain_job_template(ir.system.name))
            objects.append(monitoring.retrain_template(ir, config_name))
            objects += monitoring.rbac(ir)
            used_accounts |= {"monitoring", "training"}
        # Airflow in kubernetes mode starts the training pipeline's pods in this namespace as the training account.
        pipeline_pods = "airflow" in ir.targets and ir.airflow_mode == "kubernetes"
        if pipeline_pods:
            used_accounts.add("training")
        # Training that spans nodes: the job template the train step launches, its RBAC and network policy.
        launch = training.objects(ir)
        if launch:
            objects += launch
            used_accounts.add("training")
        objects += [workloads.service_account(ir, sa) for sa in ir.service_accounts if sa.id in used_accounts]
        objects += network.policies(
            ir,
            servers,
            cache_name,
            jobs,
            mesh=self._mesh(ir),
            pipeline_pods=pipeline_pods,
            analysis=(monitoring.rollout_name(ir), prometheus) if monitoring.runs_analysis(ir) else None,
            monitor=monitoring.name(ir) if monitoring.owns_monitor(ir) else None,
        )
        prerequisites = platform.artifacts(ir)
        paths = {a.path for a in prerequisites}
        guide = readme.readme(
            ir,
            "platform/kustomization.yaml" in paths,
            "platform/istio/kustomization.yaml" in paths,
            "platform/grafana/kustomization.yaml" in paths,
        )
        return [*render.artifacts(objects), *prerequisites, *previews, Artifact("README.md", guide)]

    @staticmethod
    def _mesh(ir: IR) -> bool:
        """Two model servers of one rollout (shadow, canary, a-b) share traffic through Istio."""
        return ir.serving is not None and len(ir.serving.variants) > 1
