"""The mlops.yaml language: pydantic v2 models, extra keys forbidden everywhere.

The JSON Schema in schemas/mlspec.v1.schema.json is generated from these models (`mlspec schema`).
Structural rules live here; cross-section rules live in mlspec.lint.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

API_VERSION = "mlspec/v1"

DURATION_PATTERN = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h|d|w)$"
NAME_PATTERN = r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$"
MODULE_FUNCTION_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"

Duration = Annotated[str, Field(pattern=DURATION_PATTERN, examples=["30s", "10m", "2h", "7d"])]
# An environment name becomes a folder (generated/<system>/<env>/) and an IR value: an identifier, never a path.
EnvironmentName = Annotated[str, Field(pattern=NAME_PATTERN, examples=["staging", "prod"])]
Quantity = Annotated[str | int | float, Field(examples=[2, "500m", "16Gi"])]
Cron = Annotated[str, Field(examples=["*/30 * * * *", "0 3 * * 1"], min_length=1)]


def _integral(value: Any) -> Any:
    # YAML reads `min: 0.0` as a float, and JSON Schema calls 0.0 an integer: accept it as 0, like editors do.
    return int(value) if isinstance(value, float) and value.is_integer() else value


Int = Annotated[int, BeforeValidator(_integral)]
PositiveInt = Annotated[int, Field(ge=1), BeforeValidator(_integral)]
Fraction = Annotated[float, Field(gt=0, lt=1)]

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")
METRIC_NAMES = CLASSIFICATION_METRICS + REGRESSION_METRICS
DRIFT_METHODS = ("psi", "kl", "js", "wasserstein", "ks")
MetricName = Literal["accuracy", "precision", "recall", "f1", "auc", "log_loss", "rmse", "mae", "r2"]
DEFAULT_METRICS: tuple[MetricName, ...] = ("accuracy", "f1", "auc")
DriftMethod = Literal["psi", "kl", "js", "wasserstein", "ks"]
Target = Literal["ir", "kubeflow", "airflow", "terraform", "kubernetes", "cloudformation", "container", "ci"]
DEFAULT_TARGETS: tuple[Target, ...] = ("kubeflow", "airflow", "terraform", "kubernetes")


class Model(BaseModel):
    # strict: `spot: yes` or `trials: "3"` is an error here exactly as in the JSON Schema an editor uses.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)


# ----------------------------------------------------------------------------------------------- metadata


class Metadata(Model):
    name: str = Field(pattern=NAME_PATTERN, description="System name: lowercase letters, digits and '-'.")
    owner: str | None = Field(None, description="Owning team, used for labels and alert routing.")
    description: str | None = None
    labels: dict[str, str] = Field(
        default_factory=dict, description="Labels added to every generated object."
    )
    namespace: str | None = Field(
        None, pattern=NAME_PATTERN, description="Kubernetes namespace; defaults to the system name."
    )


class Images(Model):
    runtime: str = Field(
        min_length=1,
        description="Image with mlspec and the user's code; every step and the server run from it.",
    )


# ----------------------------------------------------------------------------------------------- data


class DataSource(Model):
    uri: str = Field(
        min_length=1,
        description="Local path or URI (s3://, file://); relative paths resolve from the working directory of the run (the project root).",
    )
    format: Literal["parquet", "csv"] | None = Field(
        None, description="Inferred from the file suffix when omitted."
    )


ColumnType = Literal["string", "int", "float", "bool", "datetime", "category"]
ColumnRole = Literal["feature", "target", "id", "timestamp", "ignore"]


class Column(Model):
    type: ColumnType
    role: ColumnRole = "feature"
    pii: bool = False
    unique: bool = False
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    values: list[str | int | float | bool] | None = Field(None, min_length=1, description="Allowed values.")


class DataSchema(Model):
    target: str = Field(min_length=1)
    task: Literal["classification", "regression"] | None = Field(
        None, description="Inferred: classification when the target has allowed values or is a category."
    )
    columns: dict[str, Column] = Field(min_length=1)


class NotNullCheck(Model):
    check: Literal["not_null"]
    columns: list[str] = Field(min_length=1)


class UniqueCheck(Model):
    check: Literal["unique"]
    columns: list[str] = Field(min_length=1)


class RowCountCheck(Model):
    check: Literal["row_count"]
    min: Int | None = Field(None, ge=0)
    max: Int | None = Field(None, ge=0)


class FreshnessCheck(Model):
    check: Literal["freshness"]
    column: str
    max_age: Duration


class NoPiiCheck(Model):
    check: Literal["no_pii_in_features"]
    sample_rows: PositiveInt = 10_000


class DriftCheck(Model):
    check: Literal["drift"]
    against: str = Field(description="A data source name, usually 'reference'.")
    method: DriftMethod = "psi"
    threshold: float = Field(gt=0)
    features: Literal["all"] | list[str] = "all"


class LeakageCheck(Model):
    check: Literal["leakage"]
    max_target_correlation: float = Field(0.95, gt=0, le=1)
    train_test_overlap: Int = Field(0, ge=0, description="Rows allowed in both train and test.")


DataCheck = Annotated[
    NotNullCheck | UniqueCheck | RowCountCheck | FreshnessCheck | NoPiiCheck | DriftCheck | LeakageCheck,
    Field(discriminator="check"),
]


class Split(Model):
    test: Fraction = 0.2
    seed: Int = 0
    stratify: str | None = None


class Data(Model):
    sources: dict[str, DataSource] = Field(
        description="Must contain 'train'; 'reference' feeds drift checks."
    )
    schema_: DataSchema = Field(alias="schema")
    checks: list[DataCheck] = Field(
        default_factory=list, description="Checks on the prepared data, before the split (validate-data)."
    )
    raw_checks: list[DataCheck] = Field(
        default_factory=list,
        description="Checks on the raw sources before any step prepares them (validate-raw); only raw columns.",
    )
    split: Split = Field(default_factory=Split)

    @field_validator("sources")
    @classmethod
    def _train_source(cls, value: dict[str, DataSource]) -> dict[str, DataSource]:
        if "train" not in value:
            raise ValueError("data.sources must define a 'train' source")
        return value


# ----------------------------------------------------------------------------------------------- resources


class Gpu(Model):
    type: str = Field(min_length=1, examples=["nvidia-a10g", "nvidia-t4", "nvidia-h100"])
    count: PositiveInt = 1


class Resources(Model):
    cpu: Quantity | None = None
    memory: Quantity | None = None
    gpu: Gpu | None = None
    node_pool: str | None = Field(
        None,
        description="Run on this node pool (infrastructure.node_pools key). Needed when several pools offer "
        "the requested GPU type.",
    )


# ----------------------------------------------------------------------------------------------- steps


class StepOutput(Model):
    adds: list[str] = Field(
        default_factory=list,
        description="Columns of data.schema this step adds to the data set it writes (a new version of a source).",
    )
    columns: dict[str, Column] | None = Field(
        None,
        description="The schema of a new data set this step makes (its name is neither a source nor another "
        "step's data set); the runtime checks the output against it.",
    )


class UserStep(Model):
    # the JSON Schema says what _command_or_transform says, so editors flag a step with neither
    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["command"]}, {"required": ["transform"]}]}
    )

    name: str = Field(pattern=NAME_PATTERN)
    command: list[str] | None = Field(
        None,
        min_length=1,
        description="argv run with the runtime's own interpreter and environment; {inputs.X} and {outputs.X} "
        "expand to local Parquet files, {run_dir} to the run folder. Needed unless transform is set.",
    )
    transform: str | None = Field(
        None,
        pattern=MODULE_FUNCTION_PATTERN,
        description="module:function(frame) -> frame, the row-wise part of this step: without a command the "
        "runtime applies it to the step's one input; the model server applies it to request rows, so the "
        "columns it adds reach serving.",
    )
    inputs: list[str] = Field(
        default_factory=list,
        description="Data sets the step reads: a data source (train, reference) or a data set another step "
        "writes; each arrives as a Parquet file ({inputs.NAME}).",
    )
    outputs: dict[str, StepOutput] = Field(
        default_factory=dict,
        description="Data sets the step writes as Parquet ({outputs.NAME}); a source's name makes a new version "
        "of it (steps writing train run before validate-data, which splits the prepared data).",
    )
    image: str | None = Field(None, description="Defaults to images.runtime; it must contain mlspec too.")
    before: str | list[str] = Field(default_factory=list, description="Steps that must run after this one.")
    after: str | list[str] = Field(default_factory=list, description="Steps that must run before this one.")
    resources: Resources = Field(default_factory=Resources)
    env: dict[str, str] = Field(default_factory=dict)
    retries: Int = Field(0, ge=0, le=20)
    timeout: Duration | None = None
    cache: bool = Field(
        False,
        description="Reuse the step's outputs when its inputs did not change (Kubeflow); Airflow cannot.",
    )

    @model_validator(mode="after")
    def _command_or_transform(self) -> UserStep:
        if self.command is None and self.transform is None:
            raise ValueError("a step needs a command, a transform, or both")
        return self


# ----------------------------------------------------------------------------------------------- training


class BuiltinModel(Model):
    model: Literal["mlp"] = "mlp"
    hidden: list[PositiveInt] = Field(default_factory=lambda: [64, 32])
    dropout: float = Field(0.0, ge=0, lt=1)


Bounds = Annotated[list[float], Field(min_length=2, max_length=2, description="[low, high]")]
PositiveBounds = Annotated[
    list[Annotated[float, Field(gt=0)]], Field(min_length=2, max_length=2, description="[low, high]")
]
IntBounds = Annotated[list[Int], Field(min_length=2, max_length=2, description="[low, high]")]


class UniformDim(Model):
    uniform: Bounds


class LogUniformDim(Model):
    log_uniform: PositiveBounds


class IntDim(Model):
    int: IntBounds


class ChoiceDim(Model):
    choice: list[Any] = Field(min_length=1)


SearchDim = UniformDim | LogUniformDim | IntDim | ChoiceDim


class TuningMetric(Model):
    name: MetricName
    goal: Literal["maximize", "minimize"] | None = Field(
        None,
        description="Defaults to the metric's direction (minimize log_loss, rmse, mae; maximize others).",
    )


class Tuning(Model):
    method: Literal["grid", "random", "tpe"] = "tpe"
    trials: PositiveInt = 16
    parallelism: PositiveInt = 4
    metric: TuningMetric
    space: dict[str, SearchDim] = Field(min_length=1)


class CrossValidation(Model):
    folds: Int = Field(5, ge=2, le=50)


class Distributed(Model):
    workers: PositiveInt = Field(
        1,
        description="Worker pods (torchrun nodes), each with resources.gpu and one process per GPU (one on "
        "CPU); workers that fit one node of their pool share one pod.",
    )
    launcher: Literal["job", "trainjob"] = Field(
        "job",
        description="How workers that span nodes start on Kubernetes: job (an Indexed Job and a headless "
        "Service, torchrun's c10d rendezvous, no operator) or trainjob (a Kubeflow Trainer TrainJob).",
    )
    max_restarts: Int = Field(
        3, ge=0, le=100, description="Elastic restarts of the whole worker group after a failure."
    )


class Export(Model):
    format: Literal["onnx"] = "onnx"
    opset: Int = Field(17, ge=9, le=23)
    parity_tolerance: float = Field(1e-4, gt=0)


class Training(Model):
    entrypoint: str | None = Field(
        None, pattern=MODULE_FUNCTION_PATTERN, description="module:function(ctx) -> torch.nn.Module"
    )
    builtin: BuiltinModel | None = None
    framework: Literal["pytorch"] = "pytorch"
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    tuning: Tuning | None = None
    cross_validation: CrossValidation | None = None
    resources: Resources = Field(default_factory=Resources)
    distributed: Distributed = Field(default_factory=Distributed)
    retries: Int = Field(0, ge=0, le=20)
    timeout: Duration | None = None
    seed: Int = 0
    export: Export = Field(default_factory=Export)

    @model_validator(mode="after")
    def _one_model_source(self) -> Training:
        if self.entrypoint and self.builtin:
            raise ValueError("set either training.entrypoint or training.builtin, not both")
        return self


# ----------------------------------------------------------------------------------------------- evaluation


class Gate(Model):
    metric: str = Field(min_length=1)
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bound(self) -> Gate:
        if self.min is None and self.max is None:
            raise ValueError("a gate needs 'min' or 'max'")
        return self


class Champion(Model):
    compare_on: str = Field(min_length=1)
    min_improvement: float = Field(0.0, ge=0)


class Evaluation(Model):
    metrics: list[MetricName] = Field(default_factory=lambda: list(DEFAULT_METRICS), min_length=1)
    custom_metrics: dict[str, Annotated[str, Field(pattern=MODULE_FUNCTION_PATTERN)]] = Field(
        default_factory=dict
    )
    gates: list[Gate] = Field(default_factory=list)
    champion: Champion | None = None


# ----------------------------------------------------------------------------------------------- registry


class MlflowRegistry(Model):
    tracking_uri: str = "sqlite:///.mlspec/mlflow.db"
    model_name: str | None = Field(None, description="Defaults to metadata.name.")
    experiment: str | None = None


class Registry(Model):
    mlflow: MlflowRegistry = Field(default_factory=MlflowRegistry)


# ----------------------------------------------------------------------------------------------- serving


class Replicas(Model):
    min: Int = Field(1, ge=0)
    max: Int = Field(1, ge=1)


class Autoscaling(Model):
    target_cpu_percent: Int | None = Field(70, ge=1, le=100)
    target_rps_per_replica: float | None = Field(None, gt=0)


class Slo(Model):
    latency_p99_ms: float = Field(gt=0)
    availability_percent: float = Field(99.9, gt=0, lt=100)
    window: Duration = "30d"


class RollbackOn(Model):
    error_rate: float | None = Field(None, gt=0, le=1)
    latency_p99_ms: float | None = Field(None, gt=0)


class RolloutAnalysis(Model):
    """What the online analysis of a challenger must show before it is promoted (shadow, canary, a-b)."""

    min_samples: Int | None = Field(
        None, ge=1, description="Requests (a-b: labeled requests) per variant before a verdict; default 500."
    )
    min_agreement: float | None = Field(
        None,
        gt=0,
        le=1,
        description="shadow, classification: share of mirrored requests where both models predict the same "
        "class; default 0.8.",
    )
    max_score_distance: float | None = Field(
        None,
        gt=0,
        le=1,
        description="shadow: largest Kolmogorov-Smirnov distance between the two models' scores; default 0.2.",
    )
    metric: MetricName | None = Field(
        None,
        description="a-b: the metric compared on labeled requests; default monitoring.performance.metric, "
        "else evaluation.champion.compare_on.",
    )
    significance: float | None = Field(
        None, gt=0, lt=0.5, description="a-b: the test's significance level; default 0.05."
    )


class Rollout(Model):
    strategy: Literal["canary", "shadow", "a-b", "blue-green", "rolling"] = "rolling"
    steps: list[Annotated[int, Field(ge=0, le=100), BeforeValidator(_integral)]] = Field(default_factory=list)
    step_duration: Duration | None = None
    rollback_on: RollbackOn = Field(default_factory=RollbackOn)
    traffic_split: Int | None = Field(
        None, ge=1, le=99, description="a-b: percent of traffic to the challenger."
    )
    experiment_duration: Duration | None = Field(None, description="a-b: how long the split runs.")
    shadow_percent: Int = Field(100, ge=1, le=100, description="shadow: percent of traffic mirrored.")
    analysis: RolloutAnalysis = Field(default_factory=RolloutAnalysis)


class Cache(Model):
    backend: Literal["redis"] = "redis"
    ttl: Duration = "10m"


class Batching(Model):
    max_batch_size: Int = Field(64, ge=1, le=4096)
    max_delay_ms: float = Field(2.0, ge=0, le=1000)


class Serving(Model):
    runtime: Literal["onnxruntime"] = "onnxruntime"
    accelerator: Literal["cpu", "gpu"] = Field(
        "cpu",
        description="gpu: serve on resources.gpu (or on the only GPU node pool when resources.gpu is unset).",
    )
    port: Int = Field(8080, ge=1024, le=65535)
    replicas: Replicas = Field(default_factory=Replicas)
    autoscaling: Autoscaling | None = None
    resources: Resources = Field(default_factory=lambda: Resources(cpu=1, memory="1Gi"))
    slo: Slo | None = None
    rollout: Rollout = Field(default_factory=Rollout)
    cache: Cache | None = None
    batching: Batching = Field(default_factory=Batching)
    prediction_log: str | None = Field(None, description="Directory or s3:// prefix for sampled predictions.")
    sample_rate: float = Field(1.0, ge=0, le=1)


# ----------------------------------------------------------------------------------------------- monitoring


class DriftMonitor(Model):
    features: Literal["all"] | list[str] = "all"
    method: DriftMethod = "psi"
    threshold: float = Field(0.2, gt=0)
    correlation_change: float | None = Field(None, gt=0, le=2)


class PerformanceMonitor(Model):
    metric: MetricName
    min: float | None = None
    max: float | None = None
    label_delay: Duration = "0s"
    confusion_matrix: bool = False


class OperationalMonitor(Model):
    latency_percentiles: list[Annotated[float, Field(gt=0, lt=100)]] = Field(
        default_factory=lambda: [50.0, 95.0, 99.0]
    )


class Monitoring(Model):
    schedule: Cron = "0 * * * *"
    window: Duration = "1d"
    min_samples: Int = Field(500, ge=1)
    drift: DriftMonitor | None = None
    performance: PerformanceMonitor | None = None
    operational: OperationalMonitor = Field(default_factory=OperationalMonitor)


# ----------------------------------------------------------------------------------------------- retraining


class ScheduleTrigger(Model):
    on: Literal["schedule"]
    cron: Cron


class DriftTrigger(Model):
    on: Literal["drift"]
    threshold: float | None = Field(None, gt=0, description="Defaults to monitoring.drift.threshold.")
    features: PositiveInt = Field(1, description="How many drifted features fire the trigger.")


class PerformanceTrigger(Model):
    on: Literal["performance"]
    metric: MetricName
    below: float | None = None
    above: float | None = None


class VolumeTrigger(Model):
    on: Literal["volume"]
    new_rows: PositiveInt


_QUALITY_BOUNDS = ("max_null_rate", "max_out_of_range_rate", "max_unseen_rate")


class DataQualityTrigger(Model):
    """Fires when a monitored feature's live data breaks a bound (see docs/monitoring.md, data quality)."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [{"required": [b]} for b in _QUALITY_BOUNDS]})

    on: Literal["data_quality"]
    max_null_rate: float | None = Field(None, ge=0, le=1, description="Largest share of missing values.")
    max_out_of_range_rate: float | None = Field(
        None, ge=0, le=1, description="Largest share of values outside the schema's min/max, type or values."
    )
    max_unseen_rate: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Largest share of categories outside the schema's values (or training's).",
    )

    @model_validator(mode="after")
    def _bound(self) -> DataQualityTrigger:
        if all(getattr(self, b) is None for b in _QUALITY_BOUNDS):
            raise ValueError(f"a data_quality trigger needs at least one of {', '.join(_QUALITY_BOUNDS)}")
        return self


Trigger = Annotated[
    ScheduleTrigger | DriftTrigger | PerformanceTrigger | VolumeTrigger | DataQualityTrigger,
    Field(discriminator="on"),
]


class Retraining(Model):
    triggers: list[Trigger] = Field(min_length=1)
    cooldown: Duration = "24h"
    min_samples: Int = Field(1000, ge=1)
    sink: Literal["local", "airflow", "kubeflow", "kubernetes"] | None = Field(
        None,
        description="Which monitor owns the trigger state and how it starts retraining: airflow (asset event), "
        "kubeflow (a run of the uploaded training pipeline), kubernetes (a Job running `mlspec run`), local "
        "(`mlspec run` beside the monitor). Default: the first of airflow, kubeflow, kubernetes in targets, "
        "else local.",
    )


# ----------------------------------------------------------------------------------------------- infrastructure


class Taint(Model):
    key: str
    value: str = "true"
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"


class NodePool(Model):
    instance_type: str = Field(min_length=1)
    min: Int = Field(0, ge=0)
    max: Int = Field(1, ge=1)
    desired: Int | None = Field(None, ge=0)
    accelerator: str | None = Field(
        None,
        description="GPU type on this pool, e.g. nvidia-a10g; known GPU instance types (g5, g6, p4d, p5...) "
        "imply it.",
    )
    gpus_per_node: PositiveInt | None = Field(
        None, description="Accelerators per node; known GPU instance types imply it."
    )
    disk_size_gb: Int = Field(100, ge=20)
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[Taint] | None = Field(
        None, description="GPU pools get nvidia.com/gpu=true:NoSchedule by default."
    )
    spot: bool = False


class Cluster(Model):
    name: str = Field(pattern=NAME_PATTERN)
    version: str = Field(pattern=r"^1\.[0-9]{2}$")


class Network(Model):
    vpc_id: str | None = None
    subnet_ids: list[str] | None = None
    cidr: str = Field(
        "10.0.0.0/16",
        pattern=r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$",
        description="The VPC range (no host bits), split into a private and a public subnet per zone.",
    )
    availability_zones: Int = Field(2, ge=2, le=6)

    @model_validator(mode="after")
    def _room_for_subnets(self) -> Network:
        from mlspec.ir.cloud import network_problem

        problem = None if self.vpc_id else network_problem(self.cidr, self.availability_zones)
        if problem:
            raise ValueError(f"network.cidr {problem}")
        return self


class Storage(Model):
    artifacts_bucket: str = Field(min_length=3)
    noncurrent_version_days: Int = Field(30, ge=1)


class RemoteState(Model):
    backend: Literal["s3"] = "s3"
    bucket: str
    key: str | None = None
    region: str | None = None
    lock_table: str | None = None


class Infrastructure(Model):
    cloud: Literal["aws", "gcp"] = "aws"
    region: str = Field(min_length=1)
    account_id: str | None = Field(
        None, pattern=r"^[0-9]{12}$", description="AWS account; completes IRSA role ARNs."
    )
    cluster: Cluster
    node_pools: dict[str, NodePool] = Field(min_length=1)
    network: Network = Field(default_factory=Network)
    storage: Storage
    container_registry: str | None = Field(
        None, description="ECR repository name; defaults to the system name."
    )
    state: RemoteState | None = None


# ----------------------------------------------------------------------------------------------- orchestration


class Orchestration(Model):
    airflow_mode: Literal["kubernetes", "local"] = "kubernetes"


# ----------------------------------------------------------------------------------------------- root


class Spec(Model):
    schema_: str | None = Field(None, alias="$schema")
    apiVersion: Literal["mlspec/v1"]
    kind: Literal["MLSystem"]
    metadata: Metadata
    images: Images
    data: Data
    steps: list[UserStep] = Field(default_factory=list)
    training: Training = Field(default_factory=Training)
    evaluation: Evaluation = Field(default_factory=Evaluation)
    registry: Registry = Field(default_factory=Registry)
    serving: Serving | None = None
    monitoring: Monitoring | None = None
    retraining: Retraining | None = None
    infrastructure: Infrastructure | None = None
    orchestration: Orchestration = Field(default_factory=Orchestration)
    environments: dict[EnvironmentName, dict[str, Any]] = Field(
        default_factory=dict,
        description="Overlays deep-merged over the base spec by `--env NAME`; a name is also an output folder.",
    )
    targets: list[Target] = Field(
        default_factory=lambda: list(DEFAULT_TARGETS),
        description="The backends `mlspec compile` runs; lint checks the spec against each one. Default: "
        "kubeflow, airflow, kubernetes, and terraform when the spec has infrastructure.",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_targets(cls, data: Any) -> Any:
        # Terraform builds the infrastructure section: without one, it is not a default target.
        if isinstance(data, dict) and "targets" not in data and data.get("infrastructure") is None:
            return {**data, "targets": [t for t in DEFAULT_TARGETS if t != "terraform"]}
        return data
