"""Failure handling: Redis dying mid-test, and SIGTERM draining requests that are in flight."""

from __future__ import annotations

import io
import json
import shutil
import signal
import socket
import subprocess
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.engine


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One HTTP/1.1 response with a Content-Length: (head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data, b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head, body


def test_server_keeps_serving_uncached_when_redis_goes_down(h, mlp, start_server):
    port = h.free_port()
    redis = subprocess.Popen(
        [
            shutil.which("redis-server"),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        server = start_server(
            "--model", str(mlp.path), "--name", "mlp", "--cache-url", f"redis://127.0.0.1:{port}/0"
        )
        x = np.round(np.random.default_rng(0).uniform(-1, 1, (2, 20)), 3).tolist()
        assert h.http("POST", f"{server.url}/predict", {"inputs": x})[0] == 200
        h.wait_until(lambda: h.redis_keys(f"redis://127.0.0.1:{port}/0") > 0, "the cache write")
        assert h.http("POST", f"{server.url}/predict", {"inputs": x})[0] == 200
        assert h.metric(server.url, "mlspec_cache_hits_total") == 1
    finally:
        h.stop(redis)
    for i in range(20):
        rows = x if i % 2 else [[v + i for v in r] for r in x]
        status, body = h.http("POST", f"{server.url}/predict", {"inputs": rows})
        assert status == 200, body
        np.testing.assert_allclose(body["predictions"], mlp.expected(rows), rtol=1e-5, atol=1e-6)
    assert h.metric(server.url, "mlspec_cache_errors_total") >= 1
    assert "serving uncached" in server.output()


def test_sigterm_drains_in_flight_requests(h, mlp, start_server, tmp_path):
    log_dir = tmp_path / "log"
    server = start_server(
        "--model",
        str(mlp.path),
        "--name",
        "mlp",
        "--prediction-log",
        str(log_dir),
        "--log-flush-interval",
        "600",
    )
    port = int(server.url.rsplit(":", 1)[1])
    inputs = [np.round(np.random.default_rng(i).uniform(-1, 1, (1, 20)), 3).tolist() for i in range(4)]
    socks = []
    for i, x in enumerate(inputs):
        body = json.dumps({"inputs": x}).encode()
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(
            f"POST /predict HTTP/1.1\r\nHost: t\r\nX-Request-Id: drain-{i}\r\nContent-Type: "
            f"application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        socks.append((sock, body))
    # the server has the headers and waits for the bodies: these requests are in flight
    h.wait_until(
        lambda: h.metric(server.url, "mlspec_requests_in_flight") >= len(inputs) + 1, "requests in flight"
    )
    server.proc.send_signal(signal.SIGTERM)

    def refused() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError:
            return True
        return False

    h.wait_until(refused, "the server to stop accepting connections")  # no new connections once draining
    for sock, body in socks:
        sock.sendall(body[10:])
    for (sock, _), x in zip(socks, inputs, strict=True):
        head, payload = read_response(sock)
        sock.close()
        assert head.startswith(b"HTTP/1.1 200"), head
        np.testing.assert_allclose(json.loads(payload)["predictions"], mlp.expected(x), rtol=1e-5, atol=1e-6)
    assert server.proc.wait(timeout=20) == 0
    logged = set()
    for path in log_dir.rglob("*.parquet"):
        logged |= set(pq.read_table(path, columns=["request_id"]).column("request_id").to_pylist())
    assert logged == {f"drain-{i}" for i in range(4)}  # the log is flushed on shutdown
    assert not list(log_dir.rglob(".*.tmp"))  # and every file completed


def test_a_model_that_cannot_load_exits_non_zero_and_is_never_ready(h, start_server, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    server = start_server("--model", str(broken), ready=False)
    assert server.proc.wait(timeout=30) == 1
    assert "cannot load ONNX model" in server.output()


def test_a_stalled_request_body_times_out_with_408(h, mlp, start_server):
    server = start_server("--model", str(mlp.path), "--name", "mlp", "--request-timeout", "0.5")
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b'POST /predict HTTP/1.1\r\nHost: t\r\nContent-Length: 500\r\n\r\n{"inputs": ')
        head, body = read_response(sock)  # head and body may arrive in separate segments
    assert head.startswith(b"HTTP/1.1 408"), head
    assert b"not received within 0.5s" in body
    assert h.http("GET", f"{server.url}/v2/health/ready")[0] == 200


def test_prediction_log_to_s3(h, mlp, start_server, aws_env):
    import boto3

    s3 = boto3.client("s3", endpoint_url=aws_env)
    s3.create_bucket(Bucket="predictions")
    server = start_server(
        "--model",
        str(mlp.path),
        "--name",
        "mlp",
        "--prediction-log",
        "s3://predictions/churn",
        "--log-flush-interval",
        "0.2",
    )
    x = np.round(np.random.default_rng(1).uniform(-1, 1, (3, 20)), 3).tolist()
    assert h.http("POST", f"{server.url}/predict", {"inputs": x}, headers={"X-Request-Id": "s3-1"})[0] == 200
    deadline = time.monotonic() + 15
    keys: list[str] = []
    while time.monotonic() < deadline and not keys:
        time.sleep(0.3)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="predictions").get("Contents", [])]
    assert keys and keys[0].startswith("churn/date=") and "/hour=" in keys[0] and keys[0].endswith(".parquet")
    body = s3.get_object(Bucket="predictions", Key=keys[0])["Body"].read()
    records = pq.read_table(io.BytesIO(body)).to_pandas()
    assert records["request_id"].tolist() == ["s3-1"] * 3
    np.testing.assert_allclose(
        [o[0] for o in records["outputs"]], mlp.expected(x).ravel(), rtol=1e-5, atol=1e-6
    )
