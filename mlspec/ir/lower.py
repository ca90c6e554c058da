"""Lower a validated Spec (plus an optional environment overlay) to the fully resolved IR."""

from __future__ import annotations

from typing import Any

from mlspec import contracts
from mlspec.diagnostics import Diagnostic, Location, MlspecError
from mlspec.ir import cloud, dataflow, placement, platform, policy
from mlspec.ir import model as ir
from mlspec.ir.catalog import BUILTIN_BY_ID, EKS_AMI_TYPES
from mlspec.spec import models as sm
from mlspec.spec.resolve import deep_merge, infer_task
from mlspec.units import dns_label, duration_seconds, identifier, quantity

RUNTIME_ENTRY = ["python", "-m", "mlspec.runtime"]
BUILTIN_USER_OUTPUTS = ("outputs",)  # a user step's result: {data set: {rows, uri}} of what it wrote


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


class _Lowering:
    def __init__(self, spec: sm.Spec, spec_path: str, spec_sha256: str, environment: str | None):
        self.spec = spec
        self.spec_path = spec_path
        self.spec_sha256 = spec_sha256
        self.environment = environment
        self.name = spec.metadata.name
        self.namespace = spec.metadata.namespace or self.name
        self.image = spec.images.runtime
        self.artifacts_prefix = self.name  # the system's key prefix in the artifacts bucket

    # ------------------------------------------------------------------ top level
    def run(self) -> ir.IR:
        s = self.spec
        self.pools = self._node_pools()
        _raise(placement.capacity_problems(s), self.spec_path)
        self.flow = dataflow.resolve(s)
        _raise(self.flow.problems or dataflow.serving_problems(s, self.flow), self.spec_path)
        infrastructure = self._infrastructure()
        self.image = platform.image_reference(s.images.runtime, infrastructure)
        service_accounts = self._service_accounts()
        data = self._data()
        pipelines = [self._training_pipeline()]
        if s.monitoring is not None:
            pipelines.append(self._monitoring_pipeline())
        artifacts_root = self._artifacts_root()
        lowered = ir.IR(
            system=ir.System(
                name=self.name,
                namespace=self.namespace,
                owner=s.metadata.owner,
                description=s.metadata.description,
                labels=dict(sorted(s.metadata.labels.items())),
                spec_path=self.spec_path,
                spec_sha256=self.spec_sha256,
                environment=self.environment,
                environments=list(s.environments),
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
            infrastructure=infrastructure,
            targets=list(s.targets),
        )
        # Decided from the whole IR: what the artifacts need from the platform, and what the image holds.
        return lowered.model_copy(
            update={"image": platform.runtime_image(lowered), "platform": platform.decide(lowered)}
        )

    # ------------------------------------------------------------------ names derived per environment
    def _artifacts_root(self) -> str:
        infra = self.spec.infrastructure
        return (
            policy.artifacts_root(infra.storage.artifacts_bucket, self.artifacts_prefix)
            if infra
            else ".mlspec"
        )

    def _local_prefix(self) -> str:
        """Where a system without infrastructure keeps its files: .mlspec, or .mlspec/<env> per environment."""
        return f".mlspec/{self.environment}" if self.environment else ".mlspec"

    def _trigger_state_uri(self) -> str:
        if self.spec.infrastructure:
            return f"{self._artifacts_root()}/monitoring/{policy.TRIGGER_STATE_FILE}"
        suffix = f"-{self.environment}" if self.environment else ""
        return f".mlspec/monitoring/{self.name}{suffix}-{policy.TRIGGER_STATE_FILE}"

    def _owner(self) -> str:
        r = self.spec.retraining
        return policy.loop_owner(list(self.spec.targets), r.sink if r else None)

    # ------------------------------------------------------------------ data
    def _columns(self, columns: dict[str, sm.Column]) -> list[ir.Column]:
        target = self.spec.data.schema_.target
        return [
            ir.Column(
                name=name,
                type=c.type,
                role="target" if name == target else c.role,
                pii=c.pii,
                unique=c.unique,
                nullable=c.nullable,
                min=c.min,
                max=c.max,
                values=c.values,
                produced_by=self.flow.added_by.get(name),
            )
            for name, c in columns.items()
        ]

    def _data(self) -> ir.Data:
        d = self.spec.data
        columns = self._columns(d.schema_.columns)
        features = [c.name for c in columns if c.role == "feature"]
        steps = {u.name: u for u in self.spec.steps}
        transforms = [
            ir.Transform(
                step=name,
                function=steps[name].transform or "",
                adds=sorted(c for c, by in self.flow.added_by.items() if by == name),
            )
            for name in self.flow.chain
            if steps[name].transform
        ]
        return ir.Data(
            sources=[
                ir.DataSource(
                    name=n, uri=src.uri, format=src.format or policy.infer_format(src.uri) or "parquet"
                )
                for n, src in sorted(d.sources.items())
            ],
            target=d.schema_.target,
            task=infer_task(d.schema_),
            columns=columns,
            features=features,
            checks=[c.model_dump(mode="json") for c in d.checks],
            split=d.split.model_dump(mode="json"),
            raw_checks=[c.model_dump(mode="json") for c in d.raw_checks],
            prepared=[ir.DataSetRef(name=v.name, step=v.step) for v in self.flow.prepared.values()],
            transforms=transforms,
        )

    # ------------------------------------------------------------------ resources and pools
    def _node_pools(self) -> list[ir.NodePool]:
        infra = self.spec.infrastructure
        if infra is None:
            return []
        pools = []
        for name, p in sorted(infra.node_pools.items()):
            pool_id = dns_label(name)
            gpus, problems = placement.pool_gpus(name, p)
            _raise(problems, self.spec_path)
            labels = {contracts.NODE_POOL_LABEL: pool_id}
            gpu = None
            if gpus.gpu_type and gpus.vendor:
                labels[contracts.ACCELERATOR_LABEL] = gpus.gpu_type
                gpu = ir.PoolGpu(
                    vendor=gpus.vendor.name,
                    product=gpus.gpu_type,
                    resource=gpus.vendor.resource,
                    per_node=gpus.per_node,
                )
            labels.update(p.labels)
            if p.taints is not None:
                taints = [ir.Taint(key=t.key, value=t.value, effect=t.effect) for t in p.taints]
            elif gpu is not None:
                # the device plugin's resource name is the conventional taint key for accelerator nodes
                taints = [ir.Taint(key=gpu.resource, value="true", effect="NoSchedule")]
            else:
                taints = []
            image_family = gpus.vendor.image_family if gpus.vendor else "standard"
            pools.append(
                ir.NodePool(
                    id=pool_id,
                    task_id=identifier(name),
                    instance_type=p.instance_type,
                    min=p.min,
                    max=p.max,
                    desired=p.desired if p.desired is not None else p.min,
                    gpu=gpu,
                    image_family=image_family,
                    disk_size_gb=p.disk_size_gb,
                    spot=p.spot,
                    labels=dict(sorted(labels.items())),
                    taints=taints,
                    node_selector={contracts.NODE_POOL_LABEL: pool_id},
                    group_name=cloud.node_group_name(infra.cluster.name, pool_id),
                    ami_type=EKS_AMI_TYPES[image_family] if infra.cloud == "aws" else None,
                )
            )
        return pools

    def _placement(self, req: placement.Request, cpu: Any, memory: Any) -> ir.Placement:
        pool_name, problems = placement.choose_pool(self.spec, req)
        _raise(problems, self.spec_path)
        pool = next((p for p in self.pools if p.id == dns_label(pool_name)), None) if pool_name else None
        gpu = None
        if req.gpu_type:
            from mlspec.ir.catalog import gpu_vendor

            vendor = gpu_vendor(req.gpu_type)
            assert vendor is not None  # placement.choose_pool reported unknown vendors
            gpu = ir.GpuRequest(
                vendor=vendor.name,
                product=req.gpu_type,
                resource=vendor.resource,
                count=req.gpu_count,
            )
        return ir.Placement(
            cpu=quantity(cpu),
            memory=quantity(memory),
            gpu=gpu,
            node_pool=pool.id if pool else None,
            node_selector=dict(pool.node_selector) if pool else {},
            tolerations=list(pool.taints) if pool else [],
        )

    def _cpu_placement(self, cpu: str, memory: str) -> ir.Placement:
        return ir.Placement(
            cpu=cpu, memory=memory, gpu=None, node_pool=None, node_selector={}, tolerations=[]
        )

    # ------------------------------------------------------------------ pipelines
    def _builtin(
        self,
        step_id: str,
        *,
        depends_on: list[str],
        runs_on: ir.Placement | None = None,
        conditions: list[str] | None = None,
        retries: int | None = None,
        timeout: int | None = None,
        fan_out: ir.FanOut | None = None,
    ) -> ir.Step:
        """A built-in step with the catalog's defaults (mlspec.ir.catalog); training steps override some."""
        b = BUILTIN_BY_ID[step_id]
        return ir.Step(
            id=b.id,
            task_id=identifier(b.id),
            display_name=b.display_name,
            kind="builtin",
            action=b.id,
            image=self.image,
            command=[*RUNTIME_ENTRY, b.id],
            env={},
            depends_on=sorted(set(depends_on)),
            conditions=conditions or [],
            outputs=list(b.outputs),
            placement=runs_on or self._cpu_placement(b.cpu, b.memory),
            retries=b.retries if retries is None else retries,
            retry_backoff_seconds=policy.RETRY_BACKOFF_SECONDS,
            timeout_seconds=b.timeout_seconds if timeout is None else timeout,
            cache=False,
            fan_out=fan_out,
            service_account=b.service_account,
        )

    def _worker_placement(self, gpu_count: int) -> ir.Placement:
        """A training process's pod with `gpu_count` GPUs of the training type (its pool, cpu and memory)."""
        t = self.spec.training.resources
        request = placement.requests(self.spec)[0]
        if request.gpu_type:
            request = placement.Request(
                request.gpu_type, gpu_count, request.node_pool, request.path, request.what
            )
        return self._placement(
            request,
            t.cpu if t.cpu is not None else policy.TRAIN_CPU,
            t.memory if t.memory is not None else policy.TRAIN_MEMORY,
        )

    def _distribution(self) -> ir.Distribution:
        """How the train step spreads over processes and nodes (mlspec.ir.placement.training_plan)."""
        plan = placement.training_plan(self.spec)
        workers = self._worker_placement(plan.gpus_per_pod)
        backend = "nccl" if workers.gpu and workers.gpu.vendor in policy.NCCL_VENDORS else "gloo"
        max_restarts = self.spec.training.distributed.max_restarts
        command: list[str] = []
        env: dict[str, str] = {}
        if plan.launcher != "none":
            command = [RUNTIME_ENTRY[0], "-m", "torch.distributed.run"]
            command += ["--standalone"] if plan.launcher == "standalone" else []
            command += [
                f"--nnodes={plan.nodes}",
                f"--nproc-per-node={plan.processes_per_node}",
                f"--max-restarts={max_restarts}",
                *RUNTIME_ENTRY[1:],
                "train",
            ]
            env = {**policy.COLLECTIVE_ENV[backend], contracts.DDP_WORKER_ENV: "1"}
        return ir.Distribution(
            launcher=plan.launcher,
            nodes=plan.nodes,
            processes_per_node=plan.processes_per_node,
            world_size=plan.nodes * plan.processes_per_node,
            backend=backend,
            max_restarts=max_restarts,
            rendezvous_port=contracts.RENDEZVOUS_PORT,
            command=command,
            env=dict(sorted(env.items())),
            placement=workers,
            template=dns_label(f"{self.name}-train-job") if plan.launcher in ("job", "trainjob") else None,
        )

    def _training_pipeline(self) -> ir.Pipeline:
        s = self.spec
        t = s.training
        distribution = self._distribution()
        if distribution.nodes > 1:  # the step launches the workers' job and waits for it
            train_placement = self._cpu_placement(policy.LAUNCHER_CPU, policy.LAUNCHER_MEMORY)
        else:
            train_placement = distribution.placement
        # A tuning trial is one process: it gets one GPU of the training type.
        trial_placement = self._worker_placement(1)
        train_timeout = duration_seconds(t.timeout) if t.timeout else policy.TRAIN_TIMEOUT_SECONDS
        steps: list[ir.Step] = []
        if s.data.raw_checks:
            steps.append(self._builtin("validate-raw", depends_on=[]))
        steps.append(self._builtin("validate-data", depends_on=["validate-raw"] if s.data.raw_checks else []))
        train_deps = ["validate-data"]
        if t.tuning:
            steps.append(
                self._builtin(
                    "tune-trial",
                    depends_on=["validate-data"],
                    runs_on=trial_placement,
                    retries=t.retries,
                    timeout=train_timeout,
                    fan_out=ir.FanOut(count=t.tuning.trials, parallelism=t.tuning.parallelism),
                )
            )
            steps.append(self._builtin("tune-select", depends_on=["tune-trial"]))
            train_deps = ["tune-select"]
        steps += [
            self._builtin(
                "train",
                depends_on=train_deps,
                runs_on=train_placement,
                retries=t.retries,
                timeout=train_timeout,
            ),
            self._builtin("evaluate", depends_on=["train"]),
            self._builtin("export", depends_on=["evaluate"], conditions=["gates-passed"]),
            self._builtin("register", depends_on=["export"], conditions=["gates-passed"]),
            self._builtin("promote", depends_on=["register"], conditions=["gates-passed", "beats-champion"]),
        ]
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
            extra_deps[u.name] = {d for d in self.flow.after.get(u.name, ()) if d in known}
        sources = set(self.spec.data.sources)
        for u in user:
            for target in _as_list(u.before):
                if target in known:
                    extra_deps[target].add(u.name)
            for source in _as_list(u.after):
                if source in known:
                    extra_deps[u.name].add(source)
            if sources & set(u.outputs):  # data preparation: validate-data checks and splits its output
                extra_deps["validate-data"].add(u.name)
        user_steps = [
            ir.Step(
                id=u.name,
                task_id=identifier(u.name),
                display_name=u.name,
                kind="user",
                action="user",
                image=u.image or self.image,
                command=[*RUNTIME_ENTRY, u.name],
                env=dict(sorted(u.env.items())),
                depends_on=sorted(extra_deps[u.name]),
                conditions=[],
                outputs=list(BUILTIN_USER_OUTPUTS),
                placement=self._placement(
                    request,
                    u.resources.cpu if u.resources.cpu is not None else policy.USER_STEP_CPU,
                    u.resources.memory if u.resources.memory is not None else policy.USER_STEP_MEMORY,
                ),
                retries=u.retries,
                retry_backoff_seconds=policy.RETRY_BACKOFF_SECONDS,
                timeout_seconds=duration_seconds(u.timeout)
                if u.timeout
                else policy.USER_STEP_TIMEOUT_SECONDS,
                cache=u.cache,
                fan_out=None,
                service_account="training",
                user=self._user_action(u),
            )
            for u, request in zip(user, placement.requests(self.spec)[1:], strict=True)
        ]
        merged = [
            st.model_copy(update={"depends_on": sorted(set(st.depends_on) | extra_deps[st.id])})
            for st in builtins
        ]
        return _topological(user_steps + merged)

    def _user_action(self, u: sm.UserStep) -> ir.UserAction:
        """The user's command or transform and its data contract, as the runtime's user action enforces it."""
        data_sets = set(u.outputs)
        return ir.UserAction(
            argv=list(u.command) if u.command else None,
            transform=u.transform,
            inputs=[ir.DataSetRef(name=v.name, step=v.step) for v in self.flow.inputs.get(u.name, [])],
            outputs=[
                ir.DataOutput(
                    name=name,
                    columns=self._columns(self.flow.columns.get((u.name, name), {})),
                    adds=list(out.adds),
                )
                for name, out in u.outputs.items()
            ],
            files=[name for name in _declared_outputs(u.command or []) if name not in data_sets],
        )

    def _monitoring_pipeline(self) -> ir.Pipeline:
        m = self.spec.monitoring
        assert m is not None
        steps = [self._builtin("monitor", depends_on=[])]
        if m.shards > 1:
            fan_out = ir.FanOut(
                count=m.shards,
                parallelism=min(m.shards, policy.MONITOR_PARALLELISM),
                index_arg=policy.MONITOR_SHARD_ARG,
            )
            steps = [
                self._builtin("monitor-plan", depends_on=[]),
                self._builtin("monitor-summarize", depends_on=["monitor-plan"], fan_out=fan_out),
                self._builtin("monitor", depends_on=["monitor-summarize"]),
            ]
        conditions = []
        if self.spec.retraining is not None:
            steps.append(
                self._builtin("trigger-retrain", depends_on=["monitor"], conditions=["retrain-needed"])
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
                goal=t.tuning.metric.goal or policy.metric_goal(t.tuning.metric.name),
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
            distribution=self._distribution(),
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
        goal = policy.metric_goal(champion_metric) if champion_metric else "maximize"
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
        request, problems = placement.serving_request(self.spec)
        _raise(problems, self.spec_path)
        assert request is not None
        where = self._placement(
            request,
            sv.resources.cpu if sv.resources.cpu is not None else policy.SERVING_CPU,
            sv.resources.memory if sv.resources.memory is not None else policy.SERVING_MEMORY,
        )
        r = sv.rollout
        slo = slo_policy(sv)
        rollout = ir.Rollout(
            strategy=r.strategy,
            steps=list(r.steps),
            step_duration_seconds=duration_seconds(r.step_duration) if r.step_duration else None,
            traffic_split=r.traffic_split,
            experiment_duration_seconds=duration_seconds(r.experiment_duration)
            if r.experiment_duration
            else None,
            shadow_percent=r.shadow_percent,
            analysis=self._rollout_analysis(r, slo),
        )
        server_id = dns_label(f"{self.name}-server")
        cache = None
        if sv.cache:
            cache = ir.Cache(
                backend=sv.cache.backend,
                ttl_seconds=duration_seconds(sv.cache.ttl),
                service=dns_label(f"{self.name}-cache"),
            )
        registry = self._registry()
        autoscaling = sv.autoscaling
        return ir.Serving(
            id=server_id,
            model_name=registry.model_name,
            model_uri=f"models:/{registry.model_name}@{registry.champion_alias}",
            runtime=sv.runtime,
            accelerator="gpu" if where.gpu else "cpu",
            port=sv.port,
            replicas_min=sv.replicas.min,
            replicas_max=sv.replicas.max,
            target_cpu_percent=autoscaling.target_cpu_percent if autoscaling else None,
            target_rps_per_replica=autoscaling.target_rps_per_replica if autoscaling else None,
            placement=where,
            slo=slo,
            rollout=rollout,
            cache=cache,
            max_batch_size=sv.batching.max_batch_size,
            max_batch_delay_ms=sv.batching.max_delay_ms,
            prediction_log=self._prediction_log(),
            sample_rate=sv.sample_rate,
            service_account="serving",
            variants=_variants(r.strategy, server_id, registry),
        )

    def _rollout_analysis(self, r: sm.Rollout, slo: ir.SloPolicy) -> ir.RolloutAnalysis:
        """The promotion policy and the analysis of the rollout strategy (docs/monitoring.md, the loop)."""
        a = r.analysis
        limits = slo.rollback
        online = dict(
            promotion="after-analysis",
            schedule=policy.ANALYSIS_SCHEDULE,
            min_samples=a.min_samples or policy.ANALYSIS_MIN_SAMPLES,
            max_error_rate=limits.max_error_rate if limits else None,
            max_latency_p99_ms=limits.max_latency_p99_ms if limits else None,
            max_latency_bucket_seconds=limits.max_latency_bucket_seconds if limits else None,
        )
        nothing = dict(min_agreement=None, max_score_distance=None, metric=None, goal=None, significance=None)
        if r.strategy == "shadow":
            return ir.RolloutAnalysis(
                kind="shadow",
                challenger_variant=contracts.SHADOW,
                duration_seconds=duration_seconds(r.step_duration)
                if r.step_duration
                else policy.SHADOW_DURATION_SECONDS,
                **online,
                **{
                    **nothing,
                    "min_agreement": a.min_agreement or policy.SHADOW_MIN_AGREEMENT,
                    "max_score_distance": a.max_score_distance or policy.SHADOW_MAX_SCORE_DISTANCE,
                },
            )
        if r.strategy == "canary":
            pauses = sum(1 for weight in r.steps if weight < 100)
            return ir.RolloutAnalysis(
                kind="slo",
                challenger_variant=contracts.CHALLENGER,
                duration_seconds=pauses * (duration_seconds(r.step_duration) if r.step_duration else 0),
                **online,
                **nothing,
            )
        if r.strategy == "a-b":
            m = self.spec.monitoring
            e = self.spec.evaluation
            metric = (
                a.metric
                or (m.performance.metric if m and m.performance else None)
                or (e.champion.compare_on if e.champion else None)
                or (e.metrics[0] if e.metrics else "accuracy")
            )
            return ir.RolloutAnalysis(
                kind="experiment",
                challenger_variant=contracts.CHALLENGER,
                duration_seconds=duration_seconds(r.experiment_duration) if r.experiment_duration else 0,
                **online,
                **{
                    **nothing,
                    "metric": metric,
                    "goal": policy.metric_goal(metric),
                    "significance": a.significance or policy.EXPERIMENT_SIGNIFICANCE,
                },
            )
        # rolling and blue-green serve the champion alias alone: the champion comparison at training decides
        return ir.RolloutAnalysis(
            kind="offline",
            promotion="at-training",
            challenger_variant=None,
            duration_seconds=0,
            schedule=None,
            min_samples=0,
            max_error_rate=None,
            max_latency_p99_ms=None,
            max_latency_bucket_seconds=None,
            **nothing,
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
        sv = self.spec.serving
        mirrored = [contracts.SHADOW] if sv and sv.rollout.strategy == "shadow" else []
        return ir.Monitoring(
            schedule=m.schedule,
            window_seconds=duration_seconds(m.window),
            min_samples=m.min_samples,
            drift=drift,
            performance=performance,
            latency_percentiles=list(m.operational.latency_percentiles),
            owner=self._owner(),
            excluded_sources=[contracts.LOADTEST_SOURCE],
            excluded_variants=mirrored,
            shards=m.shards,
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
        owner = self._owner()
        return ir.Retraining(
            triggers=triggers,
            cooldown_seconds=duration_seconds(r.cooldown),
            min_samples=r.min_samples,
            sink=owner,
            owner=owner,
            state_uri=self._trigger_state_uri(),
        )

    def _prediction_log(self) -> str | None:
        sv = self.spec.serving
        if sv is None:
            return None
        infra = self.spec.infrastructure
        default = f"{self._artifacts_root()}/predictions" if infra else f"{self._local_prefix()}/predictions"
        return sv.prediction_log or default

    def _serving_write_prefix(self) -> str | None:
        """The server writes only its prediction log: the prefix of it under the system's artifacts prefix."""
        log = self._prediction_log()
        if self.spec.infrastructure is None or not log:
            return None
        return policy.key_prefix_under(log, self._artifacts_root())

    def _service_accounts(self) -> list[ir.ServiceAccount]:
        infra = self.spec.infrastructure
        out = []
        for sa_id, access in (("training", "read-write"), ("serving", "read"), ("monitoring", "read-write")):
            name = dns_label(f"{self.name}-{sa_id}")
            cluster = infra.cluster.name if infra else self.name
            role = f"{cluster}-{self.name}-{sa_id}"[:64]
            arn = f"arn:aws:iam::{infra.account_id}:role/{role}" if infra and infra.account_id else None
            write_prefix = self._serving_write_prefix() if sa_id == "serving" else None
            writes = policy.OBJECT_WRITE_ACTIONS if access == "read-write" else ()
            out.append(
                ir.ServiceAccount(
                    id=sa_id,
                    name=name,
                    namespace=self.namespace,
                    role_name=role,
                    role_arn=arn,
                    bucket_access=access,
                    object_read_actions=list(policy.OBJECT_READ_ACTIONS),
                    object_write_actions=list(policy.PREFIX_WRITE_ACTIONS if write_prefix else writes),
                    write_prefix=write_prefix,
                    key_actions=list(policy.KEY_ACTIONS["read-write" if write_prefix else access]),
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
        cluster = infra.cluster.name
        return ir.Infrastructure(
            cloud=infra.cloud,
            region=infra.region,
            account_id=infra.account_id,
            cluster_name=cluster,
            cluster_version=infra.cluster.version,
            node_pools=self.pools,
            network=self._network(infra),
            artifacts_bucket=infra.storage.artifacts_bucket,
            artifacts_prefix=self.artifacts_prefix,
            noncurrent_version_days=infra.storage.noncurrent_version_days,
            container_registry=infra.container_registry
            or (f"{self.name}-{self.environment}" if self.environment else self.name),
            state=state,
            cluster_role_name=cloud.platform_role_name(cluster, "cluster"),
            node_role_name=cloud.platform_role_name(cluster, "nodes"),
            cluster_log_group=cloud.cluster_log_group(cluster),
            log_retention_days=policy.LOG_RETENTION_DAYS,
            kms_key_alias=cloud.kms_key_alias(cluster),
            kms_deletion_window_days=policy.KMS_DELETION_WINDOW_DAYS,
        )

    def _network(self, infra: sm.Infrastructure) -> ir.Network:
        net, cluster = infra.network, infra.cluster.name
        creates = net.vpc_id is None  # an existing VPC is used as given: no subnets, no flow logs
        private, public = cloud.subnet_cidrs(net.cidr, net.availability_zones) if creates else ([], [])
        return ir.Network(
            vpc_id=net.vpc_id,
            subnet_ids=net.subnet_ids,
            cidr=net.cidr,
            availability_zones=net.availability_zones,
            zones=cloud.zone_names(infra.region, net.availability_zones) if creates else [],
            private_subnets=private,
            public_subnets=public,
            flow_logs_group=cloud.flow_logs_group(cluster) if creates else None,
            flow_logs_role_name=cloud.platform_role_name(cluster, "flow-logs") if creates else None,
        )


def slo_policy(sv: sm.Serving) -> ir.SloPolicy:
    """The one SLO policy the server, the alert rules, the rollout analysis and the load test all apply."""
    objective = None
    if sv.slo is not None:
        objective = ir.SloObjective(
            latency_p99_ms=sv.slo.latency_p99_ms,
            latency_bucket_seconds=policy.seconds_bucket(sv.slo.latency_p99_ms),
            availability_percent=sv.slo.availability_percent,
            error_budget=round(1 - sv.slo.availability_percent / 100, 10),
            window=sv.slo.window,
            window_seconds=duration_seconds(sv.slo.window),
            burn_rate_alerts=[
                ir.BurnRateAlert(severity=severity, long_window=long, short_window=short, factor=factor)
                for severity, long, short, factor in policy.BURN_RATE_ALERTS
            ],
        )
    limits = sv.rollout.rollback_on
    rollback = None
    if limits.error_rate is not None or limits.latency_p99_ms is not None:
        rollback = ir.RollbackThresholds(
            max_error_rate=limits.error_rate,
            max_latency_p99_ms=limits.latency_p99_ms,
            max_latency_bucket_seconds=policy.seconds_bucket(limits.latency_p99_ms)
            if limits.latency_p99_ms is not None
            else None,
        )
    return ir.SloPolicy(
        histogram_buckets_seconds=policy.latency_buckets(
            sv.slo.latency_p99_ms if sv.slo else None, limits.latency_p99_ms
        ),
        latency_quantile=policy.LATENCY_QUANTILE,
        error_status_classes=list(policy.ERROR_STATUS_CLASSES),
        objective=objective,
        rollback=rollback,
    )


def _variants(strategy: str, server_id: str, registry: ir.Registry) -> list[ir.Variant]:
    """The model servers of a rollout strategy, named as the prediction log and the analysis name them."""
    champion = ir.Variant(
        name=contracts.CHAMPION, workload=server_id, model_alias=registry.champion_alias, mirrored=False
    )
    if strategy == "shadow":
        second = ir.Variant(
            name=contracts.SHADOW,
            workload=f"{server_id}-shadow",
            model_alias=registry.challenger_alias,
            mirrored=True,
        )
    elif strategy in ("a-b", "canary"):
        suffix = "challenger" if strategy == "a-b" else "canary"
        second = ir.Variant(
            name=contracts.CHALLENGER,
            workload=f"{server_id}-{suffix}",
            model_alias=registry.challenger_alias,
            mirrored=False,
        )
    else:
        return [champion]
    return [champion, second]


def _raise(problems: list[placement.Problem], spec_path: str) -> None:
    """Lint reports these at their spec lines first; lowering a spec that skipped lint still fails clearly."""
    if problems:
        raise MlspecError(
            [Diagnostic(p.code, p.message, Location(spec_path, 0, 0), hint=p.hint) for p in problems]
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
