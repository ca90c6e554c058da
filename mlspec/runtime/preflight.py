"""Before the first step of `mlspec run`: are the runtime's libraries importable? One clear error naming
the extra to install, instead of a step failing a minute later with an ImportError in its log."""

from __future__ import annotations

import importlib.util

from mlspec.runtime import UsageError

# import name -> distribution, for what every local pipeline step may import (the `runtime` extra)
RUNTIME_MODULES = {
    "numpy": "numpy",
    "pandas": "pandas",
    "pyarrow": "pyarrow",
    "scipy": "scipy",
    "sklearn": "scikit-learn",
    "pandera": "pandera",
    "optuna": "optuna",
    "torch": "torch",
    "onnx": "onnx",
    "onnxscript": "onnxscript",
    "onnxruntime": "onnxruntime",
    "mlflow": "mlflow",
    "croniter": "croniter",
}


def missing(modules: dict[str, str] = RUNTIME_MODULES) -> list[str]:
    """The distributions whose module cannot be found."""
    gone = []
    for module, dist in modules.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            gone.append(dist)
    return gone


def check_runtime() -> None:
    gone = missing()
    if gone:
        raise UsageError(
            f"'mlspec run' needs the runtime dependencies; not installed: {', '.join(gone)}. "
            "Install them with: pip install 'mlspec[runtime]'"
        )
