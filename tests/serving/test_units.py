"""Pure pieces of the server: decoding, validation, cache keys, buckets, CPU limits, log records, batching."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import numpy as np
import pytest

from mlspec.serving.batcher import MicroBatcher
from mlspec.serving.cache import cache_key
from mlspec.serving.config import from_ir
from mlspec.serving.loadtest import LoadResult, require_loopback, slo_violations
from mlspec.serving.metrics import Metrics
from mlspec.serving.model import choose_providers, load_onnx, parse_models_uri
from mlspec.serving.protocol import BadRequest, V2Request, decode_predict
from mlspec.serving.resources import cpu_limit


@pytest.fixture(scope="module")
def model(mlp):
    return load_onnx(mlp.path, name="mlp", version="1")


def test_model_reads_feature_names_and_shape_from_onnx_metadata(model):
    assert model.n_features == 20
    assert model.features == [f"x{i}" for i in range(20)]
    assert model.metadata()["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 20]}]


def test_records_and_rows_decode_to_the_same_matrix(model):
    rows = [[float(i + j) for i in range(20)] for j in range(3)]
    records = [{f"x{i}": v for i, v in enumerate(row)} | {"customer": "c1"} for row in rows]
    a = decode_predict(json.dumps({"inputs": rows}).encode(), model, 100)
    b = decode_predict(json.dumps({"records": records}).encode(), model, 100)
    assert a.dtype == np.float32 and a.shape == (3, 20)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b'{"rows": []}', 400, '"inputs"'),
        (b'{"inputs": [[1, 2, 3]]}', 400, "shape [rows, 20]"),
        (json.dumps({"inputs": [[1] * 20, [1] * 19]}).encode(), 400, "rectangular"),
        (json.dumps({"inputs": [["a"] * 20]}).encode(), 400, "strings"),
        (json.dumps({"inputs": [[None] * 20]}).encode(), 400, "null"),
        (json.dumps({"inputs": [[True] * 20]}).encode(), 400, "booleans"),
        (b'{"inputs": [[' + b",".join([b"1"] * 19) + b", NaN]]}", 400, "finite|not valid JSON"),
        (json.dumps({"inputs": [[1e300] * 20]}).encode(), 400, "finite"),
        (json.dumps({"inputs": []}).encode(), 400, "shape"),
        (json.dumps({"records": [{"x0": 1}]}).encode(), 400, "missing feature 'x1'"),
        (json.dumps({"inputs": [[1] * 20] * 11}).encode(), 413, "limit of 10 rows"),
    ],
)
def test_bad_inputs_are_client_errors_with_a_message(model, body, status, message):
    with pytest.raises(BadRequest) as info:
        decode_predict(body, model, 10)
    assert info.value.status == status
    assert any(m in info.value.message for m in message.split("|"))


def test_v2_binary_input_and_requested_binary_output(model):
    x = np.arange(40, dtype=np.float32).reshape(2, 20)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [2, 20],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ],
            "outputs": [{"name": "probability", "parameters": {"binary_data": True}}],
        }
    ).encode()
    request = V2Request(header + x.tobytes(), str(len(header)), model, 100)
    np.testing.assert_array_equal(request.x, x)
    out = [np.array([[0.25], [0.75]], dtype=np.float32)]
    body, json_length = request.encode(model, "r1", out)
    meta = json.loads(body[:json_length])
    assert meta["outputs"][0]["parameters"]["binary_data_size"] == 8
    np.testing.assert_array_equal(np.frombuffer(body[json_length:], dtype=np.float32), [0.25, 0.75])


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        ({"name": "other", "shape": [1, 20], "datatype": "FP32", "data": [0] * 20}, "unknown input"),
        ({"name": "input", "shape": [1, 20], "datatype": "BYTES", "data": ["a"] * 20}, "datatype"),
        ({"name": "input", "shape": [2, 20], "datatype": "FP32", "data": [0] * 20}, "needs 40"),
        ({"name": "input", "shape": [1, 20], "datatype": "FP32"}, "neither data"),
    ],
)
def test_v2_bad_tensors_are_client_errors(model, tensor, message):
    with pytest.raises(BadRequest, match=message):
        V2Request(json.dumps({"inputs": [tensor]}).encode(), None, model, 100)


def test_nan_in_binary_v2_data_is_rejected(model):
    x = np.zeros((1, 20), dtype=np.float32)
    x[0, 3] = np.nan
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [1, 20],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ]
        }
    ).encode()
    with pytest.raises(BadRequest, match="finite numbers: row 0, column 'x3'"):
        V2Request(header + x.tobytes(), str(len(header)), model, 10)


def test_cache_key_is_canonical_and_versioned():
    a = np.array([[1, 2.0]], dtype=np.float32)
    b = np.asarray(json.loads("[[1.0, 2]]"), dtype=np.float32)
    assert cache_key("m", "1", a) == cache_key("m", "1", b)
    assert cache_key("m", "1", a) != cache_key("m", "2", a)
    assert cache_key("m", "1", a) != cache_key("m", "1", a.reshape(2, 1))


def test_the_server_measures_with_the_ir_slo_buckets(churn_ir):
    config = from_ir(churn_ir)
    slo = churn_ir.serving.slo
    assert config.latency_buckets == slo.histogram_buckets_seconds
    # the objective (200 ms) and the rollback limit (250 ms) are exact bucket boundaries
    assert {0.2, 0.25} <= set(config.latency_buckets)
    assert slo.objective.latency_bucket_seconds == 0.2 and slo.rollback.max_latency_bucket_seconds == 0.25
    assert config.max_batch_size == churn_ir.serving.max_batch_size
    assert config.cache_ttl_seconds == churn_ir.serving.cache.ttl_seconds


def test_cpu_limit_follows_the_cgroup_quota(tmp_path):
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    assert cpu_limit(str(tmp_path)) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpu_limit(str(tmp_path)) >= 1


def test_gpu_request_without_cuda_falls_back_to_cpu_with_a_warning(caplog):
    import onnxruntime as ort

    with caplog.at_level(logging.WARNING, "mlspec.serving"):
        providers = choose_providers("gpu")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert providers[0] == "CUDAExecutionProvider"
    else:
        assert providers == ["CPUExecutionProvider"]
        assert "serving on CPU" in caplog.text


def test_models_uri_forms():
    assert parse_models_uri("models:/churn@champion") == ("churn", "champion", None)
    assert parse_models_uri("models:/churn/3") == ("churn", None, "3")


def test_loopback_only_and_slo_judgement(churn_ir):
    require_loopback("127.0.0.1")
    require_loopback("localhost")
    with pytest.raises(ValueError, match="loopback"):
        require_loopback("10.1.2.3")
    policy = churn_ir.serving.slo  # p99 <= 200 ms, 99.9% available, 5xx are errors
    # 1% slower than the bucket is exactly what a p99 allows; a 4xx is the client's error, not the server's
    result = LoadResult(latencies_s=[0.001] * 999 + [0.5], statuses={"200": 999, "400": 1}, elapsed_s=1)
    assert slo_violations(result, policy) == []
    assert result.errors(policy.error_status_classes) == 0
    result = LoadResult(latencies_s=[0.001] * 979 + [0.3] * 21, statuses={"200": 1000}, elapsed_s=1)
    assert slo_violations(result, policy) == [
        "2.10% of requests took longer than 200 ms; the p99 objective allows 1.00%"
    ]
    result = LoadResult(
        latencies_s=[0.001] * 1000, statuses={"200": 998, "503": 1, "ConnectionResetError": 1}
    )
    assert result.errors(policy.error_status_classes) == 2
    assert slo_violations(result, policy) == ["availability 99.800% is below the SLO of 99.9%"]


def test_batcher_sheds_load_beyond_its_bound(model):
    from mlspec.serving.batcher import Overloaded

    async def scenario():
        batcher = MicroBatcher(64, 0.0, Metrics([0.1], 64), max_pending_rows=10)
        batcher.start()
        first = batcher.submit(model, np.zeros((8, 20), np.float32))
        with pytest.raises(Overloaded):
            batcher.submit(model, np.zeros((3, 20), np.float32))
        await first
        await asyncio.sleep(0)
        assert batcher.pending_rows == 0
        await batcher.submit(model, np.zeros((10, 20), np.float32))
        await batcher.stop()

    asyncio.run(scenario())


def test_batcher_times_inference_by_cpu_so_a_busy_event_loop_does_not_keep_it_on_the_thread(model):
    """A microsecond model that once ran on the inference thread must come back inline. Timed by the wall clock,
    each run on the thread also counted its wait for the GIL held by the busy event loop (Python takes it back
    after 5 ms), so the estimate never fell and the server stayed on the thread, at half the throughput."""
    from mlspec.serving.batcher import INLINE_BELOW_S

    async def scenario():
        batcher = MicroBatcher(64, 0.0, Metrics([0.1], 64))
        batcher.start()
        batcher._run_ewma_s = (
            2 * INLINE_BELOW_S
        )  # as if the model had been slow: its batches start on the thread
        x = np.zeros((1, 20), np.float32)
        for _ in range(100):
            future = batcher.submit(model, x)
            await asyncio.sleep(0)  # the worker hands the batch to the inference thread
            busy_until = time.perf_counter() + 0.012
            while time.perf_counter() < busy_until:  # the event loop serving other requests, holding the GIL
                pass
            assert (await future)[0].shape == (1, 1)
        await batcher.stop()
        return batcher._run_ewma_s

    estimate = asyncio.run(scenario())
    assert estimate < INLINE_BELOW_S, f"a 1-row batch still estimated at {estimate * 1e6:.0f} us"


def test_app_is_not_ready_before_the_model_is_loaded(mlp):
    from mlspec.serving.app import ServingApp
    from mlspec.serving.config import ServerConfig

    app = ServingApp(ServerConfig(model_uri=str(mlp.path), model_name="mlp"))
    sent: list[dict] = []

    async def call(method: str, path: str) -> int:
        async def receive():
            return {"type": "http.request", "body": b'{"inputs": [[0]]}', "more_body": False}

        async def send(message):
            sent.append(message)

        await app({"type": "http", "method": method, "path": path, "headers": []}, receive, send)
        return next(m["status"] for m in reversed(sent) if m["type"] == "http.response.start")

    async def scenario():
        assert await call("GET", "/v2/health/live") == 200
        assert await call("GET", "/v2/health/ready") == 503
        assert await call("GET", "/v2/models/mlp/ready") == 503
        assert await call("POST", "/predict") == 503

    asyncio.run(scenario())


def test_batcher_coalesces_concurrent_requests_and_keeps_rows_apart(model, mlp):
    async def scenario():
        batcher = MicroBatcher(64, 0.002, Metrics([0.1], 64))
        batcher.start()
        xs = [np.full((1 + i % 3, 20), i / 10, dtype=np.float32) for i in range(40)]
        results = await asyncio.gather(*(batcher.submit(model, x) for x in xs))
        await batcher.stop()
        return xs, results, batcher.metrics.batch_size.collect()[0].samples

    xs, results, samples = asyncio.run(scenario())
    for x, out in zip(xs, results, strict=True):
        np.testing.assert_allclose(out[0], mlp.expected(x), rtol=1e-5, atol=1e-6)
    count = next(s.value for s in samples if s.name.endswith("_count"))
    total = next(s.value for s in samples if s.name.endswith("_sum"))
    assert total == sum(len(x) for x in xs)
    # every request was queued before the worker ran: requests are packed in order, up to 64 rows a batch
    batches, rows = 1, 0
    for x in xs:
        if rows + len(x) > 64:
            batches, rows = batches + 1, 0
        rows += len(x)
    assert count == batches == 2


def test_records_name_categories_by_value(model):
    import dataclasses

    # the training bundle lists x0's values; records may name them, the model gets the index (-1: unseen)
    categorical = dataclasses.replace(model, categories={"x0": ["month-to-month", "one-year", "two-year"]})
    base = {f"x{i}": 1.0 for i in range(1, 20)}
    records = [
        base | {"x0": "one-year"},
        base | {"x0": "two-year"},
        base | {"x0": "weekly"},
        base | {"x0": 0},
    ]
    matrix = decode_predict(json.dumps({"records": records}).encode(), categorical, 100)
    assert matrix[:, 0].tolist() == [1.0, 2.0, -1.0, 0.0]
    assert categorical.metadata()["parameters"]["categories"] == {
        "x0": ["month-to-month", "one-year", "two-year"]
    }
    with pytest.raises(BadRequest, match="takes one of"):
        decode_predict(json.dumps({"records": [base | {"x0": [1]}]}).encode(), categorical, 100)


def test_batcher_hands_answered_batches_to_the_log_together(model, monkeypatch):
    """Batches are held and handed over in one call: when LOG_EVERY_BATCHES have been answered, LOG_WITHIN_S after
    the first when traffic stops, and on stop; each logged request once, in row order, sampled-out ones never."""
    from mlspec.serving import batcher as batching
    from mlspec.serving.batcher import LOG_EVERY_BATCHES

    LOG_WITHIN_S = 0.3  # longer than any stall of a busy test machine between two steps below
    monkeypatch.setattr(batching, "LOG_WITHIN_S", LOG_WITHIN_S)
    handed: list[list] = []

    async def scenario():
        batcher = MicroBatcher(64, 0.0, Metrics([0.1], 64))
        batcher.on_batches = handed.append
        batcher.start()
        xs = [np.full((1 + i % 3, 20), i, dtype=np.float32) for i in range(6)]
        logs = [(f"r{i}", "live") if i % 2 == 0 else None for i in range(6)]  # odd ones sampled out
        await asyncio.gather(*(batcher.submit(model, x, log) for x, log in zip(xs, logs, strict=True)))
        assert handed == []  # held...
        await asyncio.sleep(LOG_WITHIN_S * 3)
        assert len(handed) == 1  # ...until traffic stopped for LOG_WITHIN_S
        (first,) = handed
        assert [b.ids for b in first] == [["r0"], ["r2"], ["r4"]]
        for b, i in zip(first, (0, 2, 4), strict=True):
            np.testing.assert_array_equal(b.inputs, xs[i])
            assert b.rows == [len(xs[i])] and b.sources == ["live"] and b.model_version == "1"
        for i in range(LOG_EVERY_BATCHES + 3):  # one request a batch
            await batcher.submit(model, xs[0], (f"s{i}", "loadtest"))
            await asyncio.sleep(0)
        assert [len(h) for h in handed] == [3, LOG_EVERY_BATCHES]  # without waiting for the timer
        await batcher.stop()
        assert [len(h) for h in handed] == [3, LOG_EVERY_BATCHES, 3]
        assert [i for h in handed[1:] for b in h for i in b.ids] == [
            f"s{i}" for i in range(LOG_EVERY_BATCHES + 3)
        ]

    asyncio.run(scenario())
