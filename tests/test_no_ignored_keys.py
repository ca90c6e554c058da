"""No spec key is accepted and ignored.

The test walks the spec models (not a hand list) over a spec that uses every section, changes each leaf to
another valid value, and requires the lowered IR to change: a key that changes nothing reaches no backend,
runtime or server. Then every IR field must be read somewhere downstream: by a backend, the runtime or the
server (their source spells the field's name as an attribute or key).
"""

from __future__ import annotations

import copy
import io
import json
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML

import mlspec
from mlspec.diagnostics import MlspecError
from mlspec.ir.model import IR
from mlspec.spec.models import Spec

ROOT = Path(__file__).resolve().parents[1]
# Keys that configure mlspec itself rather than the system: they never reach the IR, by design.
NOT_IN_THE_IR = {
    ("$schema",): "the editor's schema modeline",
    ("apiVersion",): "the language version, checked on load",
    ("kind",): "the document kind, checked on load",
}


def _example() -> dict:
    """churn, plus the sections and keys churn leaves at their defaults, so every key has a value to change."""
    data = YAML(typ="safe", pure=True).load((ROOT / "specs" / "churn.yaml").read_text())
    data["metadata"]["description"] = "Customer churn"
    data["metadata"]["namespace"] = "churn-ml"
    data["steps"] = [
        {
            "name": "build-features",
            "command": ["python", "-m", "churn.features", "--out", "{outputs.features}"],
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:1.4.2",
            "before": "train",
            "after": "validate-data",
            "resources": {"cpu": 2, "memory": "4Gi"},
            "env": {"MODE": "full"},
            "retries": 1,
            "timeout": "30m",
            "cache": False,
        }
    ]
    data["training"]["hyperparameters"]["momentum"] = 0.9
    data["training"]["cross_validation"] = {"folds": 3}
    data["training"]["seed"] = 3
    data["evaluation"]["custom_metrics"] = {"retained_revenue": "churn.kpi:retained_revenue"}
    data["registry"]["mlflow"]["experiment"] = "churn-exp"
    serving = data["serving"]
    serving["port"] = 8081
    serving["batching"] = {"max_batch_size": 32, "max_delay_ms": 3}
    serving["prediction_log"] = "s3://acme-ml-artifacts/churn/predlog"
    serving["sample_rate"] = 0.5
    data["monitoring"]["window"] = "12h"
    data["monitoring"]["min_samples"] = 400
    data["retraining"]["min_samples"] = 900
    data["infrastructure"]["network"] = {"cidr": "10.1.0.0/16", "availability_zones": 3}
    data["infrastructure"]["storage"]["noncurrent_version_days"] = 14
    data["infrastructure"]["container_registry"] = "churn"
    data["infrastructure"]["state"]["key"] = "ml/churn.tfstate"
    data["infrastructure"]["state"]["region"] = "us-east-2"
    pools = data["infrastructure"]["node_pools"]
    pools["cpu"]["desired"] = 3
    pools["cpu"]["disk_size_gb"] = 80
    pools["cpu"]["labels"] = {"team": "growth"}
    pools["gpu"]["taints"] = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
    data["orchestration"] = {"airflow_mode": "kubernetes"}
    return data


def _annotation_at(model: type[BaseModel], data: dict, path: tuple) -> Any:
    """The annotation of the field at `path` (walking models, lists and dicts of the example)."""
    annotation: Any = model
    node: Any = data
    for part in path:
        annotation = _unwrap(annotation, node)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = next(f for n, f in annotation.model_fields.items() if (f.alias or n) == part)
            annotation = field.annotation
        else:
            args = typing.get_args(annotation)
            annotation = args[-1] if args else Any
        node = node[part]
    return annotation


def _unwrap(annotation: Any, node: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0], node)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is type(None):
                continue
            inner = _unwrap(arg, node)
            if isinstance(inner, type) and issubclass(inner, BaseModel) and isinstance(node, dict):
                names = {f.alias or n for n, f in inner.model_fields.items()}
                if set(node) <= names:
                    return inner
            elif not (isinstance(inner, type) and issubclass(inner, BaseModel)):
                return inner
    return annotation


def _leaves(node: Any, path: tuple = ()) -> Iterator[tuple]:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list) and node and not all(isinstance(v, int | float) for v in node):
        for index, value in enumerate(node):
            yield from _leaves(value, (*path, index))
    else:
        yield path


def _alternatives(value: Any, annotation: Any) -> list[Any]:
    """Other values of the same type to try, most likely valid first."""
    literals = _literals(annotation)
    if literals:
        return [v for v in literals if v != value]
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1, value * 2]
    if isinstance(value, float):
        return [round(value * 0.9, 6), round(value + 0.01, 6), round(value * 1.1, 6)]
    if isinstance(value, list):
        return [value[::-1], value[:-1], [*value, value[-1]]] if value else []
    if isinstance(value, str):
        match = re.fullmatch(r"([0-9]+)(ms|s|m|h|d|w)", value)
        if match:
            return [f"{int(match.group(1)) + 1}{match.group(2)}"]
        bumped = re.sub(r"[0-9]+", lambda m: str(int(m.group()) + 1), value, count=1)
        candidates = [bumped, value + "x", value[:-1] + ("b" if value[-1:] != "b" else "c")]
        return [c for c in candidates if c != value]
    return []


def _literals(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return list(typing.get_args(annotation))
    if origin in (typing.Annotated, typing.Union, types.UnionType):
        return [v for arg in typing.get_args(annotation) for v in _literals(arg)]
    return []


def _ir(data: dict) -> dict | None:
    buf = io.StringIO()
    YAML().dump(data, buf)
    try:
        ir = mlspec.lower(mlspec.loads(buf.getvalue(), "specs/churn.yaml"))
    except (MlspecError, ValidationError, ValueError):
        return None
    dumped = json.loads(ir.to_json())
    dumped["system"].pop("spec_sha256")
    return dumped


def _set(data: dict, path: tuple, value: Any) -> dict:
    data = copy.deepcopy(data)
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return data


def test_every_spec_key_changes_the_ir() -> None:
    base = _example()
    before = _ir(base)
    assert before is not None
    ignored = []
    for path in _leaves({k: v for k, v in base.items() if k != "environments"}):
        if path in NOT_IN_THE_IR:
            continue
        value = base
        for part in path:
            value = value[part]
        annotation = _annotation_at(Spec, base, path)
        tried = False
        changed = False
        for alternative in _alternatives(value, annotation):
            after = _ir(_set(base, path, alternative))
            if after is None:
                continue  # not a valid value here: try the next one
            tried = True
            if after != before:
                changed = True
                break
        # a key with no other valid value (a union's tag, a one-value enum) cannot be ignored either
        if tried and not changed:
            ignored.append(".".join(map(str, path)))
    assert not ignored, f"accepted and ignored: {ignored}"


def test_an_environment_overlay_reaches_the_ir() -> None:
    loaded = mlspec.load(ROOT / "specs" / "churn.yaml")
    assert mlspec.lower(loaded, "staging") != mlspec.lower(loaded)


def _fields(model: type[BaseModel], found: dict[str, set[str]]) -> dict[str, set[str]]:
    from mlspec.reference import models

    for m in models(model, []):
        for name in m.model_fields:
            found.setdefault(name, set()).add(m.__name__)
    return found


CONSUMERS = [
    *sorted((ROOT / "backends").glob("*/mlspec_*/**/*.py")),
    *sorted((ROOT / "backends").glob("*/mlspec_*/**/*.j2")),
    *sorted((ROOT / "mlspec" / "runtime").rglob("*.py")),
    *sorted((ROOT / "mlspec" / "serving").rglob("*.py")),
    ROOT / "mlspec" / "graph.py",
    ROOT / "mlspec" / "doctor.py",
]
# IR fields that record a decision for people and tools, whose translation is what targets read.
RECORDS = {
    "image_family": "the cloud-neutral node image family; NodePool.ami_type is its AWS translation",
    "repository": "the repository part of RuntimeImage.reference, which every target pulls",
    "max_latency_p99_ms": "the rollback limit in the spec's unit; the analysis reads max_latency_bucket_seconds",
    "experiment_duration_seconds": "the a-b split's length; the analysis reads RolloutAnalysis.duration_seconds",
    "mirrored": "a variant that answers copies of requests; monitoring reads excluded_variants, decided from it",
    "produced_by": "the step that adds a column, for people and tools; steps read the data flow's DataSetRefs",
    "workers": "the spec's worker count; what launches the workers reads is Training.distribution",
}


@pytest.mark.parametrize("field", sorted(_fields(IR, {})))
def test_every_ir_field_is_read_downstream(field: str) -> None:
    if field in ("ir_version",) or field in RECORDS:
        return  # read by read_ir itself, or a record (see RECORDS)
    pattern = re.compile(rf"\.{field}\b|\[[\"']{field}[\"']\]|\b{field}=|get\([\"']{field}[\"']")
    readers = [p for p in CONSUMERS if pattern.search(p.read_text(encoding="utf-8"))]
    assert readers, (
        f"IR field {field!r} ({', '.join(sorted(_fields(IR, {})[field]))}) is read by nothing downstream"
    )
