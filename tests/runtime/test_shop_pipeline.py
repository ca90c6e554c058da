"""specs/shop.yaml end to end with `mlspec run`: duplicates go before the split, the enrich step's feature
reaches training, the exported model and the server, and a request without the derived column gets the
prediction training's data gives."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.engine  # the whole pipeline with a real MLflow registry and a real model server

ROOT = Path(__file__).resolve().parents[2]


def _serving_helpers():
    """The model server tests' helpers (tests/serving/conftest.py): a real server process on a free port."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "serving_helpers", ROOT / "tests" / "serving" / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shop")
    for folder in ("specs", "data", "examples"):
        shutil.copytree(ROOT / folder, root / folder)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run(
        [sys.executable, "-m", "mlspec", "run", "specs/shop.yaml"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    (root / "run.txt").write_text(proc.stdout)
    return root


def test_mlspec_run_prepares_checks_splits_and_trains_on_the_new_feature(project: Path) -> None:
    out = (project / "run.txt").read_text()
    assert "dedupe: ok" in out and "train: 4200 -> 4000 rows" in out and "enrich: ok" in out
    run = next((project / ".mlspec" / "runs").iterdir())
    train = pd.read_parquet(run / "data" / "train.parquet")
    test = pd.read_parquet(run / "data" / "test.parquet")
    assert len(train) + len(test) == 4000 and not set(train["customer_id"]) & set(test["customer_id"])
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(run / "export" / "model.onnx")).metadata_props}
    assert "spend_per_order" in json.loads(meta["mlspec.features"])
    spec = json.loads((run / "export" / "preprocessing.json").read_text())
    assert spec["transforms"] == [
        {"step": "enrich", "function": "examples.shop.prep:add_spend_per_order", "adds": ["spend_per_order"]}
    ]
    exported = json.loads((run / "steps" / "export" / "result.json").read_text())
    assert exported["transforms_max_abs_diff"] == 0.0


def test_the_server_computes_the_feature_from_a_raw_request(project: Path, tmp_path: Path) -> None:
    from mlspec.runtime import preprocessing, training

    run = next((project / ".mlspec" / "runs").iterdir())
    test = pd.read_parquet(run / "data" / "test.parquet").head(25)
    model, spec = training.load(run / "model")
    expected = training.predict(model, preprocessing.encode(test, spec))  # what training's data gives
    raw = test.drop(columns=["spend_per_order", "repeat_buyer"])
    records = json.loads(raw.to_json(orient="records"))
    assert all("spend_per_order" not in r for r in records)
    helpers = _serving_helpers()
    server = helpers.launch(
        tmp_path, "--model", str(run / "export" / "model.onnx"), "--name", "shop", "--no-cache", cwd=project
    )
    try:
        status, body = helpers.http("POST", f"{server.url}/predict", {"records": records})
    finally:
        helpers.stop(server.proc)
    assert status == 200, body
    np.testing.assert_allclose(np.array(body["predictions"]), expected, atol=1e-5)
