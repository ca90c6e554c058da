"""Wire contracts: the names that generated files, the runtime and the model server must spell the same way.

A backend, the runtime or the server that writes one of these strings itself, instead of importing it from
here, will one day disagree with the others. Per-system values (the serving port, pool labels, the SLO
bucket) are decided in lowering and stored in the IR; what is the same for every system lives here.
"""

from __future__ import annotations

# ------------------------------------------------------------------------------------------------ HTTP
DEFAULT_SERVER_PORT = 8080
HEALTH_LIVE_PATH = "/v2/health/live"
HEALTH_READY_PATH = "/v2/health/ready"
METRICS_PATH = "/metrics"
PORT_NAME = "http"  # the Service/container port name the ServiceMonitor scrapes
SOURCE_HEADER = "x-mlspec-source"  # traffic source of a request ("loadtest" for synthetic traffic)
REQUEST_ID_HEADER = "x-request-id"  # a mirrored request keeps it: the shadow analysis pairs answers by it
REDIS_PORT = 6379

# ------------------------------------------------------------------------------------------------ metrics
# Prometheus names as exposed (prometheus_client adds `_total` to counters and `_bucket`/`_count`/`_sum` to
# histograms). The PrometheusRule, the AnalysisTemplate and dashboards query exactly these.
REQUEST_DURATION = "mlspec_request_duration_seconds"
REQUESTS_TOTAL = "mlspec_requests_total"
BATCH_SIZE_ROWS = "mlspec_batch_size_rows"
REQUESTS_IN_FLIGHT = "mlspec_requests_in_flight"
MODEL_INFO = "mlspec_model_info"
CACHE_HITS_TOTAL = "mlspec_cache_hits_total"
CACHE_MISSES_TOTAL = "mlspec_cache_misses_total"
CACHE_ERRORS_TOTAL = "mlspec_cache_errors_total"
MODEL_RELOADS_TOTAL = "mlspec_model_reloads_total"
PREDICTION_LOG_RECORDS_TOTAL = "mlspec_prediction_log_records_total"
PREDICTION_LOG_DROPPED_TOTAL = "mlspec_prediction_log_dropped_total"
CONNECTIONS_CLOSED_TOTAL = "mlspec_connections_closed_total"
LABEL_ROUTE = "route"
LABEL_CODE = "code"
LABEL_VARIANT = "variant"  # set by the ServiceMonitor from the pod's VARIANT_LABEL: metrics per variant

# What `mlspec monitor` exports for each run (metrics.prom, and a push to the Pushgateway when
# PUSHGATEWAY_URL_ENV is set). Gauges; every one carries LABEL_SYSTEM.
MONITOR_WINDOW_ROWS = "mlspec_monitor_window_rows"
MONITOR_LAST_RUN = "mlspec_monitor_last_run_timestamp_seconds"
FEATURE_DRIFT_SCORE = "mlspec_feature_drift_score"
FEATURE_DRIFTED = "mlspec_feature_drifted"
DRIFTED_FEATURES = "mlspec_drifted_features"
CORRELATION_CHANGE = "mlspec_correlation_change"
FEATURE_NULL_RATE = "mlspec_feature_null_rate"
FEATURE_OUT_OF_RANGE_RATE = "mlspec_feature_out_of_range_rate"
FEATURE_UNSEEN_RATE = "mlspec_feature_unseen_rate"
DATA_QUALITY_VIOLATIONS = "mlspec_data_quality_violations"
MODEL_PERFORMANCE = "mlspec_model_performance"
LABELED_ROWS = "mlspec_labeled_rows"
BUSINESS_KPI = "mlspec_business_kpi"
CONFUSION_MATRIX_CHANGE = "mlspec_confusion_matrix_change"
RETRAIN_TRIGGER_FIRED = "mlspec_retrain_trigger_fired"
RETRAIN_DECISION = "mlspec_retrain_decision"
LABEL_SYSTEM = "system"
LABEL_FEATURE = "feature"
LABEL_METRIC = "metric"
LABEL_TRIGGER = "trigger"
PUSHGATEWAY_URL_ENV = "MLSPEC_PUSHGATEWAY_URL"  # where the monitor pushes its gauges (unset: no push)
MONITOR_PUSH_JOB = "mlspec-monitor"  # the push's `job` label; grouped by LABEL_SYSTEM


def counter_base(exposed_name: str) -> str:
    """The name to give prometheus_client's Counter so that it exposes `exposed_name`."""
    return exposed_name.removesuffix("_total")


# ------------------------------------------------------------------------------------------------ labels
LABEL_PREFIX = "mlspec.io/"
SYSTEM_LABEL = "mlspec.io/system"
STEP_LABEL = "mlspec.io/step"
NODE_POOL_LABEL = "mlspec.io/node-pool"
ACCELERATOR_LABEL = "mlspec.io/accelerator"
VARIANT_LABEL = "mlspec.io/variant"
CONFIG_SHA_ANNOTATION = "mlspec.io/config-sha256"
MANAGED_BY = "mlspec"
MANAGED_BY_TAG = "mlspec.io/managed-by"  # cloud resource tag (value MANAGED_BY), with SYSTEM_LABEL

# ------------------------------------------------------------------------------------------------ model bundle
MODEL_FILE = "model.onnx"
TORCH_MODEL_FILE = "model.pt"
PREPROCESSING_FILE = "preprocessing.json"
PROFILE_FILE = "reference_profile.json"
METRICS_FILE = "metrics.json"
BUNDLE_FILES = (MODEL_FILE, TORCH_MODEL_FILE, PREPROCESSING_FILE, PROFILE_FILE, METRICS_FILE)
ONNX_INPUT = "input"

# ------------------------------------------------------------------------------------------------ events
RETRAIN_EVENT_SCHEME = "mlspec"


def retrain_event_uri(system: str) -> str:
    """The retraining event: the Airflow asset the monitor emits and the training DAG is scheduled on."""
    return f"{RETRAIN_EVENT_SCHEME}://{system}/retrain"


def pipeline_name(system: str, pipeline_id: str) -> str:
    """The name a pipeline is uploaded under (KFP): the kubeflow sink starts the training pipeline by it."""
    return f"{system}-{pipeline_id}"


def retrain_job_template(system: str) -> str:
    """The suspended CronJob whose job template the kubernetes sink starts a retraining Job from."""
    return f"{system}-retrain"


RETRAIN_REASON_ENV = (
    "MLSPEC_RETRAIN_REASON"  # why a retraining run started (fired triggers), when a sink knows
)


# ------------------------------------------------------------------------------------------------ prediction log
# One record per predicted row. `inputs` maps feature -> model input value (a category is its index in the
# training value list, -1 unseen); `outputs` is the model output row.
PREDICTION_LOG_COLUMNS = ("ts", "request_id", "model_version", "row", "inputs", "outputs")
LABELS_DIR = "labels"  # labels joined by (request_id, row) live under <prediction log>/labels/
# The server that logged a row: the variant it serves (`variant` column) comes from this environment variable.
VARIANT_ENV = "MLSPEC_VARIANT"
CHAMPION = "champion"  # serves users with the champion alias
CHALLENGER = "challenger"  # serves users with the challenger alias (a-b split, canary)
SHADOW = "shadow"  # answers mirrored copies of requests with the challenger alias; its answers reach nobody
VARIANTS = (CHAMPION, CHALLENGER, SHADOW)
LIVE_SOURCE = "live"
LOADTEST_SOURCE = "loadtest"  # `mlspec loadtest` marks its requests with SOURCE_HEADER: loadtest

# ------------------------------------------------------------------------------------------------ distributed training
RENDEZVOUS_PORT = 29400  # torchrun's c10d rendezvous (and the TCPStore it hosts) on node 0
DDP_WORKER_ENV = "MLSPEC_DDP"  # "1" in every process torchrun starts: it trains, it does not launch
RUN_DIR_ENV = "MLSPEC_RUN_DIR"  # the launched workers' run folder, filled in by the train step's launcher
IR_ENV = "MLSPEC_IR"  # the launched workers' IR (inline JSON), filled in by the train step's launcher
TRAIN_JOB_TEMPLATE_KEY = "template.yaml"  # the key of the job template in its ConfigMap

# ------------------------------------------------------------------------------------------------ run layout
IR_FILE = "ir.json"  # beside generated DAGs, in every run directory, in the ConfigMap the pods mount
IR_MOUNT_DIR = (
    "/etc/mlspec"  # where pods (and `docker run -v`) mount the IR; the image's default CMD reads it
)
RUNTIME_UID = 10001  # the image's user and every pod's runAsUser/runAsGroup
