"""A small deterministic MLP as ONNX (built with onnx.helper), for tests, benchmarks and smoke checks.

It has the shape the training runtime exports: one float32 input "input" [N, F], the feature names in the
"mlspec.features" metadata, and one output "probability" [N, 1].
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np


def mlp_weights(n_features: int, hidden: tuple[int, ...], seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    sizes = [n_features, *hidden, 1]
    return [
        (
            (rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32),
            (rng.standard_normal(b) * 0.1).astype(np.float32),
        )
        for a, b in itertools.pairwise(sizes)
    ]


def mlp_reference(x: np.ndarray, weights: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The same network in numpy: the expected outputs."""
    h = x.astype(np.float32)
    for i, (w, b) in enumerate(weights):
        h = h @ w + b
        h = np.maximum(h, 0) if i < len(weights) - 1 else 1 / (1 + np.exp(-h))
    return h


def write_mlp(
    path: str | Path,
    n_features: int = 20,
    hidden: tuple[int, ...] = (64, 32),
    seed: int = 0,
    features: list[str] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Write the MLP to PATH and return its weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = mlp_weights(n_features, hidden, seed)
    nodes, inits, current = [], [], "input"
    for i, (w, b) in enumerate(weights):
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        out = f"h{i}"
        nodes.append(helper.make_node("Gemm", [current, f"w{i}", f"b{i}"], [out]))
        last = i == len(weights) - 1
        act = "probability" if last else f"a{i}"
        nodes.append(helper.make_node("Sigmoid" if last else "Relu", [out], [act]))
        current = act
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", n_features])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["N", 1])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    names = features if features is not None else [f"f{i}" for i in range(n_features)]
    helper.set_model_props(model, {"mlspec.features": json.dumps(names)})
    onnx.checker.check_model(model)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return weights
