"""Policy defaults and the one answer to each question that more than one target asks.

Lowering applies these; backends, the runtime and the server read the decisions from the IR. Change a
default here and every target changes together.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Literal

Goal = Literal["maximize", "minimize"]

# ------------------------------------------------------------------------------------------------ metrics
# Direction of every metric the runtime computes: tuning, gates and the champion comparison all read it.
METRIC_GOALS: dict[str, Goal] = {
    "accuracy": "maximize",
    "precision": "maximize",
    "recall": "maximize",
    "f1": "maximize",
    "auc": "maximize",
    "log_loss": "minimize",
    "rmse": "minimize",
    "mae": "minimize",
    "r2": "maximize",
}


def metric_goal(metric: str) -> Goal:
    """Lower is better for losses and errors; higher for everything else (custom KPIs included)."""
    return METRIC_GOALS.get(metric, "maximize")


# ------------------------------------------------------------------------------------------------ data formats
FORMAT_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".csv.gz": "csv",
    ".csv.bz2": "csv",
    ".csv.zst": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def infer_format(uri: str) -> str | None:
    """csv or parquet from the file name (a trailing '/' is a Parquet dataset); None when it cannot tell."""
    path = uri.split("?", 1)[0].lower()
    if path.endswith("/"):
        return "parquet"
    suffixes = "".join(PurePosixPath(path).suffixes[-2:])
    for suffix in (suffixes, PurePosixPath(path).suffix):
        if suffix in FORMAT_SUFFIXES:
            return FORMAT_SUFFIXES[suffix]
    return None


# ------------------------------------------------------------------------------------------------ steps
RETRY_BACKOFF_SECONDS = 30
USER_STEP_TIMEOUT_SECONDS = 3600
USER_STEP_CPU = "1"
USER_STEP_MEMORY = "2Gi"
TRAIN_TIMEOUT_SECONDS = 7200
TRAIN_CPU = "2"
TRAIN_MEMORY = "4Gi"
# The train step's own pod when its workers span nodes: it only launches the job and waits for it.
LAUNCHER_CPU = "250m"
LAUNCHER_MEMORY = "512Mi"

# ------------------------------------------------------------------------------------------------ distributed training
# Environment of every worker process, by collective backend. NCCL: errors and hung collectives end the
# process (so torchrun restarts the group) and warnings reach the log.
COLLECTIVE_ENV = {
    "nccl": {"NCCL_DEBUG": "WARN", "TORCH_NCCL_ASYNC_ERROR_HANDLING": "1", "OMP_NUM_THREADS": "1"},
    "gloo": {"OMP_NUM_THREADS": "1"},
}
NCCL_VENDORS = ("nvidia", "amd")  # torch's "nccl" backend is RCCL on AMD GPUs

# ------------------------------------------------------------------------------------------------ serving
SERVING_CPU = "1"
SERVING_MEMORY = "1Gi"
# Extra server pods a rollout runs on top of replicas.max, in percent of it: a rolling update and a canary
# surge by MAX_SURGE_PERCENT; blue-green keeps a full preview stack, shadow and a-b a full second deployment.
MAX_SURGE_PERCENT = 25
ROLLOUT_SURGE_PERCENT = {
    "rolling": MAX_SURGE_PERCENT,
    "canary": MAX_SURGE_PERCENT,
    "blue-green": 100,
    "shadow": 100,
    "a-b": 100,
}


def peak_server_pods(strategy: str, replicas_max: int) -> int:
    """The most server pods the rollout strategy runs at once: what the serving pool must hold."""
    return replicas_max + -(-replicas_max * ROLLOUT_SURGE_PERCENT[strategy] // 100)


# Server latency histogram buckets (seconds); every SLO and rollback threshold is added as an exact bucket,
# so alerts and analyses read a bucket boundary instead of interpolating between two.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LATENCY_QUANTILE = 0.99  # latency objectives are p99: 1% of requests may exceed the bucket
ERROR_STATUS_CLASSES = (5,)  # a 5xx answer spends the error budget; a 4xx is the client's mistake
# Multi-window, multi-burn-rate alerts (Google SRE workbook, ch. 5): severity, long and short window, factor.
BURN_RATE_ALERTS = (
    ("page", "1h", "5m", 14.4),
    ("page", "6h", "30m", 6.0),
    ("ticket", "1d", "2h", 3.0),
    ("ticket", "3d", "6h", 1.0),
)
PAGE_BURN_RATE = max(factor for severity, _, _, factor in BURN_RATE_ALERTS if severity == "page")


def seconds_bucket(milliseconds: float) -> float:
    """A latency threshold as the histogram bucket boundary that represents it exactly."""
    return round(milliseconds / 1000.0, 6)


def latency_buckets(*thresholds_ms: float | None) -> list[float]:
    """The default buckets plus every given threshold, sorted."""
    buckets = set(LATENCY_BUCKETS)
    buckets.update(seconds_bucket(t) for t in thresholds_ms if t is not None)
    return sorted(buckets)


# ------------------------------------------------------------------------------------------------ the loop
# The targets that can own the loop (schedule the monitor and the training cron, receive retraining), in the
# order of preference when the spec does not name one with `retraining.sink`.
LOOP_OWNERS = ("airflow", "kubeflow", "kubernetes")
CLUSTER_TARGETS = ("kubeflow", "kubernetes")  # their pods never see a path on the machine that compiled
TRIGGER_STATE_FILE = "trigger-state.json"
# A monitoring window fanned out over shards (monitoring.shards) runs at most this many summarize tasks at once;
# each task is told its shard by this argument of the runtime's step contract.
MONITOR_PARALLELISM = 16
MONITOR_SHARD_ARG = "--shard"
FAN_OUT_OWNERS = ("airflow", "kubeflow")  # the monitor owners that run the monitoring pipeline's steps


def loop_owner(targets: list[str], sink: str | None) -> str:
    """The one target whose monitor owns the trigger state and whose scheduler runs training."""
    if sink is not None:
        return sink
    return next((t for t in LOOP_OWNERS if t in targets), "local")


def is_cluster_target(target: str, airflow_mode: str) -> bool:
    """A target whose steps or servers run in pods (Airflow in local mode runs them on its worker)."""
    return target in CLUSTER_TARGETS or (target == "airflow" and airflow_mode == "kubernetes")


def is_local_uri(uri: str) -> bool:
    """A tracking URI that names a file on one machine: a pod sees an empty registry there."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    return scheme in ("", "file", "sqlite")


# ------------------------------------------------------------------------------------------------ rollouts
ANALYSIS_SCHEDULE = "*/10 * * * *"  # how often the cluster re-evaluates a challenger under analysis
ANALYSIS_MIN_SAMPLES = 500
SHADOW_MIN_AGREEMENT = 0.8
SHADOW_MAX_SCORE_DISTANCE = 0.2
SHADOW_DURATION_SECONDS = 3600  # a shadow rollout without step_duration runs this long
EXPERIMENT_SIGNIFICANCE = 0.05


# ------------------------------------------------------------------------------------------------ infrastructure
LOG_RETENTION_DAYS = 365  # control-plane logs and VPC flow logs
KMS_DELETION_WINDOW_DAYS = 30  # a deleted platform key can be recovered for this long
# What a service account's IRSA role may do with objects under the system's prefix of the artifacts bucket,
# and with the platform key that encrypts them, for each IR bucket_access.
OBJECT_READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")
OBJECT_WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
KEY_ACTIONS = {"read": ("kms:Decrypt",), "read-write": ("kms:Decrypt", "kms:GenerateDataKey")}
# What a read-only service account may do under its write_prefix (the server appends prediction log files: it
# never deletes), and with the key that encrypts them.
PREFIX_WRITE_ACTIONS = ("s3:PutObject", "s3:AbortMultipartUpload")


def artifacts_root(bucket: str, system: str) -> str:
    """The system's prefix of the artifacts bucket (its key prefix is the system's name)."""
    return f"s3://{bucket}/{system}"


def key_prefix_under(uri: str, root: str) -> str | None:
    """The key prefix of `uri` strictly below `root` (the server's write_prefix), or None when it is not there."""
    inside = root.rstrip("/") + "/"
    return uri[len(inside) :].strip("/") or None if uri.startswith(inside) else None


# The Cluster Autoscaler's IRSA policy (kubernetes/autoscaler, cluster-autoscaler/cloudprovider/aws/README.md,
# "Full Cluster Autoscaler Features Policy"): describe calls take no resource; scaling is limited to the
# auto scaling groups tagged as the cluster's, and eks:DescribeNodegroup (a group's labels, taints and tags
# while it has no node) to the cluster's node groups.
AUTOSCALER_DESCRIBE_ACTIONS = (
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
    "autoscaling:DescribeTags",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
)
AUTOSCALER_SCALE_ACTIONS = (
    "autoscaling:SetDesiredCapacity",
    "autoscaling:TerminateInstanceInAutoScalingGroup",
)
AUTOSCALER_NODEGROUP_ACTIONS = ("eks:DescribeNodegroup",)
AUTOSCALER_POLICY_NAME = "cluster-autoscaler"
