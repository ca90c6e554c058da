"""Hot reload from a real MLflow registry (SQLite): moving the champion alias swaps the model under load
without a failed request; serving the spec takes the model URI, batching, SLO buckets and cache from the IR."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parents[2]


def register_versions(tmp: Path, models: list) -> str:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("churn", artifact_location=(tmp / "artifacts").as_uri())
    client.create_registered_model("churn")
    for model in models:
        run = client.create_run(experiment)
        client.log_artifact(run.info.run_id, str(model.path), "model")
        client.set_terminated(run.info.run_id)
        client.create_model_version("churn", f"{run.info.artifact_uri}/model", run.info.run_id)
    client.set_registered_model_alias("churn", "champion", "1")
    return uri


def test_champion_alias_move_hot_swaps_without_failed_requests(
    h, mlp, mlp_v2, start_server, redis_server, churn_spec_path, tmp_path
):
    from mlflow import MlflowClient

    uri = register_versions(tmp_path, [mlp, mlp_v2])
    server = start_server(
        str(churn_spec_path),
        "--reload-interval",
        "0.3",
        "--prediction-log",
        str(tmp_path / "log"),
        env={"MLFLOW_TRACKING_URI": uri, "MLSPEC_CACHE_URL": redis_server},
    )
    _, text = h.http("GET", f"{server.url}/metrics")
    assert 'le="0.2"' in text  # the churn SLO (200 ms) is a bucket boundary
    assert 'mlspec_model_info{model="churn",version="1"} 1.0' in text

    x = np.round(np.random.default_rng(5).uniform(-1, 1, (3, 20)), 3).tolist()
    expected = {"1": mlp.expected(x), "2": mlp_v2.expected(x)}
    results: list[tuple[int, dict]] = []
    stop_at = [time.monotonic() + 30]

    def client() -> None:
        while time.monotonic() < stop_at[0]:
            results.append(h.http("POST", f"{server.url}/predict", {"inputs": x}))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    h.wait_until(lambda: len(results) >= 20, "requests answered by version 1")
    MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias("churn", "champion", "2")
    h.wait_until(lambda: any(b.get("model_version") == "2" for _, b in results[-20:]), "the hot swap", 20)
    swapped_at = len(results)
    h.wait_until(lambda: len(results) >= swapped_at + 20, "requests answered after the swap")
    stop_at[0] = 0
    for t in threads:
        t.join()

    assert all(status == 200 for status, _ in results), [r for r in results if r[0] != 200][:3]
    versions = [body["model_version"] for _, body in results]
    assert "1" in versions and versions[-1] == "2"
    for _, body in results:  # the cache is keyed by version: never the old model's answer under the new one
        np.testing.assert_allclose(body["predictions"], expected[body["model_version"]], rtol=1e-5, atol=1e-6)
    assert h.metric(server.url, "mlspec_model_reloads_total", 'outcome="succeeded"') == 1
    assert 'version="2"} 1.0' in h.http("GET", f"{server.url}/metrics")[1]
