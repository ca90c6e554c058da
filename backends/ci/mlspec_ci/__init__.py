"""mlspec backend: GitHub Actions workflows for the system (pull-request test layers, delivery on main)."""

from mlspec_ci.backend import CIBackend

__all__ = ["CIBackend"]
