"""mlspec: one declarative mlops.yaml, compiled to Kubeflow, Airflow, Terraform and Kubernetes."""

from mlspec.api import compile, lint, load, loads, lower
from mlspec.diagnostics import Diagnostic, MlspecError

__version__ = "0.1.0"
__all__ = ["Diagnostic", "MlspecError", "__version__", "compile", "lint", "load", "loads", "lower"]
