"""Test helpers for the Kubernetes backend: spec variants built from churn.yaml, compile, kustomize."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import yaml
from mlspec_kubernetes import KubernetesBackend

import mlspec
from mlspec.backends import EmitContext

ROOT = Path(__file__).resolve().parents[3]
CHURN = ROOT / "specs" / "churn.yaml"
KUBECTL = "/usr/bin/kubectl"

ROLLOUTS = {
    "canary": None,  # churn.yaml as written
    "rolling": {"strategy": "rolling"},
    "blue-green": {
        "strategy": "blue-green",
        "step_duration": "5m",
        "rollback_on": {"error_rate": 0.02, "latency_p99_ms": 300},
    },
    "shadow": {"strategy": "shadow"},
    "a-b": {"strategy": "a-b", "traffic_split": 20},
}


# Serving accelerators: the GPU type served on, and whether the spec keeps its infrastructure.
ACCELERATORS = {
    "gpu": ("nvidia-a10g", True),  # churn's own GPU pool (g5.xlarge)
    "neuron": ("aws-inferentia2", True),  # an inf2 pool added for it
    "gpu-unmanaged": ("nvidia-t4", False),  # a cluster mlspec does not manage: no pool to select
}


def churn_text(
    rollout: dict | None = None, accelerator: str | None = None, targets: list | None = None
) -> str:
    from ruamel.yaml import YAML

    rt = YAML()  # YAML 1.2 and round-trip: `on:` keys stay strings
    data = rt.load(CHURN.read_text("utf-8"))
    if rollout is not None:
        data["serving"]["rollout"] = rollout
    if targets is not None:
        data["targets"] = targets
    if accelerator is not None:
        gpu_type, managed = ACCELERATORS[accelerator]
        data["serving"]["accelerator"] = "gpu"
        data["serving"]["resources"]["gpu"] = {"type": gpu_type, "count": 1}
        # the canary's peak (3 replicas + 1 surge pod) on one-accelerator nodes: what the pools hold (MS224)
        data["serving"]["replicas"] = {"min": 1, "max": 3}
        if gpu_type.startswith("aws-"):
            data["infrastructure"]["node_pools"]["inf"] = {"instance_type": "inf2.xlarge", "min": 0, "max": 4}
        if not managed:
            del data["infrastructure"], data["environments"]
    buf = io.StringIO()
    rt.dump(data, buf)
    return buf.getvalue()


def ir_for(text: str, env: str | None = None):
    return mlspec.lower(mlspec.loads(text, "specs/churn.yaml"), env)


def emit(ir, allow_unsupported: bool = True):
    ctx = EmitContext(allow_unsupported=allow_unsupported, spec_path="specs/churn.yaml")
    return KubernetesBackend().emit(ir, ctx), ctx


def write(artifacts, root: Path) -> Path:
    for a in artifacts:
        path = root / a.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(a.data())
    return root


def kustomize(folder: Path) -> list[dict]:
    out = subprocess.run([KUBECTL, "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


ENVIRONMENTS = ("staging", "prod")
# Kubernetes the only orchestrating target: it owns the loop (monitor CronJob, retraining Jobs).
KUBERNETES_LOOP = "kubernetes-loop"
# Every variant build_all() compiles, by name.
VARIANTS = [*ROLLOUTS, *ACCELERATORS, KUBERNETES_LOOP, *(f"env-{env}" for env in ENVIRONMENTS)]


def variants() -> dict[str, str]:
    out = {name: churn_text(r) for name, r in ROLLOUTS.items()}
    out.update({name: churn_text(accelerator=name) for name in ACCELERATORS})
    out[KUBERNETES_LOOP] = churn_text(targets=["terraform", "kubernetes"])
    return out


def build_all(base: Path) -> dict[str, tuple[object, Path, list[dict]]]:
    """name -> (IR, output folder, objects as `kubectl kustomize` builds them), for every variant and env."""
    result = {}
    cases = [(name, text, None) for name, text in variants().items()]
    cases += [(f"env-{env}", churn_text(), env) for env in ENVIRONMENTS]
    for name, text, env in cases:
        ir = ir_for(text, env)
        artifacts, _ = emit(ir)
        folder = write(artifacts, base / name)
        result[name] = (ir, folder, kustomize(folder))
    return result
