"""mlspec backend for Kubeflow Pipelines v2. kfp itself is imported only when a pipeline is compiled."""

from mlspec_kubeflow.backend import KubeflowBackend

__all__ = ["KubeflowBackend"]
