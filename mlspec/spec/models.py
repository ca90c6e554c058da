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
    # attribute docstrings are the fields' descriptions: the JSON Schema, the LSP hover and docs/spec.md show them
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, strict=True, use_attribute_docstrings=True
    )


# ----------------------------------------------------------------------------------------------- metadata


class Metadata(Model):
    """Who owns the system and how its generated objects are named and labelled."""

    name: str = Field(pattern=NAME_PATTERN, description="System name: lowercase letters, digits and '-'.")
    owner: str | None = Field(None, description="Owning team, used for labels and alert routing.")
    description: str | None = None
    """Free text describing the system; carried into the IR and the generated objects' descriptions."""
    labels: dict[str, str] = Field(
        default_factory=dict, description="Labels added to every generated object."
    )
    namespace: str | None = Field(
        None, pattern=NAME_PATTERN, description="Kubernetes namespace; defaults to the system name."
    )


class Images(Model):
    """The container image every step, the training job and the model server run from."""

    runtime: str = Field(
        min_length=1,
        description="Image with mlspec and the user's code; every step and the server run from it.",
    )


# ----------------------------------------------------------------------------------------------- data


class DataSource(Model):
    """Where one data set is read from."""

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
    """One column of the prepared data: its type, role and the constraints the runtime checks."""

    type: ColumnType
    """Data type the runtime checks the column against."""
    role: ColumnRole = "feature"
    """How the column is used: `feature` (model input), `target` (the label), `id` and `timestamp` (kept, not
    model inputs), `ignore` (not used by the model; give it to PII columns)."""
    pii: bool = False
    """The column holds personal data: give it a role other than feature (MS209); no_pii_in_features fails on a
    PII feature."""
    unique: bool = False
    """Every value occurs once; validate-data checks it on the prepared data."""
    nullable: bool = True
    """Nulls are allowed; false makes validate-data fail on a missing value."""
    min: float | None = None
    """Smallest allowed value (numeric columns); checked by validate-data and by monitoring's out-of-range rate."""
    max: float | None = None
    """Largest allowed value (numeric columns); checked by validate-data and by monitoring's out-of-range rate."""
    values: list[str | int | float | bool] | None = Field(None, min_length=1, description="Allowed values.")


class DataSchema(Model):
    """The schema of the prepared training data (after every step that writes a source ran)."""

    target: str = Field(min_length=1)
    """The column the model predicts; it must be a column of `columns`."""
    task: Literal["classification", "regression"] | None = Field(
        None, description="Inferred: classification when the target has allowed values or is a category."
    )
    columns: dict[str, Column] = Field(min_length=1)
    """Every column of the prepared data, by name."""


class NotNullCheck(Model):
    """Fails when the listed columns contain nulls (count per column)."""

    check: Literal["not_null"]
    """The check kind."""
    columns: list[str] = Field(min_length=1)
    """Columns that must have no nulls."""


class UniqueCheck(Model):
    """Fails when rows share a value of the listed columns (several columns: a composite key)."""

    check: Literal["unique"]
    """The check kind."""
    columns: list[str] = Field(min_length=1)
    """Columns whose combined value must be unique per row."""


class RowCountCheck(Model):
    """Fails when the row count is outside the bounds."""

    check: Literal["row_count"]
    """The check kind."""
    min: Int | None = Field(None, ge=0)
    """Fewest rows allowed."""
    max: Int | None = Field(None, ge=0)
    """Most rows allowed."""


class FreshnessCheck(Model):
    """Fails when the newest timestamp of a column (parsed as UTC) is older than max_age."""

    check: Literal["freshness"]
    """The check kind."""
    column: str
    """Timestamp column (naive values are UTC, numbers are epoch seconds)."""
    max_age: Duration
    """Largest allowed age of the newest timestamp, a duration such as 2d; measured from the run's clock
    (MLSPEC_NOW pins it)."""


class NoPiiCheck(Model):
    """Fails when a feature column contains PII (email, phone, card numbers...) in a sample of rows, or a feature
    is declared pii: true."""

    check: Literal["no_pii_in_features"]
    """The check kind."""
    sample_rows: PositiveInt = 10_000
    """Rows sampled (deterministically) to scan for PII."""


class DriftCheck(Model):
    """Fails when a feature's drift score against another data source is above the threshold."""

    check: Literal["drift"]
    """The check kind."""
    against: str = Field(description="A data source name, usually 'reference'.")
    method: DriftMethod = "psi"
    """Drift score: psi (population stability index), kl, js (Kullback-Leibler, Jensen-Shannon), wasserstein or
    ks (Kolmogorov-Smirnov statistic)."""
    threshold: float = Field(gt=0)
    """A feature whose score is above this fails the check (in the method's unit; 0.2 is a usual PSI bound)."""
    features: Literal["all"] | list[str] = "all"
    """Features to compare: `all` feature columns, or a list of column names."""


class LeakageCheck(Model):
    """Fails when a feature predicts the target almost perfectly, or too many test rows also appear in train."""

    check: Literal["leakage"]
    """The check kind."""
    max_target_correlation: float = Field(0.95, gt=0, le=1)
    """Largest allowed absolute correlation between a feature and the target."""
    train_test_overlap: Int = Field(0, ge=0, description="Rows allowed in both train and test.")


DataCheck = Annotated[
    NotNullCheck | UniqueCheck | RowCountCheck | FreshnessCheck | NoPiiCheck | DriftCheck | LeakageCheck,
    Field(discriminator="check"),
]


class Split(Model):
    """How validate-data splits the prepared data into train and test (scikit-learn's train_test_split)."""

    test: Fraction = 0.2
    """Fraction of the rows held out for evaluation (0.2: 20%)."""
    seed: Int = 0
    """Random seed of the split; the same seed gives the same split."""
    stratify: str | None = None
    """Column whose class proportions both parts keep; it must be a schema column (MS216)."""


class Data(Model):
    """The training data: its sources, the schema of the prepared data, checks, and the train/test split."""

    sources: dict[str, DataSource] = Field(
        json_schema_extra={"required": ["train"]},  # what _train_source says, for editors
        description="Must contain 'train'; 'reference' feeds drift checks.",
    )
    schema_: DataSchema = Field(alias="schema")
    """The schema of the prepared training data: target, task and columns."""
    checks: list[DataCheck] = Field(
        default_factory=list,
        description=("Checks on the prepared data, with the schema, before the split (validate-data)."),
    )
    raw_checks: list[DataCheck] = Field(
        default_factory=list,
        description=(
            "Checks on the raw sources before any step prepares them (validate-raw); they name raw "
            "columns only (MS226)."
        ),
    )
    split: Split = Field(default_factory=Split)
    """The train/test split; by default 20% test, seed 0, not stratified."""

    @field_validator("sources")
    @classmethod
    def _train_source(cls, value: dict[str, DataSource]) -> dict[str, DataSource]:
        if "train" not in value:
            raise ValueError("data.sources must define a 'train' source")
        return value


# ----------------------------------------------------------------------------------------------- resources


class Gpu(Model):
    """Accelerators requested by a pod."""

    type: str = Field(min_length=1, examples=["nvidia-a10g", "nvidia-t4", "nvidia-h100"])
    """Accelerator type, e.g. nvidia-a10g, nvidia-t4, nvidia-h100; a node pool must offer it (MS202)."""
    count: PositiveInt = 1
    """Accelerators per pod."""


class Resources(Model):
    """CPU, memory and GPU requested by a step, the training job or the model server (Kubernetes requests)."""

    cpu: Quantity | None = None
    """CPU request as a Kubernetes quantity: 2, 0.5 or 500m."""
    memory: Quantity | None = None
    """Memory request as a Kubernetes quantity: 16Gi, 512Mi."""
    gpu: Gpu | None = None
    """GPUs per pod; the pod is scheduled on a node pool that offers the type."""
    node_pool: str | None = Field(
        None,
        description=(
            "Run on this node pool (an `infrastructure.node_pools` key). Needed when several pools "
            "offer the requested GPU type; a GPU workload without it runs on the one pool that offers "
            "its type."
        ),
    )


# ----------------------------------------------------------------------------------------------- steps


class StepOutput(Model):
    """A data set a step writes: a new version of a source (with the columns it adds) or a new data set with its
    own schema."""

    adds: list[str] = Field(
        default_factory=list,
        description=(
            "Columns of `data.schema` this step adds to the data set it writes (a version of a source)."
        ),
    )
    columns: dict[str, Column] | None = Field(
        None,
        description=(
            "The schema of a new data set (a name that is neither a source nor another step's data "
            "set); the runtime checks the output against it."
        ),
    )


class UserStep(Model):
    """A data preparation (or other user) step: a command and/or a row-wise transform, the data sets it reads and
    writes, and its placement in the pipeline."""

    # the JSON Schema says what _command_or_transform says, so editors flag a step with neither
    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["command"]}, {"required": ["transform"]}]}
    )

    name: str = Field(pattern=NAME_PATTERN)
    """Step name, unique in the pipeline: lowercase letters, digits and '-' (a DNS label)."""
    command: list[str] | None = Field(
        None,
        min_length=1,
        description=(
            "argv run with the runtime's own interpreter and environment (a leading `python` is that "
            "interpreter); `{inputs.X}` and `{outputs.X}` expand to local Parquet files, other "
            "`{outputs.X}` to files the step writes, `{run_dir}` to the run folder. Needed unless "
            "`transform` is set."
        ),
    )
    transform: str | None = Field(
        None,
        pattern=MODULE_FUNCTION_PATTERN,
        description=(
            "`module:function(frame) -> frame`, the row-wise part of the step: without a command the "
            "runtime applies it to the step's one input; the model server applies it to request rows, "
            "so the columns it adds reach serving (MS227)."
        ),
    )
    inputs: list[str] = Field(
        default_factory=list,
        description=(
            "Data sets the step reads: a data source (`train`, `reference`) or a data set another step "
            "writes, in the latest version written by a step that runs before it; each arrives as a "
            "Parquet file (`{inputs.NAME}`)."
        ),
    )
    outputs: dict[str, StepOutput] = Field(
        default_factory=dict,
        description=(
            "Data sets the step writes as Parquet (`{outputs.NAME}`); a source's name makes a new "
            "version of it (such steps run before validate-data, which checks and splits the prepared "
            "data). The runtime checks each against its schema."
        ),
    )
    image: str | None = Field(None, description="Defaults to images.runtime; it must contain mlspec too.")
    before: str | list[str] = Field(default_factory=list, description="Steps that must run after this one.")
    after: str | list[str] = Field(default_factory=list, description="Steps that must run before this one.")
    resources: Resources = Field(default_factory=Resources)
    """CPU, memory and GPU for the step's pod (Kubeflow and Kubernetes-mode Airflow)."""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment variables set for the step; never put secrets here (MS210)."""
    retries: Int = Field(0, ge=0, le=20)
    """Times a failed step is retried by the orchestrator."""
    timeout: Duration | None = None
    """Longest the step may run, a duration such as 30m; unset: no limit."""
    cache: bool = Field(
        False,
        description=(
            "Reuse the step's outputs when its inputs did not change (Kubeflow); Airflow cannot, so "
            "`true` with an airflow target is MS301."
        ),
    )

    @model_validator(mode="after")
    def _command_or_transform(self) -> UserStep:
        if self.command is None and self.transform is None:
            raise ValueError("a step needs a command, a transform, or both")
        return self


# ----------------------------------------------------------------------------------------------- training


class BuiltinModel(Model):
    """The builtin model: a multilayer perceptron trained by mlspec (Adam; cross-entropy or MSE)."""

    model: Literal["mlp"] = "mlp"
    """The builtin architecture; only mlp."""
    hidden: list[PositiveInt] = Field(default_factory=lambda: [64, 32])
    """Width of each hidden layer; hyperparameters.hidden and tuning override it."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout probability after each hidden layer; hyperparameters.dropout and tuning override it."""


Bounds = Annotated[list[float], Field(min_length=2, max_length=2)]
PositiveBounds = Annotated[
    list[Annotated[float, Field(gt=0)]], Field(min_length=2, max_length=2, description="[low, high]")
]
IntBounds = Annotated[list[Int], Field(min_length=2, max_length=2)]


class UniformDim(Model):
    """A float drawn uniformly from [low, high]."""

    uniform: Bounds
    """[low, high]: the bounds of the draw."""


class LogUniformDim(Model):
    """A positive float drawn log-uniformly from [low, high] (learning rates, regularisation)."""

    log_uniform: PositiveBounds
    """[low, high], both above 0"""


class IntDim(Model):
    """An integer drawn from [low, high], both included."""

    int: IntBounds
    """[low, high], both included"""


class ChoiceDim(Model):
    """One of the listed values."""

    choice: list[Any] = Field(min_length=1)
    """The values to choose from."""


SearchDim = UniformDim | LogUniformDim | IntDim | ChoiceDim


class TuningMetric(Model):
    """The metric the tuner optimises and its direction."""

    name: MetricName
    """A metric evaluation computes (MS201 otherwise)."""
    goal: Literal["maximize", "minimize"] | None = Field(
        None,
        description=(
            "Defaults to the metric's direction: minimize log_loss, rmse and mae; maximize the others. "
            "A goal against the direction is MS223."
        ),
    )


class Tuning(Model):
    """Hyperparameter search: each trial trains a model with sampled values; the best trial's values train the
    final model."""

    method: Literal["grid", "random", "tpe"] = "tpe"
    """Search algorithm: grid (every combination of the choices), random, or tpe (Optuna's Tree-structured Parzen
    Estimator)."""
    trials: PositiveInt = 16
    """Number of trials (models trained with sampled hyperparameters)."""
    parallelism: PositiveInt = 4
    """Trials run at the same time."""
    metric: TuningMetric
    """The metric the tuner optimises."""
    space: dict[str, SearchDim] = Field(min_length=1)
    """Search space: a hyperparameter name to one dimension (uniform, log_uniform, int or choice)."""


class CrossValidation(Model):
    """k-fold cross-validation: each tuning trial is scored by its mean over k folds of the training split
    instead of one 80/20 split; the holdout stays untouched."""

    folds: Int = Field(5, ge=2, le=50)
    """Number of folds."""


class Distributed(Model):
    """Data-parallel training with torchrun: how many worker pods, and how they start on Kubernetes."""

    workers: PositiveInt = Field(
        1,
        description=(
            "Worker pods (torchrun nodes), each with `training.resources.gpu` and one process per GPU "
            "(one on CPU). Workers whose GPUs fit one node of their pool share one pod."
        ),
    )
    launcher: Literal["job", "trainjob"] = Field(
        "job",
        description=(
            "How workers that span nodes start on Kubernetes: `job` (an Indexed Job and a headless "
            "Service, torchrun's c10d rendezvous, no operator) or `trainjob` (a Kubeflow Trainer "
            "TrainJob on the `torch-distributed` runtime)."
        ),
    )
    max_restarts: Int = Field(
        3,
        ge=0,
        le=100,
        description=(
            "Elastic restarts of the whole worker group after a failure (torchrun `--max-restarts`; "
            "the Job's backoff limit)."
        ),
    )


class Export(Model):
    """How the trained model is exported for serving, and how closely the export must match PyTorch."""

    format: Literal["onnx"] = "onnx"
    """Export format; only onnx (served by onnxruntime)."""
    opset: Int = Field(17, ge=9, le=23)
    """ONNX opset version of the exported graph."""
    parity_tolerance: float = Field(1e-4, gt=0)
    """Largest absolute difference allowed between ONNX and PyTorch predictions; export fails above it."""


class Training(Model):
    """How the model is trained: the model source (entrypoint or builtin), hyperparameters, tuning, resources and
    export."""

    # the JSON Schema says what _one_model_source says, so editors flag a spec with both
    model_config = ConfigDict(
        json_schema_extra={
            "not": {
                "required": ["entrypoint", "builtin"],
                "properties": {"entrypoint": {"type": "string"}, "builtin": {"type": "object"}},
            }
        }
    )

    entrypoint: str | None = Field(
        None,
        pattern=MODULE_FUNCTION_PATTERN,
        description=(
            "`module:function(ctx) -> torch.nn.Module`, imported from the working directory: the "
            "user's model and training (see docs/runtime.md); unset: the builtin MLP."
        ),
    )
    builtin: BuiltinModel | None = None
    """Train the builtin MLP instead of a user entrypoint; set one of entrypoint and builtin, not both."""
    framework: Literal["pytorch"] = "pytorch"
    """Training framework; only pytorch."""
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    """Values passed to the model (ctx.hyperparameters); the builtin model reads epochs, lr, batch_size (the
    global batch), weight_decay, hidden and dropout. Tuned values override them."""
    tuning: Tuning | None = None
    """Hyperparameter search before the final training; unset: train once with hyperparameters."""
    cross_validation: CrossValidation | None = None
    """k-fold cross-validation; unset: holdout evaluation only."""
    resources: Resources = Field(default_factory=Resources)
    """CPU, memory and GPU of each training (and tuning trial) pod."""
    distributed: Distributed = Field(default_factory=Distributed)
    """Distributed data-parallel training; by default one worker."""
    retries: Int = Field(0, ge=0, le=20)
    """Times a failed training step is retried by the orchestrator."""
    timeout: Duration | None = None
    """Longest the training step may run, a duration such as 2h; unset: no limit."""
    seed: Int = 0
    """Random seed for initialisation and data order; CPU runs with the same seed give the same model."""
    export: Export = Field(default_factory=Export)
    """ONNX export of the trained model."""

    @model_validator(mode="after")
    def _one_model_source(self) -> Training:
        if self.entrypoint and self.builtin:
            raise ValueError("set either training.entrypoint or training.builtin, not both")
        return self


# ----------------------------------------------------------------------------------------------- evaluation


class Gate(Model):
    """A bound a metric must meet on the holdout set, or the model is not registered."""

    # the JSON Schema says what _bound says, so editors flag a gate with neither bound
    model_config = ConfigDict(json_schema_extra={"anyOf": [{"required": ["min"]}, {"required": ["max"]}]})

    metric: str = Field(min_length=1)
    """A metric computed by evaluation (a built-in name or a custom_metrics key); MS201 otherwise."""
    min: float | None = None
    """The metric must be at least this."""
    max: float | None = None
    """The metric must be at most this."""

    @model_validator(mode="after")
    def _bound(self) -> Gate:
        if self.min is None and self.max is None:
            raise ValueError("a gate needs 'min' or 'max'")
        return self


class Champion(Model):
    """Champion/challenger: the new model replaces the registered champion only when it improves a metric."""

    compare_on: str = Field(min_length=1)
    """Metric compared between the challenger and the champion on the same holdout."""
    min_improvement: float = Field(0.0, ge=0)
    """Smallest improvement (in the metric's unit) for the challenger to replace the champion; 0: any
    improvement."""


class Evaluation(Model):
    """The metrics computed on the holdout set, the gates the model must pass and the champion comparison."""

    metrics: list[MetricName] = Field(default_factory=lambda: list(DEFAULT_METRICS), min_length=1)
    """Built-in metrics computed on the holdout set; classification and regression metrics must match the task
    (MS218)."""
    custom_metrics: dict[str, Annotated[str, Field(pattern=MODULE_FUNCTION_PATTERN)]] = Field(
        default_factory=dict
    )
    """Extra KPIs: a name to module:function(y_true, y_pred, y_score, frame) returning a number."""
    gates: list[Gate] = Field(default_factory=list)
    """Bounds the model must meet to be registered; none: every model is registered."""
    champion: Champion | None = None
    """Compare with the registered champion before promoting; unset: every model that passes the gates is
    promoted."""


# ----------------------------------------------------------------------------------------------- registry


class MlflowRegistry(Model):
    """The MLflow tracking server and registered model the pipeline logs to."""

    tracking_uri: str = "sqlite:///.mlspec/mlflow.db"
    """MLflow tracking URI; the default is a local SQLite file under .mlspec/."""
    model_name: str | None = Field(None, description="Defaults to metadata.name.")
    experiment: str | None = None
    """MLflow experiment name; defaults to metadata.name."""


class Registry(Model):
    """Where trained models are registered."""

    mlflow: MlflowRegistry = Field(default_factory=MlflowRegistry)
    """The MLflow registry (the only one supported)."""


# ----------------------------------------------------------------------------------------------- serving


class Replicas(Model):
    """The number of model server pods."""

    min: Int = Field(1, ge=0)
    """Fewest server pods (the Deployment's replicas without autoscaling)."""
    max: Int = Field(1, ge=1)
    """Most server pods with autoscaling; at least min."""


class Autoscaling(Model):
    """Horizontal autoscaling of the model server between replicas.min and replicas.max."""

    target_cpu_percent: Int | None = Field(70, ge=1, le=100)
    """Average CPU utilisation (percent of the request) the HorizontalPodAutoscaler keeps; null disables CPU
    scaling."""
    target_rps_per_replica: float | None = Field(None, gt=0)
    """Requests per second each replica should serve; the HorizontalPodAutoscaler also scales on the server's
    request rate."""


class Slo(Model):
    """The model server's service level objective: p99 latency and availability over a window. The
    kubernetes target's burn-rate alerts watch its error budget (100% minus availability)."""

    latency_p99_ms: float = Field(gt=0)
    """Target 99th percentile latency of a prediction request, in milliseconds; the kubernetes target's alert
    rules use it."""
    availability_percent: float = Field(99.9, gt=0, lt=100)
    """Share of requests that must succeed, in percent; 100 minus it is the error budget."""
    window: Duration = "30d"
    """The SLO's compliance window, a duration such as 30d; burn-rate alerts are computed over it."""


class RollbackOn(Model):
    """Limits that abort a progressive rollout and roll back to the stable model."""

    error_rate: float | None = Field(None, gt=0, le=1)
    """Largest share of failed requests (0-1) of the new version before rollback."""
    latency_p99_ms: float | None = Field(None, gt=0)
    """Largest p99 latency of the new version, in milliseconds, before rollback (MS220 warns when it is stricter
    than the SLO)."""


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
    """How a new model version replaces the serving one."""

    strategy: Literal["canary", "shadow", "a-b", "blue-green", "rolling"] = "rolling"
    """rolling (replace pods), canary (shift traffic in steps), shadow (mirror traffic to the new model), a-b
    (split traffic for an experiment) or blue-green (switch at once)."""
    steps: list[Annotated[int, Field(ge=0, le=100), BeforeValidator(_integral)]] = Field(default_factory=list)
    """canary: traffic percentages to the new version, strictly increasing and ending at 100 (MS207)."""
    step_duration: Duration | None = None
    """canary: how long each step runs before the next, a duration such as 5m."""
    rollback_on: RollbackOn = Field(default_factory=RollbackOn)
    """Limits that roll a canary back."""
    traffic_split: Int | None = Field(
        None, ge=1, le=99, description="a-b: percent of traffic to the challenger."
    )
    experiment_duration: Duration | None = Field(None, description="a-b: how long the split runs.")
    shadow_percent: Int = Field(100, ge=1, le=100, description="shadow: percent of traffic mirrored.")
    analysis: RolloutAnalysis = Field(default_factory=RolloutAnalysis)
    """What the challenger must show online before it is promoted (shadow, canary, a-b); see RolloutAnalysis."""


class Cache(Model):
    """A Redis cache of predictions in front of the model."""

    backend: Literal["redis"] = "redis"
    """Cache server; only redis."""
    ttl: Duration = "10m"
    """How long a cached prediction is served, a duration such as 10m."""


class Batching(Model):
    """Dynamic batching: concurrent requests are run through the model together."""

    max_batch_size: Int = Field(64, ge=1, le=4096)
    """Most requests run through the model together."""
    max_delay_ms: float = Field(2.0, ge=0, le=1000)
    """Longest a request waits for others to fill a batch, in milliseconds; 0 disables waiting."""


class Serving(Model):
    """The online model server: runtime, hardware, scale, SLO, rollout, cache, batching and prediction log."""

    runtime: Literal["onnxruntime"] = "onnxruntime"
    """Inference runtime; only onnxruntime (the exported ONNX model)."""
    accelerator: Literal["cpu", "gpu"] = Field(
        "cpu",
        description=(
            "`gpu` serves on `resources.gpu` (type and count), or on the only GPU node pool when "
            "`resources.gpu` is unset (several GPU pools: MS203)."
        ),
    )
    port: Int = Field(8080, ge=1024, le=65535)
    """Container port of the HTTP server."""
    replicas: Replicas = Field(default_factory=Replicas)
    """Number of server pods; 1 by default."""
    autoscaling: Autoscaling | None = None
    """Scale between replicas.min and replicas.max; unset: a fixed replicas.min."""
    resources: Resources = Field(default_factory=lambda: Resources(cpu=1, memory="1Gi"))
    """CPU, memory and GPU of each server pod; 1 CPU and 1Gi by default."""
    slo: Slo | None = None
    """Latency and availability objective; the kubernetes target renders alert rules from it."""
    rollout: Rollout = Field(default_factory=Rollout)
    """How a new model version is rolled out; rolling by default."""
    cache: Cache | None = None
    """Cache predictions in Redis; unset: no cache."""
    batching: Batching = Field(default_factory=Batching)
    """Dynamic batching of concurrent requests."""
    prediction_log: str | None = Field(None, description="Directory or s3:// prefix for sampled predictions.")
    sample_rate: float = Field(1.0, ge=0, le=1)
    """Share of requests (0-1) written to the prediction log for monitoring."""


# ----------------------------------------------------------------------------------------------- monitoring


class DriftMonitor(Model):
    """Feature drift of live requests (the prediction log) against the training data."""

    features: Literal["all"] | list[str] = "all"
    """Features to watch: `all` feature columns, or a list of names."""
    method: DriftMethod = "psi"
    """Drift score: psi, kl, js, wasserstein or ks (see docs/monitoring.md)."""
    threshold: float = Field(0.2, gt=0)
    """A feature whose score is above this has drifted (0.2 is a usual PSI bound)."""
    correlation_change: float | None = Field(None, gt=0, le=2)
    """Largest change of a pairwise feature correlation before the report raises a correlation alert; unset: not
    checked."""


class PerformanceMonitor(Model):
    """Model quality on live predictions once their labels arrive."""

    metric: MetricName
    """Metric computed on labeled live predictions."""
    min: float | None = None
    """The metric must stay at least this."""
    max: float | None = None
    """The metric must stay at most this."""
    label_delay: Duration = "0s"
    """How long after a prediction its label arrives; newer predictions are not scored yet."""
    confusion_matrix: bool = False
    """Also report the change of each per-class confusion rate (classification)."""


class OperationalMonitor(Model):
    """Latency and traffic figures reported by the monitor."""

    latency_percentiles: list[Annotated[float, Field(gt=0, lt=100)]] = Field(
        default_factory=lambda: [50.0, 95.0, 99.0]
    )
    """Latency percentiles (between 0 and 100) the monitor reports."""


class Monitoring(Model):
    """What `mlspec monitor` (and the monitoring pipeline) checks on the prediction log, and how often."""

    schedule: Cron = "0 * * * *"
    """Cron expression of the monitoring run (five fields or a macro such as @daily, MS204); hourly by default."""
    window: Duration = "1d"
    """How far back the monitor reads the prediction log, a duration such as 1d."""
    min_samples: Int = Field(500, ge=1)
    """Fewest logged predictions in the window for drift to be computed."""
    drift: DriftMonitor | None = None
    """Feature drift against the training data; unset: not monitored."""
    performance: PerformanceMonitor | None = None
    """Live model quality from labeled predictions; unset: not monitored."""
    operational: OperationalMonitor = Field(default_factory=OperationalMonitor)
    """Latency percentiles and traffic."""
    shards: Int = Field(1, ge=1, le=256)
    """How many parallel tasks summarize the window's log partitions on Kubeflow (ParallelFor) and Airflow
    (dynamic task mapping) before one task merges their exact summaries; 1: one task reads the whole window."""


# ----------------------------------------------------------------------------------------------- retraining


class ScheduleTrigger(Model):
    """Retrains on a cron schedule."""

    on: Literal["schedule"]
    """The trigger kind."""
    cron: Cron
    """Cron expression (MS204), e.g. '0 3 * * 1' for Mondays at 03:00."""


class DriftTrigger(Model):
    """Retrains when enough features drift beyond a threshold."""

    on: Literal["drift"]
    """The trigger kind."""
    threshold: float | None = Field(None, gt=0, description="Defaults to monitoring.drift.threshold.")
    features: PositiveInt = Field(1, description="How many drifted features fire the trigger.")


class PerformanceTrigger(Model):
    """Retrains when a live performance metric crosses a bound."""

    on: Literal["performance"]
    """The trigger kind."""
    metric: MetricName
    """Metric monitoring.performance computes."""
    below: float | None = None
    """Retrain when the metric falls below this."""
    above: float | None = None
    """Retrain when the metric rises above this (error metrics)."""


class VolumeTrigger(Model):
    """Retrains when enough new predictions were logged since the last retraining."""

    on: Literal["volume"]
    """The trigger kind."""
    new_rows: PositiveInt
    """Predictions logged since the last retraining (counted across runs) that fire the trigger."""


_QUALITY_BOUNDS = ("max_null_rate", "max_out_of_range_rate", "max_unseen_rate")


class DataQualityTrigger(Model):
    """Fires when a monitored feature's live data breaks a bound (see docs/monitoring.md, data quality)."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [{"required": [b]} for b in _QUALITY_BOUNDS]})

    on: Literal["data_quality"]
    """The trigger kind."""
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
    """When a new training run is started and where the request is sent."""

    triggers: list[Trigger] = Field(min_length=1)
    """Conditions that start a retraining; any one fires it."""
    cooldown: Duration = "24h"
    """Least time between two retrainings, a duration; a trigger within it is reported as suppressed."""
    min_samples: Int = Field(1000, ge=1)
    """Fewest rows (labeled rows for performance) for drift, performance and data quality triggers to be
    evaluated."""
    sink: Literal["local", "airflow", "kubeflow", "kubernetes"] | None = Field(
        None,
        description="Which monitor owns the trigger state and how it starts retraining: airflow (asset event), "
        "kubeflow (a run of the uploaded training pipeline), kubernetes (a Job running `mlspec run`), local "
        "(`mlspec run` beside the monitor). Default: the first of airflow, kubeflow, kubernetes in targets, "
        "else local.",
    )


# ----------------------------------------------------------------------------------------------- infrastructure


class Taint(Model):
    """A Kubernetes taint on a node pool's nodes; only pods that tolerate it are scheduled there."""

    key: str
    """Taint key, e.g. nvidia.com/gpu."""
    value: str = "true"
    """Taint value."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"
    """What happens to pods without a toleration: NoSchedule, PreferNoSchedule or NoExecute."""


class NodePool(Model):
    """A managed node group of the cluster: instance type, size, accelerators, labels, taints."""

    instance_type: str = Field(min_length=1)
    """Cloud instance type of the nodes, e.g. m6i.xlarge or g5.xlarge."""
    min: Int = Field(0, ge=0)
    """Fewest nodes."""
    max: Int = Field(1, ge=1)
    """Most nodes; at least min."""
    desired: Int | None = Field(None, ge=0)
    """Nodes at creation; defaults to min."""
    accelerator: str | None = Field(
        None,
        description=(
            "GPU type on this pool: `nvidia-*`, `amd-*` or `aws-*` (Inferentia, Trainium). Known "
            "instance types (g4dn, g5, g6, g6e, p3, p4d, p5, g4ad, inf2, trn1) imply it; a different "
            "value is MS202."
        ),
    )
    gpus_per_node: PositiveInt | None = Field(
        None,
        description=(
            "Accelerators per node; known GPU instance types imply it, a GPU pool of an unknown "
            "instance type needs it. Pods may ask for at most this many (MS202)."
        ),
    )
    disk_size_gb: Int = Field(100, ge=20)
    """Root disk of each node, in GiB."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Kubernetes labels on the pool's nodes."""
    taints: list[Taint] | None = Field(
        None, description="GPU pools get nvidia.com/gpu=true:NoSchedule by default."
    )
    spot: bool = False
    """Use spot capacity (cheaper, may be reclaimed)."""


class Cluster(Model):
    """The Kubernetes (EKS) cluster the terraform target creates."""

    name: str = Field(pattern=NAME_PATTERN)
    """Cluster name: lowercase letters, digits and '-'."""
    version: str = Field(pattern=r"^1\.[0-9]{2}$")
    """Kubernetes version, e.g. '1.30' (quote it: 1.30 unquoted is the number 1.3)."""


class Network(Model):
    """The VPC of the cluster: an existing one, or a new one the terraform target creates."""

    vpc_id: str | None = None
    """An existing VPC to use; unset: the terraform target creates one from cidr."""
    subnet_ids: list[str] | None = None
    """Existing subnets for the cluster (with vpc_id)."""
    cidr: str = Field(
        "10.0.0.0/16",
        pattern=r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$",
        description=(
            "The VPC range (no host bits), split into a private and a public subnet per zone, each at "
            "least a /28 (MS102 otherwise)."
        ),
    )
    availability_zones: Int = Field(2, ge=2, le=6)
    """Zones the new VPC spans, each with a private and a public subnet."""

    @model_validator(mode="after")
    def _room_for_subnets(self) -> Network:
        from mlspec.ir.cloud import network_problem

        problem = None if self.vpc_id else network_problem(self.cidr, self.availability_zones)
        if problem:
            raise ValueError(f"network.cidr {problem}")
        return self


class Storage(Model):
    """The object storage bucket for artifacts, models and the prediction log."""

    artifacts_bucket: str = Field(min_length=3)
    """Bucket name for artifacts, models and the prediction log (S3 naming rules, MS213)."""
    noncurrent_version_days: Int = Field(30, ge=1)
    """Days old object versions are kept before they expire."""


class RemoteState(Model):
    """Where Terraform keeps its state (an S3 backend)."""

    backend: Literal["s3"] = "s3"
    """State backend; only s3."""
    bucket: str
    """S3 bucket holding the state."""
    key: str | None = None
    """Object key of the state file; defaults to mlspec/<system>/<environment or default>/terraform.tfstate."""
    region: str | None = None
    """Region of the state bucket; defaults to infrastructure.region."""
    lock_table: str | None = None
    """DynamoDB table for state locking; unset: no locking table."""


class Infrastructure(Model):
    """The cloud resources the terraform target creates: cluster, node pools, network, storage, registry."""

    cloud: Literal["aws", "gcp"] = "aws"
    """Cloud provider; the terraform target builds AWS resources."""
    region: str = Field(min_length=1)
    """Cloud region, e.g. eu-west-1."""
    account_id: str | None = Field(
        None,
        pattern=r"^[0-9]{12}$",
        description=("AWS account ID (12 digits); completes IRSA role ARNs and the ECR registry address."),
    )
    cluster: Cluster
    """The Kubernetes cluster."""
    node_pools: dict[str, NodePool] = Field(min_length=1)
    """Node pools by name; steps, training and serving refer to them by this name (resources.node_pool)."""
    network: Network = Field(default_factory=Network)
    """The VPC; a new 10.0.0.0/16 over two zones by default."""
    storage: Storage
    """The artifacts bucket."""
    container_registry: str | None = Field(
        None, description="ECR repository name; defaults to the system name."
    )
    state: RemoteState | None = None
    """Terraform remote state; unset: local state."""


# ----------------------------------------------------------------------------------------------- orchestration


class Orchestration(Model):
    """How the orchestrators run the pipeline's steps."""

    airflow_mode: Literal["kubernetes", "local"] = "kubernetes"
    """How the Airflow DAG runs steps: kubernetes (a pod per step, KubernetesPodOperator) or local (a subprocess
    per step on the worker)."""


# ----------------------------------------------------------------------------------------------- root


class Spec(Model):
    """One machine learning system, from data to monitoring (the root of mlops.yaml)."""

    schema_: str | None = Field(None, alias="$schema")
    """The JSON Schema this file is written against; editors use it, mlspec ignores it."""
    apiVersion: Literal["mlspec/v1"]
    """Version of the spec language; always mlspec/v1."""
    kind: Literal["MLSystem"]
    """Kind of document; always MLSystem."""
    metadata: Metadata
    """Name, owner, labels and namespace of the system."""
    images: Images
    """The runtime image."""
    data: Data
    """Training data: sources, schema, checks and split."""
    steps: list[UserStep] = Field(default_factory=list)
    """Data preparation and other user steps, placed by the data they read and write and by before/after."""
    training: Training = Field(default_factory=Training)
    """How the model is trained; the builtin MLP with default settings when omitted."""
    evaluation: Evaluation = Field(default_factory=Evaluation)
    """Metrics, gates and champion comparison; accuracy, f1 and auc when omitted."""
    registry: Registry = Field(default_factory=Registry)
    """The model registry; local MLflow when omitted."""
    serving: Serving | None = None
    """The online model server; unset: no server is generated."""
    monitoring: Monitoring | None = None
    """Drift, performance and operational monitoring; unset: not monitored."""
    retraining: Retraining | None = None
    """Automatic retraining triggers; unset: no retraining."""
    infrastructure: Infrastructure | None = None
    """Cloud resources for the terraform target; unset: none, and terraform is not a default target."""
    orchestration: Orchestration = Field(default_factory=Orchestration)
    """How the orchestrators run steps."""
    environments: dict[EnvironmentName, dict[str, Any]] = Field(
        default_factory=dict,
        description=(
            "Overlays deep-merged over the base spec by `--env NAME` (mappings merge key by key; lists "
            "and scalars replace); the merged result must validate (MS215). A name is also an output "
            "folder: lowercase letters, digits and '-'."
        ),
    )
    targets: list[Target] = Field(
        default_factory=lambda: list(DEFAULT_TARGETS),
        description=(
            "The backends `mlspec compile` runs; `mlspec lint` checks the spec against each one "
            "(MS301). Default: kubeflow, airflow, kubernetes, and terraform when the spec has "
            "infrastructure."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _default_targets(cls, data: Any) -> Any:
        # Terraform builds the infrastructure section: without one, it is not a default target.
        if isinstance(data, dict) and "targets" not in data and data.get("infrastructure") is None:
            return {**data, "targets": [t for t in DEFAULT_TARGETS if t != "terraform"]}
        return data
