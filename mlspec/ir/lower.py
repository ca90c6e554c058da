"""Lower a validated Spec (plus an optional environment overlay) to the fully resolved IR."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from mlspec.diagnostics import Diagnostic, Location, MlspecError
from mlspec.ir import model as ir
from mlspec.spec import models as sm
from mlspec.spec.resolve import deep_merge, infer_task
from mlspec.units import dns_label, duration_seconds, identifier, quantity

RUNTIME_ENTRY = ["python", "-m", "mlspec.runtime"]
GPU_TAINT_KEY = "nvidia.com/gpu"
POOL_LABEL = "mlspec.io/node-pool"
ACCELERATOR_LABEL = "mlspec.io/accelerator"
DEFAULT_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def apply_environment(data: dict[str, Any], env: str | None, path: str = "<spec>") -> dict[str, Any]:
    environments = data.get("environments") or {}
    if env is None:
        return data
    if env not in environments:
        known = ", ".join(sorted(environments)) or "none defined"
        raise MlspecError(
            [Diagnostic("MS110", f"unknown environment '{env}' (known: {known})", Location(path, 0, 0))]
        )
    return deep_merge(data, environments[env] or {})


def lower(
    spec: sm.Spec, *, spec_path: str = "mlops.yaml", spec_sha256: str = "", environment: str | None = None
) -> ir.IR:
    return _Lowering(spec, spec_path, spec_sha256, environment).run()


def infer_format(uri: str) -> str:
    suffix = PurePosixPath(uri.split("?")[0]).suffix.lower()
    return "csv" if suffix in (".csv", ".tsv") else "parquet"


def latency_buckets(slo_ms: float | None) -> list[float]:
    buckets = set(DEFAULT_LATENCY_BUCKETS)
    if slo_ms is not None:
        buckets.add(round(slo_ms / 1000.0, 6))
    return sorted(buckets)


class _Lowering:
    def __init__(self, spec: sm.Spec, spec_path: str, spec_sha256: str, environment: str | None):
        self.spec = spec
        self.spec_path = spec_path
        self.spec_sha256 = spec_sha256
        self.environment = environment
        self.name = spec.metadata.name
        self.namespace = spec.metadata.namespace or self.name
        self.image = spec.images.runtime

    # ------------------------------------------------------------------ top level
    def run(self) -> ir.IR:
        s = self.spec
        self.pools = self._node_pools()
        service_accounts = self._service_accounts()
        data = self._data()
        pipelines = [self._training_pipeline()]
        if s.monitoring is not None:
            pipelines.append(self._monitoring_pipeline())
        infra = s.infrastructure
        artifacts_root = f"s3://{infra.storage.artifacts_bucket}/{self.name}" if infra else ".mlspec"
        return ir.IR(
            system=ir.System(
                name=self.name,
                namespace=self.namespace,
                owner=s.metadata.owner,
                description=s.metadata.description,
                labels=dict(sorted(s.metadata.labels.items())),
                spec_path=self.spec_path,
                spec_sha256=self.spec_sha256,
                environment=self.environment,
            ),
            images={"runtime": self.image},
            artifacts_root=artifacts_root,
            airflow_mode=s.orchestration.airflow_mode,
            data=data,
            training=self._training(),
            evaluation=self._evaluation(),
            registry=self._registry(),
            pipelines=pipelines,
            serving=self._serving(),
            monitoring=self._monitoring(data),
            retraining=self._retraining(),
            service_accounts=service_accounts,
            infrastructure=self._infrastructure(),
            targets=list(s.targets),
        )

    # ------------------------------------------------------------------ data
    def _data(self) -> ir.Data:
        d = self.spec.data
        columns = [
            ir.Column(
                name=name,
                type=c.type,
                role="target" if name == d.schema_.target else c.role,
                pii=c.pii,
                unique=c.unique,
                nullable=c.nullable,
                min=c.min,
                max=c.max,
                values=c.values,
            )
            for name, c in d.schema_.columns.items()
        ]
        features = [c.name for c in columns if c.role == "feature"]
        return ir.Data(
            sources=[
                ir.DataSource(name=n, uri=src.uri, format=src.format or infer_format(src.uri))
                for n, src in sorted(d.sources.items())
            ],
            target=d.schema_.target,
            task=infer_task(d.schema_),
            columns=columns,
            features=features,
            checks=[c.model_dump(mode="json") for c in d.checks],
            split=d.split.model_dump(mode="json"),
        )

    # ------------------------------------------------------------------ resources and pools
    def _node_pools(self) -> list[ir.NodePool]:
        infra = self.spec.infrastructure
        if infra is None:
            return []
        pools = []
        for name, p in sorted(infra.node_pools.items()):
            pool_id = dns_label(name)
            labels = {POOL_LABEL: pool_id}
            if p.accelerator:
                labels[ACCELERATOR_LABEL] = p.accelerator
            labels.update(p.labels)
            if p.taints is not None:
                taints = [ir.Taint(key=t.key, value=t.value, effect=t.effect) for t in p.taints]
            elif p.accelerator:
                taints = [ir.Taint(key=GPU_TAINT_KEY, value="true", effect="NoSchedule")]
            else:
                taints = []
            selector = {POOL_LABEL: pool_id}
            pools.append(
                ir.NodePool(
                    id=pool_id,
                    task_id=identifier(name),
                    instance_type=p.instance_type,
                    min=p.min,
                    max=p.max,
                    desired=p.desired if p.desired is not None else p.min,
                    gpu_type=p.accelerator,
                    gpu_count=p.gpus_per_node if p.accelerator else 0,
                    disk_size_gb=p.disk_size_gb,
                    spot=p.spot,
                    labels=dict(sorted(labels.items())),
                    taints=taints,
                    node_selector=selector,
                )
            )
        return pools

    def _pool_for_gpu(self, gpu_type: str | None) -> str | None:
        if gpu_type is None:
            return None
        for pool in self.pools:
            if pool.gpu_type == gpu_type:
                return pool.id
        for pool in self.pools:  # a GPU pool of another type is better than none; lint warns
            if pool.gpu_type:
                return pool.id
        return None

    def _resources(
        self, r: sm.Resources, default_cpu: Any = None, default_memory: Any = None
    ) -> ir.Resources:
        gpu_type = r.gpu.type if r.gpu else None
        return ir.Resources(
            cpu=quantity(r.cpu if r.cpu is not None else default_cpu),
            memory=quantity(r.memory if r.memory is not None else default_memory),
            gpu_type=gpu_type,
            gpu_count=r.gpu.count if r.gpu else 0,
            node_pool=self._pool_for_gpu(gpu_type),
        )

    # ------------------------------------------------------------------ pipelines
    def _builtin(
        self,
        step_id: str,
        action: str,
        display: str,
        *,
        depends_on: list[str],
        resources: ir.Resources | None = None,
        conditions: list[str] | None = None,
        outputs: list[str] | None = None,
        retries: int = 1,
        timeout: int | None = 3600,
        cache: bool = False,
        fan_out: ir.FanOut | None = None,
        sa: str = "training",
        extra_args: list[str] | None = None,
    ) -> ir.Step:
        return ir.Step(
            id=step_id,
            task_id=identifier(step_id),
            display_name=display,
            kind="builtin",
            action=action,
            image=self.image,
            command=[*RUNTIME_ENTRY, step_id, *(extra_args or [])],
            env={},
            depends_on=sorted(set(depends_on)),
            conditions=conditions or [],
            outputs=outputs or [],
            resources=resources
            or ir.Resources(cpu="1", memory="2Gi", gpu_type=None, gpu_count=0, node_pool=None),
            retries=retries,
            retry_backoff_seconds=30,
            timeout_seconds=timeout,
            cache=cache,
            fan_out=fan_out,
            service_account=sa,
        )

    def _training_pipeline(self) -> ir.Pipeline:
        s = self.spec
        t = s.training
        train_resources = self._resources(t.resources, default_cpu=2, default_memory="4Gi")
        train_timeout = duration_seconds(t.timeout) if t.timeout else 7200
        steps: list[ir.Step] = [
            self._builtin(
                "validate-data",
                "validate",
                "Validate data",
                depends_on=[],
                outputs=["rows", "checks_passed"],
                resources=ir.Resources(cpu="1", memory="4Gi", gpu_type=None, gpu_count=0, node_pool=None),
            ),
        ]
        train_deps = ["validate-data"]
        if t.tuning:
            steps.append(
                self._builtin(
                    "tune-trial",
                    "tune-trial",
                    "Tuning trial",
                    depends_on=["validate-data"],
                    resources=train_resources,
                    retries=t.retries,
                    timeout=train_timeout,
                    outputs=["value"],
                    fan_out=ir.FanOut(count=t.tuning.trials, parallelism=t.tuning.parallelism),
                )
            )
            steps.append(
                self._builtin(
                    "tune-select",
                    "tune-select",
                    "Select best trial",
                    depends_on=["tune-trial"],
                    outputs=["best_params"],
                )
            )
            train_deps = ["tune-select"]
        steps.append(
            self._builtin(
                "train",
                "train",
                "Train model",
                depends_on=train_deps,
                resources=train_resources,
                retries=t.retries,
                timeout=train_timeout,
                outputs=["model_path"],
            )
        )
        steps.append(
            self._builtin(
                "evaluate",
                "evaluate",
                "Evaluate and gate",
                depends_on=["train"],
                outputs=["metrics", "gates_passed", "beats_champion"],
            )
        )
        steps.append(
            self._builtin(
                "export",
                "export",
                "Export ONNX",
                depends_on=["evaluate"],
                conditions=["gates-passed"],
                outputs=["onnx_path", "parity_max_abs_diff"],
            )
        )
        steps.append(
            self._builtin(
                "register",
                "register",
                "Register model",
                depends_on=["export"],
                conditions=["gates-passed"],
                outputs=["model_version"],
            )
        )
        steps.append(
            self._builtin(
                "promote",
                "promote",
                "Promote to champion",
                depends_on=["register"],
                conditions=["gates-passed", "beats-champion"],
                outputs=["champion_version"],
            )
        )
        steps = self._place_user_steps(steps)
        gates = self._evaluation().gates
        conditions = [
            ir.Condition(
                id="gates-passed",
                step="evaluate",
                output="gates_passed",
                description="every evaluation gate holds",
                gates=gates,
            ),
            ir.Condition(
                id="beats-champion",
                step="evaluate",
                output="beats_champion",
                description="the challenger beats the current champion (or there is none)",
                gates=[],
            ),
        ]
        schedule = next(
            (
                tr.cron
                for tr in (s.retraining.triggers if s.retraining else [])
                if isinstance(tr, sm.ScheduleTrigger)
            ),
            None,
        )
        return ir.Pipeline(
            id="training",
            task_id="training",
            description=f"Train, gate and register {self.name}",
            steps=steps,
            conditions=conditions,
            schedule=schedule,
        )

    def _place_user_steps(self, builtins: list[ir.Step]) -> list[ir.Step]:
        user = self.spec.steps
        if not user:
            return builtins
        known = {st.id for st in builtins} | {u.name for u in user}
        extra_deps: dict[str, set[str]] = {st.id: set() for st in builtins}
        for u in user:
            extra_deps[u.name] = set()
        for u in user:
            for target in _as_list(u.before):
                if target in known:
                    extra_deps[target].add(u.name)
            for source in _as_list(u.after):
                if source in known:
                    extra_deps[u.name].add(source)
        user_steps = [
            ir.Step(
                id=u.name,
                task_id=identifier(u.name),
                display_name=u.name,
                kind="user",
                action="user",
                image=u.image or self.image,
                command=list(u.command),
                env=dict(sorted(u.env.items())),
                depends_on=sorted(extra_deps[u.name]),
                conditions=[],
                outputs=_declared_outputs(u.command),
                resources=self._resources(u.resources, default_cpu=1, default_memory="2Gi"),
                retries=u.retries,
                retry_backoff_seconds=30,
                timeout_seconds=duration_seconds(u.timeout) if u.timeout else 3600,
                cache=u.cache,
                fan_out=None,
                service_account="training",
            )
            for u in user
        ]
        merged = [
            st.model_copy(update={"depends_on": sorted(set(st.depends_on) | extra_deps[st.id])})
            for st in builtins
        ]
        return _topological(user_steps + merged)

    def _monitoring_pipeline(self) -> ir.Pipeline:
        m = self.spec.monitoring
        assert m is not None
        steps = [
            self._builtin(
                "monitor",
                "monitor",
                "Monitor drift and performance",
                depends_on=[],
                sa="monitoring",
                outputs=["retrain", "fired_triggers"],
                timeout=1800,
            ),
        ]
        conditions = []
        if self.spec.retraining is not None:
            steps.append(
                self._builtin(
                    "trigger-retrain",
                    "trigger-retrain",
                    "Trigger retraining",
                    depends_on=["monitor"],
                    conditions=["retrain-needed"],
                    sa="monitoring",
                    timeout=600,
                    outputs=["triggered"],
                )
            )
            conditions.append(
                ir.Condition(
                    id="retrain-needed",
                    step="monitor",
                    output="retrain",
                    description="a retraining trigger fired outside its cooldown",
                    gates=[],
                )
            )
        return ir.Pipeline(
            id="monitoring",
            task_id="monitoring",
            description=f"Monitor {self.name} and decide retraining",
            steps=steps,
            conditions=conditions,
            schedule=m.schedule,
        )

    # ------------------------------------------------------------------ sections
    def _training(self) -> ir.Training:
        t = self.spec.training
        tuning = None
        if t.tuning:
            dims = []
            for name, dim in sorted(t.tuning.space.items()):
                if isinstance(dim, sm.UniformDim):
                    dims.append(
                        ir.SearchDim(
                            name=name, kind="uniform", low=dim.uniform[0], high=dim.uniform[1], choices=None
                        )
                    )
                elif isinstance(dim, sm.LogUniformDim):
                    dims.append(
                        ir.SearchDim(
                            name=name,
                            kind="log_uniform",
                            low=dim.log_uniform[0],
                            high=dim.log_uniform[1],
                            choices=None,
                        )
                    )
                elif isinstance(dim, sm.IntDim):
                    dims.append(
                        ir.SearchDim(name=name, kind="int", low=dim.int[0], high=dim.int[1], choices=None)
                    )
                else:
                    dims.append(
                        ir.SearchDim(name=name, kind="choice", low=None, high=None, choices=list(dim.choice))
                    )
            tuning = ir.Tuning(
                method=t.tuning.method,
                trials=t.tuning.trials,
                parallelism=t.tuning.parallelism,
                metric=t.tuning.metric.name,
                goal=t.tuning.metric.goal,
                space=dims,
            )
        builtin = None
        if t.entrypoint is None:
            builtin = (t.builtin or sm.BuiltinModel()).model_dump(mode="json")
        return ir.Training(
            entrypoint=t.entrypoint,
            builtin=builtin,
            framework=t.framework,
            hyperparameters=dict(sorted(t.hyperparameters.items())),
            tuning=tuning,
            cv_folds=t.cross_validation.folds if t.cross_validation else None,
            workers=t.distributed.workers,
            seed=t.seed,
            export_format=t.export.format,
            opset=t.export.opset,
            parity_tolerance=t.export.parity_tolerance,
        )

    def _evaluation(self) -> ir.Evaluation:
        e = self.spec.evaluation
        gates = []
        for g in e.gates:
            if g.min is not None:
                gates.append(ir.Gate(metric=g.metric, op=">=", threshold=g.min))
            if g.max is not None:
                gates.append(ir.Gate(metric=g.metric, op="<=", threshold=g.max))
        champion_metric = e.champion.compare_on if e.champion else None
        goal = "minimize" if champion_metric in ("log_loss", "rmse", "mae") else "maximize"
        return ir.Evaluation(
            metrics=list(e.metrics),
            custom_metrics=dict(sorted(e.custom_metrics.items())),
            gates=gates,
            champion_metric=champion_metric,
            champion_min_improvement=e.champion.min_improvement if e.champion else 0.0,
            champion_goal=goal,
        )

    def _registry(self) -> ir.Registry:
        m = self.spec.registry.mlflow
        return ir.Registry(
            kind="mlflow",
            tracking_uri=m.tracking_uri,
            model_name=m.model_name or self.name,
            experiment=m.experiment or self.name,
        )

    def _serving(self) -> ir.Serving | None:
        sv = self.spec.serving
        if sv is None:
            return None
        resources = self._resources(sv.resources, default_cpu=1, default_memory="1Gi")
        if sv.accelerator == "gpu":
            gpu_pool = next((p for p in self.pools if p.gpu_type), None)
            gpu_type = sv.gpu.type if sv.gpu else (gpu_pool.gpu_type if gpu_pool else "nvidia-gpu")
            resources = resources.model_copy(
                update={
                    "gpu_type": gpu_type,
                    "gpu_count": sv.gpu.count if sv.gpu else 1,
                    "node_pool": self._pool_for_gpu(gpu_type),
                }
            )
        slo = None
        if sv.slo:
            slo = ir.Slo(
                latency_p99_ms=sv.slo.latency_p99_ms,
                latency_bucket_seconds=round(sv.slo.latency_p99_ms / 1000.0, 6),
                availability_percent=sv.slo.availability_percent,
                window=sv.slo.window,
                window_seconds=duration_seconds(sv.slo.window),
            )
        r = sv.rollout
        rollout = ir.Rollout(
            strategy=r.strategy,
            steps=list(r.steps),
            step_duration_seconds=duration_seconds(r.step_duration) if r.step_duration else None,
            max_error_rate=r.rollback_on.error_rate,
            max_latency_p99_ms=r.rollback_on.latency_p99_ms,
            traffic_split=r.traffic_split,
            experiment_duration_seconds=duration_seconds(r.experiment_duration)
            if r.experiment_duration
            else None,
            shadow_percent=r.shadow_percent,
        )
        server_id = dns_label(f"{self.name}-server")
        cache = None
        if sv.cache:
            cache = ir.Cache(
                backend=sv.cache.backend,
                ttl_seconds=duration_seconds(sv.cache.ttl),
                service=dns_label(f"{self.name}-cache"),
            )
        infra = self.spec.infrastructure
        default_log = (
            f"s3://{infra.storage.artifacts_bucket}/{self.name}/predictions"
            if infra
            else ".mlspec/predictions"
        )
        registry = self._registry()
        autoscaling = sv.autoscaling
        return ir.Serving(
            id=server_id,
            model_name=registry.model_name,
            model_uri=f"models:/{registry.model_name}@champion",
            runtime=sv.runtime,
            accelerator=sv.accelerator,
            port=sv.port,
            replicas_min=sv.replicas.min,
            replicas_max=sv.replicas.max,
            target_cpu_percent=autoscaling.target_cpu_percent if autoscaling else None,
            target_rps_per_replica=autoscaling.target_rps_per_replica if autoscaling else None,
            resources=resources,
            slo=slo,
            latency_buckets_seconds=latency_buckets(sv.slo.latency_p99_ms if sv.slo else None),
            rollout=rollout,
            cache=cache,
            max_batch_size=sv.batching.max_batch_size,
            max_batch_delay_ms=sv.batching.max_delay_ms,
            prediction_log=sv.prediction_log or default_log,
            sample_rate=sv.sample_rate,
            service_account="serving",
        )

    def _monitoring(self, data: ir.Data) -> ir.Monitoring | None:
        m = self.spec.monitoring
        if m is None:
            return None
        drift = None
        if m.drift:
            features = data.features if m.drift.features == "all" else list(m.drift.features)
            drift = ir.DriftMonitor(
                features=features,
                method=m.drift.method,
                threshold=m.drift.threshold,
                correlation_change=m.drift.correlation_change,
            )
        performance = None
        if m.performance:
            p = m.performance
            performance = ir.PerformanceMonitor(
                metric=p.metric,
                min=p.min,
                max=p.max,
                label_delay_seconds=duration_seconds(p.label_delay),
                confusion_matrix=p.confusion_matrix,
            )
        return ir.Monitoring(
            schedule=m.schedule,
            window_seconds=duration_seconds(m.window),
            min_samples=m.min_samples,
            drift=drift,
            performance=performance,
            latency_percentiles=list(m.operational.latency_percentiles),
        )

    def _retraining(self) -> ir.Retraining | None:
        r = self.spec.retraining
        if r is None:
            return None
        drift_default = (
            self.spec.monitoring.drift.threshold
            if self.spec.monitoring and self.spec.monitoring.drift
            else None
        )
        triggers = []
        for index, t in enumerate(r.triggers):
            tid = f"{t.on}-{index}"
            if isinstance(t, sm.ScheduleTrigger):
                triggers.append(ir.Trigger(id=tid, kind="schedule", cron=t.cron))
            elif isinstance(t, sm.DriftTrigger):
                triggers.append(
                    ir.Trigger(
                        id=tid, kind="drift", threshold=t.threshold or drift_default, features=t.features
                    )
                )
            elif isinstance(t, sm.PerformanceTrigger):
                triggers.append(
                    ir.Trigger(id=tid, kind="performance", metric=t.metric, below=t.below, above=t.above)
                )
            elif isinstance(t, sm.DataQualityTrigger):
                triggers.append(
                    ir.Trigger(
                        id=tid,
                        kind="data_quality",
                        max_null_rate=t.max_null_rate,
                        max_out_of_range_rate=t.max_out_of_range_rate,
                        max_unseen_rate=t.max_unseen_rate,
                    )
                )
            else:
                triggers.append(ir.Trigger(id=tid, kind="volume", new_rows=t.new_rows))
        return ir.Retraining(
            triggers=triggers,
            cooldown_seconds=duration_seconds(r.cooldown),
            min_samples=r.min_samples,
            sink=r.sink,
        )

    def _service_accounts(self) -> list[ir.ServiceAccount]:
        infra = self.spec.infrastructure
        out = []
        for sa_id, access in (("training", "read-write"), ("serving", "read"), ("monitoring", "read-write")):
            name = dns_label(f"{self.name}-{sa_id}")
            cluster = infra.cluster.name if infra else self.name
            role = f"{cluster}-{self.name}-{sa_id}"[:64]
            arn = f"arn:aws:iam::{infra.account_id}:role/{role}" if infra and infra.account_id else None
            out.append(
                ir.ServiceAccount(
                    id=sa_id,
                    name=name,
                    namespace=self.namespace,
                    role_name=role,
                    role_arn=arn,
                    bucket_access=access,
                )
            )
        return out

    def _infrastructure(self) -> ir.Infrastructure | None:
        infra = self.spec.infrastructure
        if infra is None:
            return None
        state = None
        if infra.state:
            state = ir.RemoteState(
                backend=infra.state.backend,
                bucket=infra.state.bucket,
                key=infra.state.key
                or f"mlspec/{self.name}/{self.environment or 'default'}/terraform.tfstate",
                region=infra.state.region or infra.region,
                lock_table=infra.state.lock_table,
            )
        return ir.Infrastructure(
            cloud=infra.cloud,
            region=infra.region,
            account_id=infra.account_id,
            cluster_name=infra.cluster.name,
            cluster_version=infra.cluster.version,
            node_pools=self.pools,
            network=ir.Network(
                vpc_id=infra.network.vpc_id,
                subnet_ids=infra.network.subnet_ids,
                cidr=infra.network.cidr,
                availability_zones=infra.network.availability_zones,
            ),
            artifacts_bucket=infra.storage.artifacts_bucket,
            noncurrent_version_days=infra.storage.noncurrent_version_days,
            container_registry=infra.container_registry or self.name,
            state=state,
        )


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _declared_outputs(command: list[str]) -> list[str]:
    import re

    names = set()
    for arg in command:
        names.update(re.findall(r"\{outputs\.([A-Za-z_][A-Za-z0-9_-]*)\}", arg))
    return sorted(names)


def _topological(steps: list[ir.Step]) -> list[ir.Step]:
    """Stable topological order in waves (Kahn): each wave holds the steps whose dependencies all ran in
    earlier waves, in their original order. Linear in steps + edges. Cycles are reported by lint."""
    by_id = {st.id: st for st in steps}
    order = {st.id: i for i, st in enumerate(steps)}
    pending = {st.id: len({d for d in st.depends_on if d in by_id}) for st in steps}
    dependents: dict[str, list[str]] = {st.id: [] for st in steps}
    for st in steps:
        for dep in {d for d in st.depends_on if d in by_id}:
            dependents[dep].append(st.id)
    wave = sorted((sid for sid, count in pending.items() if count == 0), key=order.__getitem__)
    out: list[ir.Step] = []
    while wave:
        out.extend(by_id[sid] for sid in wave)
        following = []
        for sid in wave:
            for child in dependents[sid]:
                pending[child] -= 1
                if pending[child] == 0:
                    following.append(child)
        wave = sorted(following, key=order.__getitem__)
    if len(out) < len(steps):
        stuck = sorted(sid for sid, count in pending.items() if count > 0)
        raise MlspecError(
            [Diagnostic("MS214", "step dependency cycle: " + " -> ".join(stuck), Location("<spec>", 0, 0))]
        )
    return out
