"""The server as a real process: V2 protocol, /predict, validation, batching, metrics, cache, prediction log,
tritonclient compatibility and the load test against the spec's SLO."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(h, mlp, redis_server, tmp_path_factory):
    """One server for the module: the MLP from a file, a real Redis cache and a prediction log directory."""
    tmp = tmp_path_factory.mktemp("served")
    log_dir = tmp / "predictions"
    server = h.launch(
        tmp,
        "--model",
        str(mlp.path),
        "--name",
        "mlp",
        "--cache-url",
        redis_server,
        "--prediction-log",
        str(log_dir),
        "--log-flush-interval",
        "0.2",
        "--max-rows",
        "256",
        "--max-body-bytes",
        "200000",
    )
    server.log_dir = log_dir
    yield server
    h.stop(server.proc)


def rows(n: int, seed: int = 0) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return np.round(rng.uniform(-3, 3, (n, 20)), 4).tolist()


def test_health_and_model_metadata(served, h):
    assert h.http("GET", f"{served.url}/v2/health/live") == (200, {"live": True})
    assert h.http("GET", f"{served.url}/v2/health/ready") == (200, {"ready": True})
    assert h.http("GET", f"{served.url}/v2/models/mlp/ready")[0] == 200
    status, meta = h.http("GET", f"{served.url}/v2/models/mlp")
    assert status == 200
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 20]}]
    assert meta["outputs"][0]["name"] == "probability"
    assert meta["parameters"]["features"] == h.features
    assert h.http("GET", f"{served.url}/v2/models/other")[0] == 404


def test_predict_rows_and_records_give_the_models_outputs(served, h, mlp):
    x = rows(5)
    status, body = h.http("POST", f"{served.url}/predict", {"inputs": x})
    assert status == 200, body
    np.testing.assert_allclose(body["predictions"], mlp.expected(x), rtol=1e-5, atol=1e-6)
    records = [dict(zip(h.features, r, strict=True)) | {"customer_id": "c-1"} for r in x]
    status, by_name = h.http("POST", f"{served.url}/predict", {"records": records})
    assert status == 200
    np.testing.assert_allclose(by_name["predictions"], body["predictions"], rtol=1e-6)


def test_v2_infer_json(served, h, mlp):
    x = rows(3, seed=1)
    request = {
        "id": "abc",
        "inputs": [
            {"name": "input", "shape": [3, 20], "datatype": "FP32", "data": [v for r in x for v in r]}
        ],
    }
    status, body = h.http("POST", f"{served.url}/v2/models/mlp/infer", request)
    assert status == 200, body
    assert body["id"] == "abc" and body["model_name"] == "mlp"
    out = body["outputs"][0]
    assert out["name"] == "probability" and out["shape"] == [3, 1] and out["datatype"] == "FP32"
    np.testing.assert_allclose(out["data"], mlp.expected(x).ravel(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("path", "raw", "status", "message"),
    [
        ("/predict", b'{"inputs": [[1, 2]]}', 400, "shape [rows, 20]"),
        ("/predict", b'{"inputs": [[' + b"1," * 19 + b'"x"]]}', 400, "strings"),
        ("/predict", b'{"inputs": [[' + b"1," * 19 + b"NaN]]}", 400, "finite|not valid JSON"),
        ("/predict", b'{"records": [{"x0": 1}]}', 400, "missing feature 'x1'"),
        ("/predict", b"[[[", 400, "not valid JSON"),
        ("/predict", json.dumps({"inputs": [[1.0] * 20] * 257}).encode(), 413, "rows"),
        ("/predict", b" " * 200_001, 413, "exceeds the limit"),
        (
            "/v2/models/mlp/infer",
            b'{"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}',
            400,
            "shape",
        ),
        ("/v2/models/nope/infer", b'{"inputs": []}', 404, "unknown model"),
    ],
)
def test_bad_requests_get_4xx_with_a_message(served, h, path, raw, status, message):
    got, body = h.http("POST", f"{served.url}{path}", raw=raw, headers={"Content-Type": "application/json"})
    assert got == status, body
    assert any(m in body["error"] for m in message.split("|"))


def test_concurrent_requests_are_answered_separately_and_each_row_is_inferred_once(h, mlp, start_server):
    # No cache, so every row goes through the batcher. How requests coalesce depends on how they arrive
    # (tests/serving/test_units.py proves the packing deterministically); here every row must be inferred
    # exactly once and its result must come back to the request that sent it.
    server = start_server("--model", str(mlp.path), "--name", "mlp", "--no-cache")
    inputs = [rows(1 + i % 4, seed=100 + i) for i in range(96)]

    def call(x):
        return h.http("POST", f"{server.url}/predict", {"inputs": x})

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(call, inputs))
    for x, (status, body) in zip(inputs, results, strict=True):
        assert status == 200
        np.testing.assert_allclose(body["predictions"], mlp.expected(x), rtol=1e-5, atol=1e-6)
    assert h.metric(server.url, "mlspec_batch_size_rows_sum") == sum(len(x) for x in inputs)


def test_cache_hits_on_a_repeated_input(served, h, redis_server):
    x = rows(2, seed=7)
    hits = h.metric(served.url, "mlspec_cache_hits_total")
    keys = h.redis_keys(redis_server)
    first = h.http("POST", f"{served.url}/predict", {"inputs": x})[1]
    # the cache write happens after the response
    h.wait_until(lambda: h.redis_keys(redis_server) > keys, "the cache write")
    second = h.http("POST", f"{served.url}/predict", {"inputs": [[float(v) for v in r] for r in x]})[1]
    assert second["predictions"] == first["predictions"]
    assert h.metric(served.url, "mlspec_cache_hits_total") == hits + 1


def test_metrics_expose_latency_codes_batches_and_version(served, h):
    # both answers here: the session's server may have answered nothing else in this worker yet
    assert h.http("POST", f"{served.url}/predict", {"inputs": rows(2, seed=11)})[0] == 200
    h.http("POST", f"{served.url}/predict", raw=b"{}")
    _, text = h.http("GET", f"{served.url}/metrics")
    assert 'mlspec_request_duration_seconds_bucket{le="0.1",route="predict"}' in text
    assert 'mlspec_requests_total{code="200",route="predict"}' in text
    assert 'mlspec_requests_total{code="400",route="predict"}' in text
    assert "mlspec_batch_size_rows_bucket" in text
    assert 'mlspec_model_info{model="mlp",version="' in text
    assert "mlspec_cache_misses_total" in text and "mlspec_cache_errors_total 0.0" in text


def _logged(log_dir, request_id: str, timeout: float = 10.0):
    """The Parquet log rows of one request, once the server has closed the file holding them."""
    import pyarrow.parquet as pq

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        for path in log_dir.rglob("*.parquet"):
            table = pq.read_table(path).to_pandas()
            rows = table[table["request_id"] == request_id]
            if len(rows):
                return path, rows
    raise AssertionError(f"request {request_id} not in the prediction log after {timeout}s")


def test_prediction_log_is_written_in_the_monitoring_format(served, h):
    h.http("POST", f"{served.url}/predict", {"inputs": rows(2, seed=9)}, headers={"X-Request-Id": "req-42"})
    h.http(
        "POST",
        f"{served.url}/predict",
        {"inputs": rows(1, seed=8)},
        headers={"X-Request-Id": "req-43", "X-Mlspec-Source": "loadtest"},
    )
    path, found = _logged(served.log_dir, "req-42")
    assert path.parent.name.startswith("hour=") and path.parent.parent.name.startswith("date=")
    assert found["row"].tolist() == [0, 1]
    assert list(found.columns) == [
        "ts",
        "request_id",
        "model_version",
        "variant",
        "source",
        "row",
        *h.features,
        "outputs",
    ]
    assert found["source"].tolist() == ["live", "live"] and set(found["variant"]) == {"champion"}
    np.testing.assert_allclose(found[h.features].to_numpy(), rows(2, seed=9), rtol=1e-6)
    assert all(len(o) == 1 for o in found["outputs"]) and found["model_version"].iloc[0]
    _, synthetic = _logged(served.log_dir, "req-43")
    assert synthetic["source"].tolist() == ["loadtest"]  # the header marks synthetic traffic


def test_tritonclient_http_client_gets_correct_outputs(served, mlp):
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url=served.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("mlp")
    assert client.get_model_metadata("mlp")["inputs"][0]["shape"] == [-1, 20]
    x = np.asarray(rows(4, seed=3), dtype=np.float32)
    for binary in (True, False):
        tensor = httpclient.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=binary)
        output = httpclient.InferRequestedOutput("probability", binary_data=binary)
        result = client.infer("mlp", [tensor], outputs=[output])
        np.testing.assert_allclose(result.as_numpy("probability"), mlp.expected(x), rtol=1e-5, atol=1e-6)
    client.close()


def _loadtest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlspec", "loadtest", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_loadtest_meets_the_churn_slo(served, churn_spec_path):
    done = _loadtest(
        served.url,
        "--spec",
        str(churn_spec_path),
        "--duration",
        "1.5s",
        "--concurrency",
        "4",
        "--model",
        "mlp",
    )
    assert done.returncode == 0, done.stderr
    assert "p99" in done.stdout and "SLO met" in done.stdout


def test_loadtest_traffic_is_logged_as_synthetic(served):
    import pyarrow.parquet as pq

    done = _loadtest(
        served.url,
        "--spec",
        str(ROOT / "specs" / "churn.yaml"),
        "--duration",
        "1s",
        "--max-requests",
        "20",
        "--model",
        "mlp",
    )
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 10
    sources: set[str] = set()
    while time.monotonic() < deadline and "loadtest" not in sources:
        time.sleep(0.2)
        for path in served.log_dir.rglob("*.parquet"):
            sources |= set(pq.read_table(path, columns=["source"]).column("source").to_pylist())
    assert "loadtest" in sources  # `mlspec loadtest` marks its requests with x-mlspec-source


def test_loadtest_fails_when_the_slo_is_missed(served, churn_spec_path, tmp_path):
    strict = tmp_path / "strict.yaml"
    strict.write_text(churn_spec_path.read_text().replace("latency_p99_ms: 200", "latency_p99_ms: 0.001"))
    done = _loadtest(served.url, "--spec", str(strict), "--duration", "1s", "--rps", "50", "--model", "mlp")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "SLO missed: 100.00% of requests took longer than" in done.stderr


def test_loadtest_refuses_non_loopback_hosts(churn_spec_path):
    done = _loadtest("http://10.1.2.3:8080", "--spec", str(churn_spec_path), "--duration", "1s")
    assert done.returncode == 2
    assert "loopback" in done.stderr
