"""mlspec: one declarative mlops.yaml, compiled to Kubeflow, Airflow, Terraform and Kubernetes."""

# Load the `mlspec.lint` subpackage before binding the API function of the same name: importing a
# subpackage later would rebind the attribute to the module.
from mlspec import lint as _lint_package  # noqa: F401
from mlspec.api import compile, lint, load, load_ir, loads, lower
from mlspec.diagnostics import Diagnostic, MlspecError

__version__ = "0.1.0"
__all__ = ["Diagnostic", "MlspecError", "__version__", "compile", "lint", "load", "load_ir", "loads", "lower"]
