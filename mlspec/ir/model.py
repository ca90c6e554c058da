"""The intermediate representation: the only contract between the front end, the backends and the runtime.

Frozen, versioned, JSON-serializable and fully resolved: defaults applied, the environment overlay merged,
durations in seconds, quantities normalized, every name legal for every target (`id` is a DNS-1123 label,
`task_id` a Python/Terraform identifier). Objects reference each other by id.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

IR_VERSION: Literal["1"] = "1"


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class System(Node):
    name: str
    namespace: str
    owner: str | None
    description: str | None
    labels: dict[str, str]
    spec_path: str = Field(description="The spec, relative to its project root, POSIX.")
    spec_sha256: str
    environment: str | None


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


class DataSource(Node):
    name: str
    uri: str
    format: Literal["parquet", "csv"]


class Data(Node):
    sources: list[DataSource]
    target: str
    task: Literal["classification", "regression"]
    columns: list[Column]
    features: list[str] = Field(description="Columns the model consumes, in input order.")
    checks: list[dict[str, Any]]
    split: dict[str, Any]


class Resources(Node):
    cpu: str | None = Field(description="Kubernetes quantity, used for requests and limits.")
    memory: str | None
    gpu_type: str | None
    gpu_count: int
    node_pool: str | None = Field(
        description="Id of the node pool whose labels and taints this workload targets."
    )


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
        "validate",
        "tune-trial",
        "tune-select",
        "train",
        "evaluate",
        "export",
        "register",
        "promote",
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
    resources: Resources
    retries: int
    retry_backoff_seconds: int
    timeout_seconds: int | None
    cache: bool
    fan_out: FanOut | None
    service_account: str = Field(description="Id of a ServiceAccount in IR.service_accounts.")


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


class Slo(Node):
    latency_p99_ms: float
    latency_bucket_seconds: float = Field(
        description="The histogram bucket boundary equal to the latency SLO."
    )
    availability_percent: float
    window: str
    window_seconds: int


class Rollout(Node):
    strategy: Literal["canary", "shadow", "a-b", "blue-green", "rolling"]
    steps: list[int]
    step_duration_seconds: int | None
    max_error_rate: float | None
    max_latency_p99_ms: float | None
    traffic_split: int | None
    experiment_duration_seconds: int | None
    shadow_percent: int


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
    resources: Resources
    slo: Slo | None
    latency_buckets_seconds: list[float] = Field(
        description="Server histogram buckets; include the SLO exactly."
    )
    rollout: Rollout
    cache: Cache | None
    max_batch_size: int
    max_batch_delay_ms: float
    prediction_log: str
    sample_rate: float
    service_account: str


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


class Monitoring(Node):
    schedule: str
    window_seconds: int
    min_samples: int
    drift: DriftMonitor | None
    performance: PerformanceMonitor | None
    latency_percentiles: list[float]


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
    sink: Literal["local", "airflow", "kubeflow"]


class Taint(Node):
    key: str
    value: str
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class NodePool(Node):
    id: str = Field(description="DNS-1123 pool name, unique in the cluster.")
    task_id: str
    instance_type: str
    min: int
    max: int
    desired: int
    gpu_type: str | None
    gpu_count: int = Field(description="GPUs per node; 0 for CPU pools.")
    disk_size_gb: int
    spot: bool
    labels: dict[str, str] = Field(description="Node labels set by the infrastructure.")
    taints: list[Taint]
    node_selector: dict[str, str] = Field(description="The labels a workload selects this pool with.")


class ServiceAccount(Node):
    id: Literal["training", "serving", "monitoring"]
    name: str = Field(description="Kubernetes ServiceAccount name.")
    namespace: str
    role_name: str = Field(description="Cloud IAM role bound to it (IRSA).")
    role_arn: str | None = Field(description="Known when infrastructure.account_id is set.")
    bucket_access: Literal["read", "read-write"]


class Network(Node):
    vpc_id: str | None
    subnet_ids: list[str] | None
    cidr: str
    availability_zones: int


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
    noncurrent_version_days: int
    container_registry: str
    state: RemoteState | None


class IR(Node):
    ir_version: Literal["1"] = IR_VERSION
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

    def pipeline(self, pipeline_id: str) -> Pipeline | None:
        return next((p for p in self.pipelines if p.id == pipeline_id), None)

    def node_pool(self, pool_id: str | None) -> NodePool | None:
        if pool_id is None or self.infrastructure is None:
            return None
        return next((p for p in self.infrastructure.node_pools if p.id == pool_id), None)

    def service_account(self, sa_id: str) -> ServiceAccount:
        return next(sa for sa in self.service_accounts if sa.id == sa_id)

    def to_json(self) -> str:
        import json

        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
