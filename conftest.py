"""Fixtures shared by the core and backend tests: example specs, free ports, and real local services."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
SPECS = ROOT / "specs"
# Every test, and every process a test starts, sees this instant as "now" (mlspec.clock): a Tuesday, two
# days after the example data's newest event. No verdict may depend on the day the suite runs.
PINNED_NOW = "2025-07-01T12:00:00Z"
CLOCK_CHILD = "MLSPEC_CLOCK_CHILD"  # set in the child pytest runs of tests/test_clock_independence.py


def pytest_configure(config: pytest.Config) -> None:
    os.environ["MLSPEC_NOW"] = PINNED_NOW


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A `monday` test runs once, in tests/test_clock_independence.py's child pytest whose wall clock is a
    Monday (the day the suite used to fail): when that test is collected too, this session leaves it to it."""
    if os.environ.get(CLOCK_CHILD) or not any(i.path.name == "test_clock_independence.py" for i in items):
        return
    rerun = [i for i in items if i.get_closest_marker("monday")]
    if rerun:
        config.hook.pytest_deselected(items=rerun)
        items[:] = [i for i in items if not i.get_closest_marker("monday")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def churn_spec_path() -> Path:
    return SPECS / "churn.yaml"


@pytest.fixture(scope="session")
def churn_ir(churn_spec_path: Path):
    import mlspec

    return mlspec.lower(mlspec.load(churn_spec_path))


@pytest.fixture(scope="session")
def moto_process() -> Iterator[str]:
    """One real moto server (S3/EKS/IAM/ECR/...) on 127.0.0.1 per test process; yields its endpoint URL."""
    port = free_port()
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    # AWS managed policies (e.g. AmazonEKSClusterPolicy) exist, so that Terraform can attach them.
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_for_port(port, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.fixture()
def moto_server(moto_process: str) -> str:
    """The moto server, emptied first: tests that share it must not see each other's buckets or stacks
    (several create the example's artifacts bucket, and xdist decides which run in one process)."""
    import urllib.request

    urllib.request.urlopen(
        urllib.request.Request(f"{moto_process}/moto-api/reset", method="POST"), timeout=30
    )
    return moto_process


@pytest.fixture()
def aws_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Fake credentials and endpoints pointing boto3/s3fs at the moto server."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # pragma: allowlist secret
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ENDPOINT_URL_S3": moto_server,
    }.items():
        monkeypatch.setenv(key, value)
    return moto_server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A real redis-server on 127.0.0.1 with persistence off; yields its URL."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (.ci/run installs it from Debian's packages)")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc=proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def tf_cli_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A terraform CLI config that installs providers only from the local filesystem mirror."""
    path = tmp_path_factory.mktemp("tf") / "terraform.rc"
    mirror = os.environ.get("MLSPEC_TF_PLUGIN_MIRROR", "/opt/tf-plugins")
    path.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path = "{mirror}"\n    include = ["registry.terraform.io/*/*"]\n  }}\n'
        '  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }\n}\n'
    )
    return path
