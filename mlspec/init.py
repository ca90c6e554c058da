"""`mlspec init`: a starter spec, or a runnable example (a spec plus a small data set it generates).

The example data come from a seeded generator in pure Python, so the files are byte-identical on every
machine and `mlspec init` needs nothing beyond the core.
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
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


def _schema_ref(out: Path) -> str:
    schemas = Path("schemas/mlspec.v1.schema.json")
    if schemas.exists():
        return Path(os.path.relpath(schemas.resolve(), out.resolve().parent)).as_posix()
    return "https://mlspec.dev/schemas/mlspec.v1.schema.json"


def starter_spec(name: str, out: Path) -> str:
    return _TEMPLATE.format(name=name, schema=_schema_ref(out))


# ---------------------------------------------------------------------------------------------- examples

_CHURN_SPEC = """\
# yaml-language-server: $schema={schema}
#
# A runnable example from `mlspec init --example churn`: {rows} synthetic customers in {data}/train.csv
# (seeded, so every machine writes the same bytes). `mlspec run {spec}` validates the data, tunes, trains
# a small MLP, evaluates and gates it, exports ONNX and registers it in a local MLflow registry.
apiVersion: mlspec/v1
kind: MLSystem
metadata:
  name: {name}
  owner: my-team

images:
  runtime: ghcr.io/my-org/{name}-runtime:0.1.0

data:
  sources:
    train: {{uri: {data}/train.csv, format: csv}}
  schema:
    target: churned
    columns:
      customer_id: {{type: string, unique: true, pii: true, role: id}}
      tenure_months: {{type: int, min: 0, max: 120}}
      monthly_charges: {{type: float, min: 0}}
      support_calls: {{type: int, min: 0}}
      contract: {{type: category, values: [month-to-month, one-year, two-year]}}
      churned: {{type: int, values: [0, 1]}}
  checks:
    - {{check: not_null, columns: [customer_id, tenure_months]}}
    - {{check: row_count, min: 500}}
    - {{check: no_pii_in_features}}
  split: {{test: 0.25, seed: 7, stratify: churned}}

training:
  builtin: {{model: mlp, hidden: [16, 8]}}
  hyperparameters: {{epochs: 8, lr: 0.01, batch_size: 64}}
  tuning:
    method: random
    trials: 2
    parallelism: 2
    metric: {{name: auc, goal: maximize}}
    space: {{lr: {{log_uniform: [3.0e-3, 3.0e-2]}}}}
  seed: 1

evaluation:
  metrics: [accuracy, f1, auc]
  gates:
    - {{metric: auc, min: 0.65}}

registry:
  mlflow: {{tracking_uri: "sqlite:///.mlspec/mlflow.db", model_name: {name}}}

serving:
  replicas: {{min: 1, max: 3}}
  slo: {{latency_p99_ms: 100}}

monitoring:
  schedule: "*/30 * * * *"
  drift: {{method: psi, threshold: 0.2}}

targets: [kubeflow, airflow, kubernetes]
"""

_HOUSES_SPEC = """\
# yaml-language-server: $schema={schema}
#
# A runnable example from `mlspec init --example house-prices`: {rows} synthetic sales in {data}/train.csv
# (seeded, so every machine writes the same bytes). `mlspec run {spec}` trains a small MLP regressor on the
# price in thousands, gates it on R^2, exports ONNX and registers it in a local MLflow registry.
apiVersion: mlspec/v1
kind: MLSystem
metadata:
  name: {name}
  owner: my-team

images:
  runtime: ghcr.io/my-org/{name}-runtime:0.1.0

data:
  sources:
    train: {{uri: {data}/train.csv, format: csv}}
  schema:
    target: price_k
    task: regression
    columns:
      area_m2: {{type: float, min: 0}}
      rooms: {{type: int, min: 1}}
      age_years: {{type: int, min: 0}}
      district: {{type: category, values: [center, suburb, rural]}}
      price_k: {{type: float, min: 0}}
  checks:
    - {{check: not_null, columns: [area_m2, rooms]}}
    - {{check: row_count, min: 500}}
  split: {{test: 0.25, seed: 5}}

training:
  builtin: {{model: mlp, hidden: [16]}}
  hyperparameters: {{epochs: 12, lr: 0.01, batch_size: 64}}
  seed: 2

evaluation:
  metrics: [rmse, mae, r2]
  gates:
    - {{metric: r2, min: 0.5}}

registry:
  mlflow: {{tracking_uri: "sqlite:///.mlspec/mlflow.db", model_name: {name}}}

serving:
  replicas: {{min: 1, max: 3}}
  slo: {{latency_p99_ms: 100}}

targets: [kubeflow, airflow, kubernetes]
"""


def _churn_rows(rng: random.Random, n: int) -> list[dict[str, object]]:
    rows = []
    for i in range(n):
        tenure = min(int(rng.gammavariate(1.4, 18.0)), 120)
        contract = rng.choices(["month-to-month", "one-year", "two-year"], [0.55, 0.25, 0.2])[0]
        charges = round(min(max(rng.gauss(70, 22), 18.25), 125.0), 2)
        calls = min(int(rng.expovariate(0.8)), 12)
        logit = -0.6 - 0.04 * tenure + 0.02 * (charges - 65) + 0.35 * calls
        logit -= {"month-to-month": 0.0, "one-year": 0.9, "two-year": 1.8}[contract]
        churned = int(rng.random() < 1 / (1 + math.exp(-logit)))
        rows.append(
            {
                "customer_id": f"c{i:05d}",
                "tenure_months": tenure,
                "monthly_charges": charges,
                "support_calls": calls,
                "contract": contract,
                "churned": churned,
            }
        )
    return rows


def _house_rows(rng: random.Random, n: int) -> list[dict[str, object]]:
    rows = []
    for _ in range(n):
        district = rng.choices(["center", "suburb", "rural"], [0.3, 0.5, 0.2])[0]
        area = round(rng.uniform(30, 220), 1)
        rooms = max(1, min(8, round(area / 28 + rng.gauss(0, 0.7))))
        age = int(rng.uniform(0, 80))
        base = {"center": 5.2, "suburb": 3.4, "rural": 2.1}[district]
        price = base * area + 12 * rooms - 0.9 * age + rng.gauss(0, 40)
        rows.append(
            {
                "area_m2": area,
                "rooms": rooms,
                "age_years": age,
                "district": district,
                "price_k": round(max(price, 20.0), 1),
            }
        )
    return rows


@dataclass(frozen=True)
class Example:
    spec: str
    rows: Callable[[random.Random, int], list[dict[str, object]]]
    count: int
    seed: int


EXAMPLES = {
    "churn": Example(_CHURN_SPEC, _churn_rows, 800, 7),
    "house-prices": Example(_HOUSES_SPEC, _house_rows, 800, 11),
}


def example_csv(example: str) -> str:
    ex = EXAMPLES[example]
    rows = ex.rows(random.Random(ex.seed), ex.count)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_example(example: str, name: str, out: Path, *, force: bool = False) -> list[Path]:
    """Write the example's spec at `out` and its data under data/<name>/; returns the files. Data URIs are
    relative to the working directory, where `mlspec run` is started."""
    ex = EXAMPLES[example]
    data_dir = Path("data") / name
    data_path = data_dir / "train.csv"
    for path in (out, data_path):
        if path.exists() and not force:
            raise FileExistsError(path.as_posix())
    spec = ex.spec.format(
        name=name, schema=_schema_ref(out), data=data_dir.as_posix(), rows=ex.count, spec=out.as_posix()
    )
    data_path.parent.mkdir(parents=True, exist_ok=True)
    data_path.write_text(example_csv(example), encoding="utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(spec, encoding="utf-8")
    return [out, data_path]
