"""Monitors racing on one trigger state never lose an update and never fire twice (S3 on moto, and a local file).

S3 refuses a conditional write (If-Match with the ETag read, If-None-Match: * for a new object) when another
writer came first; mlspec.runtime.state retries on the newer document. moto implements the conditions, but its
threaded server checks a condition and writes in two steps, so two requests could interleave there, which S3
never does: this test runs moto's application on a single-threaded server, so it tests our protocol, not moto's.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from helpers_core import root_conftest

from mlspec.runtime import state, triggers

pytestmark = [pytest.mark.engine, pytest.mark.clock]
services = root_conftest()

NOW = pd.Timestamp("2025-07-01T12:00:00Z")
MONITORS = 8
LAUNCH_MOTO = (
    "import sys\n"
    "from werkzeug.serving import run_simple\n"
    "from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app\n"
    "run_simple('127.0.0.1', int(sys.argv[1]), DomainDispatcherApplication(create_backend_app), threaded=False)\n"
)


@pytest.fixture(scope="module")
def serial_s3():
    port = services.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH_MOTO, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        services.wait_for_port(port, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        services.stop(proc)


@pytest.fixture()
def bucket(serial_s3: str, monkeypatch: pytest.MonkeyPatch) -> str:
    import boto3

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # pragma: allowlist secret
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": serial_s3,
    }.items():
        monkeypatch.setenv(key, value)
    name = f"state-{services.free_port()}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def _drifted(rows: int = 5000) -> dict:
    return {"rows": rows, "drift": {"threshold": 0.2, "features": {"a": {"score": 0.9, "drifted": True}}}}


def _race(fn, n: int = MONITORS) -> list:
    """fn(i) in n threads released together."""
    start = threading.Barrier(n)

    def run(i: int):
        start.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def _check_one_retraining(churn_ir, uri: str) -> None:
    def monitor(i: int) -> dict:
        decision = triggers.decide(churn_ir, _drifted(), now=NOW, state_path=uri)
        if decision["retrain"]:
            triggers.send(churn_ir, decision, sink="orchestrator", now=NOW)
        return decision

    decisions = _race(monitor)
    fired = [d for d in decisions if d["retrain"]]
    assert len(fired) == 1, decisions  # exactly one monitor claimed the retraining
    assert sum(d["suppressed_triggers"] == ["drift-1"] for d in decisions) == MONITORS - 1
    final = state.read(uri)
    assert final["last_fired"] == NOW.isoformat() and "pending" not in final
    assert [h["event"] for h in final["history"]] == ["sent"]  # recorded once, confirmed once


def _check_no_lost_update(churn_ir, uri: str) -> None:
    # each monitor counts its own new rows (no trigger fires: volume needs 100,000): the counts all add up
    def monitor(i: int) -> dict:
        newest = NOW - pd.Timedelta(minutes=i)
        return triggers.decide(churn_ir, {"rows": 10}, now=NOW, state_path=uri, new_rows=(100 + i, newest))

    assert not any(d["retrain"] for d in _race(monitor))
    final = state.read(uri)
    assert final["volume_rows"] == sum(100 + i for i in range(MONITORS))
    assert final["volume_counted_until"] == NOW.isoformat()


def test_racing_monitors_on_s3_fire_once(churn_ir, bucket: str) -> None:
    _check_one_retraining(churn_ir, f"s3://{bucket}/churn/monitoring/trigger-state.json")


def test_racing_monitors_on_s3_lose_no_update(churn_ir, bucket: str) -> None:
    _check_no_lost_update(churn_ir, f"s3://{bucket}/churn/monitoring/trigger-state.json")


def test_s3_refuses_a_stale_write(bucket: str) -> None:
    """The protocol's premise, against the S3 API: a write conditioned on an old ETag is refused."""
    import boto3
    from botocore.exceptions import ClientError

    s3 = boto3.client("s3")
    s3.put_object(Bucket=bucket, Key="k", Body=b"{}", IfNoneMatch="*")
    etag = s3.get_object(Bucket=bucket, Key="k")["ETag"]
    s3.put_object(Bucket=bucket, Key="k", Body=b'{"a": 1}', IfMatch=etag)
    for condition in ({"IfMatch": etag}, {"IfNoneMatch": "*"}):
        with pytest.raises(ClientError) as refused:
            s3.put_object(Bucket=bucket, Key="k", Body=b'{"a": 2}', **condition)
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_racing_monitors_on_a_local_file(churn_ir, tmp_path: Path) -> None:
    _check_one_retraining(churn_ir, str(tmp_path / "one" / "trigger-state.json"))
    _check_no_lost_update(churn_ir, str(tmp_path / "two" / "trigger-state.json"))


def test_a_scheme_without_conditional_writes_is_refused(tmp_path: Path) -> None:
    with pytest.raises(state.StateError, match="conditional writes"):
        state.update("gs://bucket/state.json", lambda st: None)
