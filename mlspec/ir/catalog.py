"""Catalogs lowering decides from: the built-in pipeline steps, GPU vendors, EKS node images and known
instance types."""

from __future__ import annotations

from dataclasses import dataclass

# ------------------------------------------------------------------------------------------------ built-in steps


@dataclass(frozen=True)
class BuiltinStep:
    id: str  # the step id, the runtime's STEP_ID and the action it dispatches to
    pipeline: str
    display_name: str
    outputs: tuple[str, ...]  # result keys the step publishes
    cpu: str = "1"
    memory: str = "2Gi"
    timeout_seconds: int = 3600
    retries: int = 1
    service_account: str = "training"


BUILTIN_STEPS: tuple[BuiltinStep, ...] = (
    BuiltinStep("validate-raw", "training", "Validate raw data", ("rows", "checks_passed"), memory="4Gi"),
    BuiltinStep("validate-data", "training", "Validate data", ("rows", "checks_passed"), memory="4Gi"),
    BuiltinStep("tune-trial", "training", "Tuning trial", ("value",)),
    BuiltinStep("tune-select", "training", "Select best trial", ("best_params",)),
    BuiltinStep("train", "training", "Train model", ("model_path",)),
    BuiltinStep("evaluate", "training", "Evaluate and gate", ("metrics", "gates_passed", "beats_champion")),
    BuiltinStep("export", "training", "Export ONNX", ("onnx_path", "parity_max_abs_diff")),
    BuiltinStep("register", "training", "Register model", ("model_version",)),
    BuiltinStep("promote", "training", "Promote to champion", ("champion_version",)),
    BuiltinStep(
        "monitor-plan",
        "monitoring",
        "Plan the monitoring window",
        ("partitions", "shards"),
        timeout_seconds=600,
        service_account="monitoring",
    ),
    BuiltinStep(
        "monitor-summarize",
        "monitoring",
        "Summarize log partitions",
        ("rows",),
        timeout_seconds=1800,
        service_account="monitoring",
    ),
    BuiltinStep(
        "monitor",
        "monitoring",
        "Monitor drift and performance",
        ("retrain", "fired_triggers"),
        timeout_seconds=1800,
        service_account="monitoring",
    ),
    BuiltinStep(
        "trigger-retrain",
        "monitoring",
        "Trigger retraining",
        ("triggered",),
        timeout_seconds=600,
        service_account="monitoring",
    ),
)
BUILTIN_BY_ID = {step.id: step for step in BUILTIN_STEPS}
BUILTIN_STEP_IDS = tuple(BUILTIN_BY_ID)

# ------------------------------------------------------------------------------------------------ GPUs


@dataclass(frozen=True)
class GpuVendor:
    name: str  # IR vendor
    prefix: str  # GPU types of this vendor start with it: nvidia-a10g, amd-v520, aws-inferentia2
    resource: str  # the Kubernetes extended resource its device plugin advertises
    image_family: str  # the node image family that ships its driver


GPU_VENDORS = (
    GpuVendor("nvidia", "nvidia-", "nvidia.com/gpu", "nvidia"),
    GpuVendor("amd", "amd-", "amd.com/gpu", "standard"),
    GpuVendor("aws", "aws-", "aws.amazon.com/neuron", "neuron"),
)


# The EKS-optimized Amazon Linux 2023 AMI type of each node image family (x86_64): the NVIDIA variant ships the
# driver and container toolkit, the Neuron variant the Inferentia/Trainium driver.
EKS_AMI_TYPES = {
    "standard": "AL2023_x86_64_STANDARD",
    "nvidia": "AL2023_x86_64_NVIDIA",
    "neuron": "AL2023_x86_64_NEURON",
}


def gpu_vendor(gpu_type: str) -> GpuVendor | None:
    return next(
        (v for v in GPU_VENDORS if gpu_type.startswith(v.prefix) and len(gpu_type) > len(v.prefix)), None
    )


# Instance types whose accelerators are known: (GPU type, accelerators per node). Pools of other types must
# state `accelerator` and `gpus_per_node` themselves.
INSTANCE_GPUS: dict[str, tuple[str, int]] = {
    **{f"g4dn.{size}": ("nvidia-t4", 1) for size in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge")},
    "g4dn.12xlarge": ("nvidia-t4", 4),
    "g4dn.metal": ("nvidia-t4", 8),
    **{f"g5.{size}": ("nvidia-a10g", 1) for size in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge")},
    "g5.12xlarge": ("nvidia-a10g", 4),
    "g5.24xlarge": ("nvidia-a10g", 4),
    "g5.48xlarge": ("nvidia-a10g", 8),
    **{f"g6.{size}": ("nvidia-l4", 1) for size in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge")},
    "g6.12xlarge": ("nvidia-l4", 4),
    "g6.24xlarge": ("nvidia-l4", 4),
    "g6.48xlarge": ("nvidia-l4", 8),
    **{f"g6e.{size}": ("nvidia-l40s", 1) for size in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge")},
    "g6e.12xlarge": ("nvidia-l40s", 4),
    "g6e.24xlarge": ("nvidia-l40s", 4),
    "g6e.48xlarge": ("nvidia-l40s", 8),
    "p3.2xlarge": ("nvidia-v100", 1),
    "p3.8xlarge": ("nvidia-v100", 4),
    "p3.16xlarge": ("nvidia-v100", 8),
    "p4d.24xlarge": ("nvidia-a100", 8),
    "p4de.24xlarge": ("nvidia-a100", 8),
    "p5.48xlarge": ("nvidia-h100", 8),
    "p5e.48xlarge": ("nvidia-h200", 8),
    "p5en.48xlarge": ("nvidia-h200", 8),
    "g4ad.xlarge": ("amd-v520", 1),
    "g4ad.2xlarge": ("amd-v520", 1),
    "g4ad.4xlarge": ("amd-v520", 1),
    "g4ad.8xlarge": ("amd-v520", 2),
    "g4ad.16xlarge": ("amd-v520", 4),
    "inf2.xlarge": ("aws-inferentia2", 1),
    "inf2.8xlarge": ("aws-inferentia2", 1),
    "inf2.24xlarge": ("aws-inferentia2", 6),
    "inf2.48xlarge": ("aws-inferentia2", 12),
    "trn1.2xlarge": ("aws-trainium", 1),
    "trn1.32xlarge": ("aws-trainium", 16),
}
