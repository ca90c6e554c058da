"""The intermediate representation: the only contract between the front end, the backends and the runtime.

Frozen, versioned, JSON-serializable and fully resolved: defaults applied, the environment overlay merged,
durations in seconds, quantities normalized, every name legal for every target (`id` is a DNS-1123 label,
`task_id` a Python/Terraform identifier). Objects reference each other by id.

It records decisions, not inputs: where each workload runs (`Placement`), what the SLO means (`SloPolicy`),
which image family a node pool boots. A backend translates these; it never re-derives one.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# MAJOR.MINOR: a reader accepts its own major version and any minor version (unknown optional fields of a
# newer minor version are ignored on read); a new major version is refused with a clear error.
IR_VERSION = "2.4"


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class System(Node):
    name: str
    namespace: str
    owner: str | None
    description: str | None
    labels: dict[str, str]
    spec_path: str = Field(description="The spec, relative to its project root, POSIX.")
    spec_sha256: str = Field(
        description="sha256 of the spec's parsed content (canonical JSON), so a comment or reformatting leaves "
        "the IR, and every file generated from it, unchanged; the manifest records the file's own sha256."
    )
    environment: str | None
    environments: list[str] = Field(
        default_factory=list, description="Every environment the spec defines, in spec order (IR 2.1)."
    )


class Column(Node):
    name: str
    type: str
    role: str
    pii: bool
    unique: bool
    nullable: bool
    min: float | None
    max: float | None
    values: list[str | int | float | bool] | None
    produced_by: str | None = Field(
        None, description="Id of the step that adds this column; None: the raw sources carry it."
    )


class DataSource(Node):
    name: str
    uri: str
    format: Literal["parquet", "csv"]


class DataSetRef(Node):
    """One version of a data set: a data source as read, or what a step wrote under that name."""

    name: str
    step: str | None = Field(description="Id of the step whose output this is; None: the data source itself.")


class Transform(Node):
    """A row-wise transform a preparation step declares; the model server applies it to request rows."""

    step: str
    function: str = Field(description="module:function(frame) -> frame.")
    adds: list[str] = Field(description="Columns it adds.")


class Data(Node):
    sources: list[DataSource]
    target: str
    task: Literal["classification", "regression"]
    columns: list[Column] = Field(description="The prepared training data's schema (data.schema).")
    features: list[str] = Field(description="Columns the model consumes, in input order.")
    checks: list[dict[str, Any]]
    split: dict[str, Any]
    raw_checks: list[dict[str, Any]] = Field(
        default_factory=list, description="Checks on the raw sources, run by validate-raw before any step."
    )
    prepared: list[DataSetRef] = Field(
        default_factory=list,
        description="The version of each data source validate-data reads (the last step that wrote it).",
    )
    transforms: list[Transform] = Field(
        default_factory=list,
        description="What the server applies to request rows before encoding them, in pipeline order.",
    )


class Taint(Node):
    key: str
    value: str
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class GpuRequest(Node):
    vendor: Literal["nvidia", "amd", "aws"]
    product: str = Field(description="The GPU type, also the value of the pool's accelerator node label.")
    resource: str = Field(description="Kubernetes extended resource to request, e.g. nvidia.com/gpu.")
    count: int = Field(description="Accelerators per pod (per worker for distributed training).")


class Placement(Node):
    """Where one workload runs and what it asks for, decided once in lowering."""

    cpu: str = Field(description="Kubernetes quantity, used for requests and limits.")
    memory: str = Field(description="Kubernetes quantity, used for requests and limits.")
    gpu: GpuRequest | None
    node_pool: str | None = Field(description="Id of the node pool this workload runs on, if pinned.")
    node_selector: dict[str, str] = Field(description="The pool's selector labels (empty when unpinned).")
    tolerations: list[Taint] = Field(description="The pool's taints, tolerated.")


class DataOutput(Node):
    name: str
    columns: list[Column] = Field(
        description="What the runtime checks the written data set against: each column present with its "
        "type, nulls, range and allowed values."
    )
    adds: list[str] = Field(description="Columns this step adds to the data set.")


class UserAction(Node):
    """What a user step runs, and its data contract; the runtime's step action enforces it."""

    argv: list[str] | None = Field(
        description="The user's command: {inputs.X}/{outputs.X} are local Parquet files, {run_dir} the run "
        "folder; a leading python is the runtime's own interpreter."
    )
    transform: str | None = Field(description="module:function applied to the one input when argv is None.")
    inputs: list[DataSetRef]
    outputs: list[DataOutput]
    files: list[str] = Field(description="{outputs.X} names that are no data set: files the step writes.")


class FanOut(Node):
    count: int
    parallelism: int
    index_arg: str = "--trial"


class Step(Node):
    id: str = Field(description="DNS-1123 label, unique in its pipeline.")
    task_id: str = Field(description="Identifier form of id (Airflow task id, Terraform-safe).")
    display_name: str
    kind: Literal["builtin", "user"]
    action: Literal[
        "validate-raw",
        "validate-data",
        "tune-trial",
        "tune-select",
        "train",
        "evaluate",
        "export",
        "register",
        "promote",
        "monitor-plan",
        "monitor-summarize",
        "monitor",
        "trigger-retrain",
        "user",
    ]
    image: str
    command: list[str] = Field(
        description="argv; for builtin steps the runtime entry point without --ir/--run-dir."
    )
    env: dict[str, str]
    depends_on: list[str]
    conditions: list[str] = Field(description="Ids of conditions that must all hold for this step to run.")
    outputs: list[str] = Field(description="Result keys this step publishes (e.g. gates_passed).")
    placement: Placement
    retries: int
    retry_backoff_seconds: int
    timeout_seconds: int | None
    cache: bool
    fan_out: FanOut | None
    service_account: str = Field(description="Id of a ServiceAccount in IR.service_accounts.")
    user: UserAction | None = Field(None, description="A user step's command and data contract.")


class Gate(Node):
    metric: str
    op: Literal[">=", "<="]
    threshold: float


class Condition(Node):
    id: str
    step: str = Field(description="The step whose result carries the boolean.")
    output: str = Field(description="Key in that step's result JSON.")
    description: str
    gates: list[Gate]


class Pipeline(Node):
    id: str
    task_id: str
    description: str
    steps: list[Step]
    conditions: list[Condition]
    schedule: str | None = Field(description="Cron expression, or None when started by triggers.")


class SearchDim(Node):
    name: str
    kind: Literal["uniform", "log_uniform", "int", "choice"]
    low: float | None
    high: float | None
    choices: list[Any] | None


class Tuning(Node):
    method: Literal["grid", "random", "tpe"]
    trials: int
    parallelism: int
    metric: str
    goal: Literal["maximize", "minimize"]
    space: list[SearchDim]


class Distribution(Node):
    """How the train step spreads over processes and nodes, decided in lowering from its placement."""

    launcher: Literal["none", "standalone", "job", "trainjob"] = Field(
        description="none: one process; standalone: torchrun on one node, in the train step's own pod; job: an "
        "Indexed Job and a headless Service (c10d rendezvous); trainjob: a Kubeflow Trainer TrainJob. For job "
        "and trainjob the train step launches the workers on the cluster and waits for them."
    )
    nodes: int
    processes_per_node: int = Field(description="One per GPU of a node's placement (one on CPU).")
    world_size: int
    backend: Literal["nccl", "gloo"] = Field(description="nccl on NVIDIA GPUs, gloo otherwise.")
    max_restarts: int = Field(description="Elastic restarts of the whole worker group.")
    rendezvous_port: int
    command: list[str] = Field(
        description="What each node runs: torchrun over the runtime's train step (empty for one process)."
    )
    env: dict[str, str] = Field(description="Environment of the worker processes (collective settings).")
    placement: Placement = Field(
        description="Each node's pod; the train step's own placement is the launcher's when nodes > 1."
    )
    template: str | None = Field(
        description="Name of the ConfigMap that holds the job template the train step launches (job, trainjob)."
    )


class Training(Node):
    entrypoint: str | None
    builtin: dict[str, Any] | None
    framework: str
    hyperparameters: dict[str, Any]
    tuning: Tuning | None
    cv_folds: int | None
    workers: int
    seed: int
    export_format: str
    opset: int
    parity_tolerance: float
    distribution: Distribution | None = Field(
        None, description="Always set by lowering; None (an IR 2.0 file): one process."
    )


class Evaluation(Node):
    metrics: list[str]
    custom_metrics: dict[str, str]
    gates: list[Gate]
    champion_metric: str | None
    champion_min_improvement: float
    champion_goal: Literal["maximize", "minimize"]


class Registry(Node):
    kind: Literal["mlflow"]
    tracking_uri: str
    model_name: str
    experiment: str
    challenger_alias: str = "challenger"
    champion_alias: str = "champion"


class BurnRateAlert(Node):
    severity: Literal["page", "ticket"]
    long_window: str
    short_window: str
    factor: float


class SloObjective(Node):
    latency_p99_ms: float
    latency_bucket_seconds: float = Field(description="The histogram bucket boundary equal to the target.")
    availability_percent: float
    error_budget: float = Field(description="1 - availability: the fraction of requests allowed to fail.")
    window: str
    window_seconds: int
    burn_rate_alerts: list[BurnRateAlert]


class RollbackThresholds(Node):
    max_error_rate: float | None
    max_latency_p99_ms: float | None
    max_latency_bucket_seconds: float | None = Field(description="The bucket boundary equal to the limit.")


class SloPolicy(Node):
    """What the server measures and how every target judges it: alerts, rollout analysis, load test."""

    histogram_buckets_seconds: list[float] = Field(
        description="The server's latency buckets; include the objective's and the rollback's exactly."
    )
    latency_quantile: float = Field(description="Latency thresholds are this quantile (0.99: p99).")
    error_status_classes: list[int] = Field(description="HTTP status classes that count as errors (5: 5xx).")
    objective: SloObjective | None
    rollback: RollbackThresholds | None


class RolloutAnalysis(Node):
    """How a challenger earns the champion alias: the promotion policy and the analysis the strategy runs.

    `mlspec analyze` evaluates it (by hand, or on `schedule` in the cluster); training only registers the
    challenger unless `promotion` is at-training.
    """

    kind: Literal["offline", "slo", "shadow", "experiment"] = Field(
        description="offline: the champion comparison at training (rolling, blue-green); slo: the challenger "
        "variant's error rate and latency (canary); shadow: challenger against champion on mirrored requests; "
        "experiment: a significance test on labeled requests of both variants (a-b)."
    )
    promotion: Literal["at-training", "after-analysis"]
    challenger_variant: str | None = Field(description="The variant whose requests are judged.")
    duration_seconds: int = Field(description="How long the challenger runs before the verdict.")
    schedule: str | None = Field(description="Cron of the analysis in the cluster; None for offline.")
    min_samples: int = Field(description="Requests (experiment: labeled requests) per variant for a verdict.")
    max_error_rate: float | None
    max_latency_p99_ms: float | None
    max_latency_bucket_seconds: float | None = Field(description="The histogram bucket equal to the limit.")
    min_agreement: float | None = Field(description="shadow, classification: same predicted class share.")
    max_score_distance: float | None = Field(description="shadow: Kolmogorov-Smirnov distance of scores.")
    metric: str | None = Field(description="experiment: the metric compared.")
    goal: Literal["maximize", "minimize"] | None
    significance: float | None = Field(description="experiment: the test's significance level (alpha).")


class Rollout(Node):
    strategy: Literal["canary", "shadow", "a-b", "blue-green", "rolling"]
    steps: list[int]
    step_duration_seconds: int | None
    traffic_split: int | None
    experiment_duration_seconds: int | None
    shadow_percent: int
    analysis: RolloutAnalysis | None = None


class Variant(Node):
    """One model server of the rollout; the prediction log's `variant` column names it."""

    name: Literal["champion", "challenger", "shadow"]
    workload: str = Field(description="DNS-1123 name of its Deployment/Rollout and Service.")
    model_alias: str = Field(description="The registry alias it serves (hot-reloaded when it moves).")
    mirrored: bool = Field(description="It answers copies of requests; monitoring does not count its rows.")


class Cache(Node):
    backend: Literal["redis"]
    ttl_seconds: int
    service: str = Field(description="DNS name of the cache Service.")


class Serving(Node):
    id: str = Field(description="DNS-1123 name of the server workload.")
    model_name: str
    model_uri: str
    runtime: str
    accelerator: Literal["cpu", "gpu"]
    port: int
    replicas_min: int
    replicas_max: int
    target_cpu_percent: int | None
    target_rps_per_replica: float | None
    placement: Placement
    slo: SloPolicy
    rollout: Rollout
    cache: Cache | None
    max_batch_size: int
    max_batch_delay_ms: float
    prediction_log: str
    sample_rate: float
    service_account: str
    variants: list[Variant] = Field(default_factory=list, description="Every model server of the rollout.")


class DriftMonitor(Node):
    features: list[str]
    method: str
    threshold: float
    correlation_change: float | None


class PerformanceMonitor(Node):
    metric: str
    min: float | None
    max: float | None
    label_delay_seconds: int
    confusion_matrix: bool


Owner = Literal["airflow", "kubeflow", "kubernetes", "local"]


class Monitoring(Node):
    schedule: str
    window_seconds: int
    min_samples: int
    drift: DriftMonitor | None
    performance: PerformanceMonitor | None
    latency_percentiles: list[float]
    owner: Owner = Field(
        "local",
        description="The one target that schedules the monitor (the others compile no monitoring schedule); "
        "local: nobody, `mlspec monitor` by hand.",
    )
    excluded_sources: list[str] = Field(
        default_factory=list, description="Traffic sources the monitor skips (the load test's)."
    )
    excluded_variants: list[str] = Field(
        default_factory=list, description="Variants the monitor skips: mirrored copies of requests."
    )
    shards: int = Field(
        1,
        description="Parallel monitor-summarize tasks the monitoring pipeline fans the window's log partitions "
        "out to (1: the monitor step reads the whole window itself).",
    )


class Trigger(Node):
    id: str
    kind: Literal["schedule", "drift", "performance", "volume", "data_quality"]
    cron: str | None = None
    threshold: float | None = None
    features: int | None = None
    metric: str | None = None
    below: float | None = None
    above: float | None = None
    new_rows: int | None = None
    max_null_rate: float | None = None
    max_out_of_range_rate: float | None = None
    max_unseen_rate: float | None = None


class Retraining(Node):
    triggers: list[Trigger]
    cooldown_seconds: int
    min_samples: int
    sink: Literal["local", "airflow", "kubeflow", "kubernetes"] = Field(
        description="How the owning monitor starts retraining: airflow (asset event), kubeflow (a run of the "
        "uploaded training pipeline), kubernetes (a Job from the retrain template), local (`mlspec run`)."
    )
    owner: Owner = Field(
        "local",
        description="The one target that schedules training (schedule triggers) and runs the monitor that "
        "decides the other triggers.",
    )
    state_uri: str = Field(
        "",
        description="The trigger state (cooldown, volume count) of this system and environment; only the "
        "owner's monitor and training runs write it, with conditional writes.",
    )


class PoolGpu(Node):
    vendor: Literal["nvidia", "amd", "aws"]
    product: str
    resource: str
    per_node: int = Field(description="Accelerators on each node.")


class NodePool(Node):
    id: str = Field(description="DNS-1123 pool name, unique in the cluster.")
    task_id: str
    instance_type: str
    min: int
    max: int
    desired: int
    gpu: PoolGpu | None
    image_family: Literal["standard", "nvidia", "neuron"] = Field(
        description="The node image: standard, or one that ships the accelerator's driver."
    )
    disk_size_gb: int
    spot: bool
    labels: dict[str, str] = Field(description="Node labels set by the infrastructure.")
    taints: list[Taint]
    node_selector: dict[str, str] = Field(description="The labels a workload selects this pool with.")
    group_name: str = Field(description="Name of the pool's managed node group in the cloud.")
    ami_type: str | None = Field(description="EKS AMI type of the image family (None off AWS).")


class ServiceAccount(Node):
    id: Literal["training", "serving", "monitoring"]
    name: str = Field(description="Kubernetes ServiceAccount name.")
    namespace: str
    role_name: str = Field(description="Cloud IAM role bound to it (IRSA).")
    role_arn: str | None = Field(description="Known when infrastructure.account_id is set.")
    bucket_access: Literal["read", "read-write"]
    object_read_actions: list[str] = Field(
        description="Actions its role may take on objects under Infrastructure.artifacts_prefix."
    )
    object_write_actions: list[str] = Field(
        description="Write actions there (empty when it writes nothing), under write_prefix when that is set."
    )
    write_prefix: str | None = Field(
        None,
        description="With read access, the one key prefix under artifacts_prefix it writes (the server's "
        "prediction log); None: read-write access writes anywhere under artifacts_prefix.",
    )
    key_actions: list[str] = Field(description="Actions its role may take with the platform KMS key.")

    def access(self) -> str:
        """Its role's reach under the artifacts prefix, in words (the infrastructure READMEs' tables)."""
        return self.bucket_access + (f", writes `{self.write_prefix}/`" if self.write_prefix else "")


class Network(Node):
    vpc_id: str | None
    subnet_ids: list[str] | None
    cidr: str
    availability_zones: int
    zones: list[str] = Field(description="Zone names of the created subnets (empty with an existing VPC).")
    private_subnets: list[str] = Field(description="CIDR of the private subnet in each zone, in zone order.")
    public_subnets: list[str] = Field(description="CIDR of the public (NAT, load balancer) subnet per zone.")
    flow_logs_group: str | None = Field(description="Log group of the VPC flow logs (created VPC only).")
    flow_logs_role_name: str | None = Field(description="IAM role that delivers the flow logs.")


class RemoteState(Node):
    backend: Literal["s3"]
    bucket: str
    key: str
    region: str
    lock_table: str | None


class Infrastructure(Node):
    cloud: Literal["aws", "gcp"]
    region: str
    account_id: str | None
    cluster_name: str
    cluster_version: str
    node_pools: list[NodePool]
    network: Network
    artifacts_bucket: str
    artifacts_prefix: str = Field(
        description="This system's key prefix in the bucket; roles are scoped to it."
    )
    noncurrent_version_days: int
    container_registry: str
    state: RemoteState | None
    cluster_role_name: str = Field(description="IAM role of the EKS control plane.")
    node_role_name: str = Field(description="IAM role of every node group's nodes.")
    cluster_log_group: str = Field(description="Log group of the control-plane logs.")
    log_retention_days: int = Field(description="Retention of the control-plane and flow log groups.")
    kms_key_alias: str = Field(description="Alias of the platform key (secrets, bucket, registry, logs).")
    kms_deletion_window_days: int = Field(description="Days a deleted platform key stays recoverable.")


class RuntimeImage(Node):
    """The one image every step and the server run, where it lives and what goes into it (IR 2.1)."""

    reference: str = Field(description="repository:tag; equal to images['runtime'].")
    repository: str
    tag: str
    registry: str = Field(description="Registry host, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com.")
    registry_kind: Literal["ecr", "ghcr", "other"]
    ecr_repository: str | None = Field(
        description="The ECR repository (= infrastructure.container_registry) when the image lives in ECR."
    )
    region: str | None = Field(description="The ECR repository's region.")
    accelerator: Literal["cpu", "cuda"] = Field(
        description="cuda when any step or the server requests an NVIDIA GPU: the image carries the CUDA runtime."
    )
    extras: list[str] = Field(description="mlspec extras the compiled targets run in it (pip extras).")
    python: str = Field(description="Python minor version of the image.")
    mlspec_version: str = Field(description="The mlspec release installed in it (the compiler's own).")


class PlatformComponent(Node):
    """A controller, CRD set, API or add-on the generated artifacts rely on, and who provides it (IR 2.1)."""

    id: str = Field(description="DNS-1123 name of the component.")
    purpose: str = Field(description="Which part of the system needs it.")
    kinds: list[str] = Field(
        description="Object kinds it serves, as apiVersion/Kind (e.g. argoproj.io/v1alpha1/Rollout)."
    )
    apis: list[str] = Field(
        description="Aggregated APIs it serves, as group/version (e.g. metrics.k8s.io/v1beta1)."
    )
    resources: list[str] = Field(description="Extended node resources it advertises (e.g. nvidia.com/gpu).")
    metrics: list[str] = Field(
        default_factory=list,
        description="Prometheus metric names it exposes that the generated dashboards query (IR 2.2).",
    )
    installed_by: Literal["cluster", "infrastructure", "kubernetes", "you"] = Field(
        description="cluster: Kubernetes itself; infrastructure: the infrastructure target (terraform's "
        "main.tf.json or cloudformation's template.yaml, whichever is deployed); kubernetes: the generated "
        "platform kustomization; you: declared only, the platform team provides it."
    )
    source: str = Field(description="What provides it: an EKS add-on, a pinned upstream manifest or chart.")
    version: str
    namespace: str | None
    service_account: str | None = Field(
        description="namespace/name of its ServiceAccount when it needs IRSA."
    )
    role_name: str | None = Field(description="IAM role the infrastructure target creates for it (IRSA).")
    role_arn: str | None


class IR(Node):
    ir_version: str = IR_VERSION
    system: System
    images: dict[str, str]
    artifacts_root: str = Field(
        description="Where pipeline runs keep artifacts: s3://bucket/prefix or a local dir."
    )
    airflow_mode: Literal["kubernetes", "local"]
    data: Data
    training: Training
    evaluation: Evaluation
    registry: Registry
    pipelines: list[Pipeline] = Field(description="'training' always; 'monitoring' when monitoring is set.")
    serving: Serving | None
    monitoring: Monitoring | None
    retraining: Retraining | None
    service_accounts: list[ServiceAccount]
    infrastructure: Infrastructure | None
    targets: list[str]
    image: RuntimeImage | None = Field(None, description="The runtime image decision (IR 2.1).")
    platform: list[PlatformComponent] = Field(
        default_factory=list,
        description="Every prerequisite of the generated artifacts, in install order (IR 2.1).",
    )

    def pipeline(self, pipeline_id: str) -> Pipeline | None:
        return next((p for p in self.pipelines if p.id == pipeline_id), None)

    def node_pool(self, pool_id: str | None) -> NodePool | None:
        if pool_id is None or self.infrastructure is None:
            return None
        return next((p for p in self.infrastructure.node_pools if p.id == pool_id), None)

    def component(self, component_id: str) -> PlatformComponent | None:
        return next((c for c in self.platform if c.id == component_id), None)

    def service_account(self, sa_id: str) -> ServiceAccount:
        return next(sa for sa in self.service_accounts if sa.id == sa_id)

    def to_json(self) -> str:
        import json

        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class IRVersionError(ValueError):
    """The IR was written by an mlspec whose major IR version this reader does not understand."""


def read_ir(data: dict[str, Any]) -> IR:
    """An IR from its JSON form, as a runtime or server of this release reads one written by any 2.x compiler.

    The major version must match. Fields this release does not know (a newer minor version's additions)
    are dropped, not refused, so that a runtime image one release older than the compiler still runs.
    Writing (lowering) stays strict: the models forbid unknown fields.
    """
    import copy

    from pydantic import ValidationError

    version = str(data.get("ir_version", "")) if isinstance(data, dict) else ""
    major = version.split(".", 1)[0]
    if major != IR_VERSION.split(".", 1)[0]:
        newer = major.isdigit() and int(major) > int(IR_VERSION.split(".", 1)[0])
        raise IRVersionError(
            f"IR version {version or '(missing)'} is not readable by this mlspec (IR {IR_VERSION}): "
            + ("upgrade the runtime image to the compiler's release" if newer else "recompile the spec")
        )
    data = {**copy.deepcopy(data), "ir_version": IR_VERSION}
    for _ in range(64):  # each pass drops every unknown key the validator reported
        try:
            return IR.model_validate(data)
        except ValidationError as exc:
            unknown = [e["loc"] for e in exc.errors() if e["type"] == "extra_forbidden"]
            if not unknown or len(unknown) != len(exc.errors()):
                raise
            for loc in unknown:
                _drop(data, loc)
    return IR.model_validate(data)


def _drop(data: Any, loc: tuple) -> None:
    *parents, key = loc
    node = data
    for part in parents:
        node = node[part]
    if isinstance(node, dict):
        node.pop(key, None)
