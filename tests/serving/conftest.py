"""Fixtures for the model server tests: small real ONNX models and real server processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlspec.serving.demo import mlp_reference, write_mlp

N_FEATURES = 20
FEATURES = [f"x{i}" for i in range(N_FEATURES)]
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


class Model:
    def __init__(self, path: Path, weights: list) -> None:
        self.path = path
        self.weights = weights

    def expected(self, rows: list[list[float]] | np.ndarray) -> np.ndarray:
        return mlp_reference(np.asarray(rows, dtype=np.float32), self.weights)


@pytest.fixture(scope="session")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> Model:
    path = tmp_path_factory.mktemp("models") / "mlp.onnx"
    return Model(path, write_mlp(path, N_FEATURES, hidden=(16, 8), seed=1, features=FEATURES))


@pytest.fixture(scope="session")
def mlp_v2(tmp_path_factory: pytest.TempPathFactory) -> Model:
    path = tmp_path_factory.mktemp("models-v2") / "mlp.onnx"
    return Model(path, write_mlp(path, N_FEATURES, hidden=(16, 8), seed=2, features=FEATURES))


def http(
    method: str,
    url: str,
    body: Any = None,
    raw: bytes | None = None,
    timeout: float = 10.0,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload.decode()


def metric(url: str, name: str, labels: str = "") -> float:
    """The value of one sample in the server's /metrics text, 0 when absent."""
    _, text = http("GET", f"{url}/metrics")
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + (f"{{{labels}" if labels else "")) and not line.startswith("#"):
            head, value = line.rsplit(" ", 1)
            if head == name or head.startswith(name + "{"):
                total += float(value)
    return total


class Server:
    def __init__(self, proc: subprocess.Popen, url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def output(self) -> str:
        return self.log.read_text()


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if http("GET", f"{url}/v2/health/ready", timeout=1)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"server not ready after {timeout}s:\n{log.read_text()}")


def launch(
    log_dir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    ready: bool = True,
    preexec_fn: Callable[[], None] | None = None,
) -> Server:
    """Start `mlspec serve ARGS` on a free port and (by default) wait until it is ready."""
    port = free_port()
    log = log_dir / f"server-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlspec", "serve", *args, "--host", "127.0.0.1", "--port", str(port)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=cwd or ROOT,
        env={**os.environ, **(env or {})},
        preexec_fn=preexec_fn,
    )
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    if ready:
        try:
            wait_ready(server.url, proc, log)
        except BaseException:
            stop(proc)
            raise
    return server


@pytest.fixture()
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """launch(), with every started server stopped at teardown."""
    started: list[Server] = []

    def start(*args: str, **kwargs: Any) -> Server:
        server = launch(tmp_path, *args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        stop(server.proc)


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 15.0, every: float = 0.05) -> Any:
    """Poll `condition` until it returns something truthy (returned); fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def redis_keys(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.dbsize())
    finally:
        client.close()


@pytest.fixture(scope="session")
def h():
    """Helpers for test modules (importlib import mode does not let tests import conftest)."""
    import types

    return types.SimpleNamespace(
        http=http,
        metric=metric,
        features=FEATURES,
        free_port=free_port,
        stop=stop,
        wait_ready=wait_ready,
        launch=launch,
        wait_until=wait_until,
        redis_keys=redis_keys,
    )
