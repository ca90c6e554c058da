"""The kubernetes sink against the Kubernetes client's REST contract, on a server on 127.0.0.1.

No Kubernetes API server runs here: the fake below answers the requests the real client library sends, with
the shapes of batch/v1, and records them. That a real API server accepts them is the limit of this proof.
(The kubeflow sink's proof is backends/kubeflow/tests/test_kfp_loop.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import recording_api

from mlspec import contracts
from mlspec.runtime import triggers

pytestmark = [pytest.mark.engine, pytest.mark.clock]

NOW = pd.Timestamp("2025-07-01T12:00:00Z")


class Api:
    """A Kubernetes API stand-in: the routes a test sets, and every request it was sent."""

    def __init__(self) -> None:
        self.url = ""
        self.routes: dict = {}
        self.seen: list[dict] = []

    def answer(self, method: str, path: str, query: dict, body) -> tuple[int, object]:
        status, reply = self.routes.get((method, path), (404, {"message": "not found"}))
        return status, reply(body) if callable(reply) else reply


@pytest.fixture()
def api():
    fake = Api()
    with recording_api.serve(fake.answer) as (fake.url, fake.seen):
        yield fake


def _decision(ir, tmp_path: Path) -> dict:
    report = {"rows": 5000, "drift": {"threshold": 0.2, "features": {"a": {"score": 0.9, "drifted": True}}}}
    return triggers.decide(ir, report, now=NOW, state_path=str(tmp_path / "state.json"))


def _retrain_template(text: str) -> dict:
    """The CronJob the kubernetes backend compiles for a loop Kubernetes owns."""
    import yaml
    from mlspec_kubernetes import KubernetesBackend

    import mlspec
    from mlspec.backends import EmitContext

    ir = mlspec.lower(mlspec.loads(text, "specs/churn.yaml"))
    files = {a.path: a.content for a in KubernetesBackend().emit(ir, EmitContext())}
    return ir, yaml.safe_load(files["cronjob-churn-retrain.yaml"])


def test_kubernetes_sink_starts_a_job_from_the_retrain_template(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = Path(__file__).resolve().parents[2]
    text = (
        (root / "specs" / "churn.yaml")
        .read_text()
        .replace(
            "targets: [kubeflow, airflow, terraform, cloudformation, kubernetes, container, ci]",
            "targets: [terraform, kubernetes]",
        )
    )
    ir, cron = _retrain_template(text)
    assert ir.retraining.sink == "kubernetes"
    cron["metadata"]["uid"] = "uid-123"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": api.url}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))  # not in a pod: the sink falls back to the kubeconfig
    base = "/apis/batch/v1/namespaces/churn"
    api.routes = {
        ("GET", f"{base}/cronjobs/churn-retrain"): (200, cron),
        ("POST", f"{base}/jobs"): (
            201,
            lambda body: {
                **body,
                "metadata": {**body["metadata"], "name": body["metadata"]["generateName"] + "x1"},
            },
        ),
    }
    sent = triggers.send(ir, _decision(ir, tmp_path), sink="kubernetes", now=NOW)
    assert sent == {
        "sent": True,
        "sink": "kubernetes",
        "job": "churn-retrain-x1",
        "namespace": "churn",
        "from": "churn-retrain",
    }
    job = next(r for r in api.seen if r["method"] == "POST")["body"]
    assert job["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": "churn-retrain",
            "uid": "uid-123",
            "controller": True,
        }
    ]
    template = cron["spec"]["jobTemplate"]["spec"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["run", "/etc/mlspec/ir.json"] and container["image"] == ir.images["runtime"]
    assert {"name": contracts.RETRAIN_REASON_ENV, "value": "drift-1"} in container["env"]
    assert (
        job["spec"]["template"]["spec"]["serviceAccountName"]
        == template["template"]["spec"]["serviceAccountName"]
    )
    assert job["spec"]["activeDeadlineSeconds"] == template["activeDeadlineSeconds"]
