"""Load an ONNX model into an ONNX Runtime session, from a file or the MLflow registry."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from mlspec import contracts
from mlspec.serving.resources import cpu_limit

log = logging.getLogger("mlspec.serving")

FEATURES_METADATA_KEY = "mlspec.features"
PREPROCESSING_METADATA_KEY = "mlspec.preprocessing"
_ORT_TO_V2 = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(bool)": "BOOL",
    "tensor(float16)": "FP16",
    "tensor(string)": "BYTES",
    "tensor(int8)": "INT8",
    "tensor(uint8)": "UINT8",
}
_ORT_TO_NUMPY = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}


class ModelError(Exception):
    """The model could not be resolved, loaded or warmed up."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    datatype: str
    shape: list[int]


@dataclass
class LoadedModel:
    """One immutable model version: requests hold a reference, so a hot swap never pulls it from under them."""

    name: str
    version: str
    session: ort.InferenceSession
    input: TensorInfo
    outputs: list[TensorInfo]
    input_dtype: Any
    features: list[str] | None
    providers: list[str] = field(default_factory=list)
    # categorical feature -> its values; the model takes a value's index (-1 for one it never saw)
    categories: dict[str, list[Any]] = field(default_factory=dict)
    # the preparation steps' row-wise transforms, applied to `records` before their features are read
    transforms: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_features(self) -> int:
        return self.input.shape[1]

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input.name: batch})

    def metadata(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": "onnxruntime_onnx",
            "inputs": [_tensor_meta(self.input)],
            "outputs": [_tensor_meta(o) for o in self.outputs],
            "parameters": {"features": self.features or [], "categories": self.categories},
        }


def _tensor_meta(info: TensorInfo) -> dict[str, Any]:
    return {"name": info.name, "datatype": info.datatype, "shape": info.shape}


def session_options(threads: int | None = None) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or cpu_limit()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning worker threads burn the cores the HTTP loop needs on a small container.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def choose_providers(accelerator: str) -> list[str]:
    available = ort.get_available_providers()
    if accelerator == "gpu":
        if "CUDAExecutionProvider" in available:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        log.warning("accelerator is gpu but onnxruntime has no CUDAExecutionProvider here; serving on CPU")
    return ["CPUExecutionProvider"]


def load_onnx(
    path: str | os.PathLike[str],
    *,
    name: str,
    version: str,
    accelerator: str = "cpu",
    threads: int | None = None,
    fallback_features: list[str] | None = None,
) -> LoadedModel:
    """Build a session for the model at PATH and warm it up; raises ModelError when it cannot serve."""
    try:
        session = ort.InferenceSession(
            str(path), sess_options=session_options(threads), providers=choose_providers(accelerator)
        )
    except Exception as exc:  # onnxruntime raises several unrelated exception types
        raise ModelError(f"cannot load ONNX model {path}: {exc}") from exc
    inputs = session.get_inputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 2 or not isinstance(inputs[0].shape[1], int):
        raise ModelError(
            f"{path}: the server needs one 2-D input [N, F] with a fixed F, found "
            f"{[(i.name, i.shape) for i in inputs]}"
        )
    inp = inputs[0]
    if inp.type not in _ORT_TO_NUMPY:
        raise ModelError(f"{path}: input {inp.name} has unsupported type {inp.type}")
    n_features = inp.shape[1]
    features = _features(session, n_features, fallback_features)
    model = LoadedModel(
        name=name,
        version=str(version),
        session=session,
        input=TensorInfo(inp.name, _ORT_TO_V2[inp.type], [-1, n_features]),
        outputs=[
            TensorInfo(
                o.name, _ORT_TO_V2.get(o.type, "FP32"), [d if isinstance(d, int) else -1 for d in o.shape]
            )
            for o in session.get_outputs()
        ],
        input_dtype=_ORT_TO_NUMPY[inp.type],
        features=features,
        providers=session.get_providers(),
        categories=_categories(session),
        transforms=_transforms(session),
    )
    warm_up(model)
    return model


def _features(session: ort.InferenceSession, n_features: int, fallback: list[str] | None) -> list[str] | None:
    raw = session.get_modelmeta().custom_metadata_map.get(FEATURES_METADATA_KEY)
    if raw:
        try:
            names = json.loads(raw)
        except ValueError as exc:
            raise ModelError(f"metadata {FEATURES_METADATA_KEY} is not a JSON list: {exc}") from exc
        if not (
            isinstance(names, list) and len(names) == n_features and all(isinstance(n, str) for n in names)
        ):
            raise ModelError(f"metadata {FEATURES_METADATA_KEY} must list {n_features} feature names")
        return names
    if fallback and len(fallback) == n_features:
        return list(fallback)
    return None


def _categories(session: ort.InferenceSession) -> dict[str, list[Any]]:
    """Category values per feature from the training bundle's preprocessing metadata (absent: none)."""
    raw = session.get_modelmeta().custom_metadata_map.get(PREPROCESSING_METADATA_KEY)
    if not raw:
        return {}
    try:
        spec = json.loads(raw)
        return {f["name"]: list(f["values"]) for f in spec.get("features", []) if f.get("kind") == "category"}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"metadata {PREPROCESSING_METADATA_KEY} is malformed: {exc}") from exc


def _transforms(session: ort.InferenceSession) -> list[dict[str, Any]]:
    """The transforms the training bundle declares (mlspec.runtime.preprocessing.apply_transforms)."""
    raw = session.get_modelmeta().custom_metadata_map.get(PREPROCESSING_METADATA_KEY)
    if not raw:
        return []
    try:
        transforms = json.loads(raw).get("transforms", [])
        return [{"step": t["step"], "function": t["function"], "adds": list(t["adds"])} for t in transforms]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"metadata {PREPROCESSING_METADATA_KEY} has malformed transforms: {exc}") from exc


def warm_up(model: LoadedModel) -> None:
    try:
        for rows in (1, 8):
            model.run(np.zeros((rows, model.n_features), dtype=model.input_dtype))
    except Exception as exc:
        raise ModelError(f"warm-up inference failed: {exc}") from exc


# --- MLflow registry -------------------------------------------------------------------------------------


def parse_models_uri(uri: str) -> tuple[str, str | None, str | None]:
    """models:/name@alias -> (name, alias, None); models:/name/3 -> (name, None, "3")."""
    rest = uri[len("models:/") :]
    if "@" in rest:
        name, alias = rest.split("@", 1)
        return name, alias, None
    if "/" in rest:
        name, version = rest.rsplit("/", 1)
        return name, None, version
    raise ModelError(f"model URI {uri!r} names neither an alias (models:/name@alias) nor a version")


def resolve_version(uri: str, tracking_uri: str | None) -> str:
    """The registry version a models:/ URI points at right now."""
    from mlflow import MlflowClient

    name, alias, version = parse_models_uri(uri)
    if version is not None or alias is None:
        return str(version)
    _require_registry(tracking_uri)
    try:
        return str(
            MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
            .get_model_version_by_alias(name, alias)
            .version
        )
    except Exception as exc:
        raise ModelError(f"cannot resolve {uri} in the registry at {tracking_uri}: {exc}") from exc


def _require_registry(tracking_uri: str | None) -> None:
    from mlspec.runtime import StepError
    from mlspec.runtime.registry import require_existing

    try:
        require_existing(tracking_uri or "")
    except StepError as exc:
        raise ModelError(str(exc)) from None


def download_version(name: str, version: str, tracking_uri: str | None) -> Path:
    """Download registered version VERSION of NAME and return the path of its ONNX file."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    _require_registry(tracking_uri)
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
    dest = tempfile.mkdtemp(prefix=f"mlspec-{name}-v{version}-")
    try:
        local = Path(
            mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=dest)
        )
    except Exception as exc:
        raise ModelError(f"cannot download models:/{name}/{version}: {exc}") from exc
    if local.is_file():
        return local
    found = sorted(
        local.rglob("*.onnx"), key=lambda p: (p.name != contracts.MODEL_FILE, len(p.parts), str(p))
    )
    if not found:
        raise ModelError(f"models:/{name}/{version} holds no .onnx file")
    return found[0]
