"""The reference the window is compared with: the profile, preprocessing and metrics saved with the model.

Looked for in order: an explicit profile path (its preprocessing.json and metrics.json beside it), the run
directory's export step, the registry's champion version.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlspec.runtime import data
from mlspec.runtime.monitoring import MonitorError

PROFILE = "reference_profile.json"
PREPROCESSING = "preprocessing.json"
METRICS = "metrics.json"


class ReferenceError(MonitorError):
    """No reference profile could be found; the message lists where the monitor looked."""


@dataclass(frozen=True)
class Reference:
    profile: dict[str, Any]
    preprocessing: dict[str, Any] | None
    metrics: dict[str, Any] | None
    source: str  # a path or models:/name/version

    def codes(self, ir: Any) -> dict[str, list[str]]:
        """Categorical features the server logs as the model's value index: their values in index order."""
        values: dict[str, list[Any]] = {}
        if self.preprocessing:
            values = {
                f["name"]: f["values"]
                for f in self.preprocessing.get("features", [])
                if f.get("kind") == "category"
            }
        for col in ir.data.columns:
            if col.values and col.name not in values:
                values[col.name] = list(col.values)
        return {name: [str(v) for v in vals] for name, vals in values.items()}


def _read_json(uri: str) -> dict[str, Any] | None:
    try:
        with data.open_file(uri, "rb") as handle:
            return json.loads(handle.read())
    except FileNotFoundError:
        return None


def load_reference(ir: Any, run_dir: str, reference: str | None = None) -> Reference:
    if reference:
        profile = _read_json(reference)
        if profile is None:
            raise ReferenceError(f"reference profile {reference} does not exist")
        base = reference.rsplit("/", 1)[0] if "/" in reference else "."
        return Reference(
            profile, _read_json(f"{base}/{PREPROCESSING}"), _read_json(f"{base}/{METRICS}"), reference
        )
    export_dir = f"{run_dir.rstrip('/')}/steps/export"
    profile = _read_json(f"{export_dir}/{PROFILE}")
    if profile is not None:
        return Reference(
            profile,
            _read_json(f"{export_dir}/{PREPROCESSING}"),
            _read_json(f"{export_dir}/{METRICS}"),
            f"{export_dir}/{PROFILE}",
        )
    from mlspec.runtime import registry  # mlflow only when the registry is the source

    version = registry.alias_version(ir, ir.registry.champion_alias)
    if version is None:
        raise ReferenceError(
            f"no reference profile: none given, none in {export_dir}, and model "
            f"'{ir.registry.model_name}' has no '{ir.registry.champion_alias}' version"
        )
    local = Path(tempfile.mkdtemp(prefix="mlspec-ref-"))
    path = registry.download(ir, version, local)
    found = next(iter(sorted(path.rglob(PROFILE))), None)
    if found is None:
        raise ReferenceError(f"champion version {version} of '{ir.registry.model_name}' has no {PROFILE}")
    side = found.parent
    pre = json.loads((side / PREPROCESSING).read_text()) if (side / PREPROCESSING).exists() else None
    met = json.loads((side / METRICS).read_text()) if (side / METRICS).exists() else None
    return Reference(json.loads(found.read_text()), pre, met, f"models:/{ir.registry.model_name}/{version}")
