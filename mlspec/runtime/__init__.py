"""The runtime: the code every pipeline step runs (`python -m mlspec.runtime STEP_ID ...`) and `mlspec run`.

The step contract is documented in docs/runtime.md. Heavy libraries (torch, mlflow, onnxruntime, optuna) are
imported inside the module that needs them, so importing this package stays cheap.
"""

from __future__ import annotations


class StepError(Exception):
    """A step failed for a reason the user can act on; the message names the cause (no traceback).

    `result` carries what the step learned before failing (e.g. the data-check report) into result.json.
    """

    def __init__(self, message: str, result: dict | None = None):
        super().__init__(message)
        self.result = result or {}


class UsageError(Exception):
    """Bad arguments to the step entry point (exit code 2)."""


def now():
    """The runtime's current instant as a UTC pandas Timestamp, from the one clock (MLSPEC_NOW pins it)."""
    import pandas as pd

    from mlspec import clock

    try:
        return pd.Timestamp(clock.now())
    except clock.ClockError as exc:
        raise UsageError(str(exc)) from None
