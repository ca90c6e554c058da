"""mlspec backend for Kubernetes: serving manifests, progressive delivery, SLO alerts and the monitoring job."""

from mlspec_kubernetes.backend import KubernetesBackend

__all__ = ["KubernetesBackend"]
