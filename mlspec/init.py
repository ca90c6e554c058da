"""The starter spec written by `mlspec init`."""

from __future__ import annotations

import os
from pathlib import Path

_TEMPLATE = """\
# yaml-language-server: $schema={schema}
apiVersion: mlspec/v1
kind: MLSystem
metadata:
  name: {name}
  owner: my-team

images:
  runtime: ghcr.io/my-org/{name}-runtime:0.1.0

data:
  sources:
    train: {{uri: data/train.parquet}}
  schema:
    target: label
    columns:
      feature_a: {{type: float}}
      feature_b: {{type: float}}
      label: {{type: int, values: [0, 1]}}
  checks:
    - {{check: not_null, columns: [feature_a, feature_b]}}
  split: {{test: 0.2, seed: 0, stratify: label}}

training:
  builtin: {{model: mlp, hidden: [32, 16]}}
  hyperparameters: {{epochs: 10, lr: 0.005, batch_size: 256}}

evaluation:
  metrics: [accuracy, f1, auc]
  gates:
    - {{metric: auc, min: 0.7}}

serving:
  replicas: {{min: 1, max: 3}}
  slo: {{latency_p99_ms: 100}}

targets: [kubeflow, airflow, kubernetes]
"""


def starter_spec(name: str, out: Path) -> str:
    schemas = Path("schemas/mlspec.v1.schema.json")
    if schemas.exists():
        schema = Path(os.path.relpath(schemas.resolve(), out.resolve().parent)).as_posix()
    else:
        schema = "https://mlspec.dev/schemas/mlspec.v1.schema.json"
    return _TEMPLATE.format(name=name, schema=schema)
