"""mlspec backend: the runtime image every pipeline step and the model server run (Dockerfile + .dockerignore)."""

from mlspec_container.backend import ContainerBackend

__all__ = ["ContainerBackend"]
