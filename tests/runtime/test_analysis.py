"""The rollout analysis on a real MLflow registry and prediction logs written by the server's PredictionLogger:
shadow (agreement, score distance, the shadow server's metrics), canary (SLO breach), a-b (significance test);
`--apply` promotes or rejects and records the transition."""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlspec import contracts
from mlspec.runtime import analysis, registry

pytestmark = pytest.mark.clock

NOW = pd.Timestamp("2025-07-01T12:00:00Z")
STARTED = NOW - pd.Timedelta(hours=2)  # the challenger's rollout began two hours ago
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "contract"]


def ir_for(churn_ir, rollout: dict, tmp: Path):
    """churn's IR with another rollout strategy, relowered from the spec so that the analysis is decided."""
    import io

    from ruamel.yaml import YAML

    import mlspec

    rt = YAML()
    data = rt.load((Path(__file__).resolve().parents[2] / "specs" / "churn.yaml").read_text())
    data["serving"]["rollout"] = rollout
    data["serving"]["prediction_log"] = str(tmp / "log")
    buf = io.StringIO()
    rt.dump(data, buf)
    return mlspec.lower(mlspec.loads(buf.getvalue(), "specs/churn.yaml"))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry with versions 1 and 2 of churn (built once; each test copies the file)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("analysis") / "mlflow.db"
    uri = f"sqlite:///{path}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("churn")
    for _ in range(2):
        client.create_model_version("churn", source="file:///nowhere/model")
    return path


@pytest.fixture()
def registry_with_a_challenger(seeded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Version 1 the champion, version 2 the challenger whose rollout started at STARTED."""
    shutil.copy(seeded, tmp_path / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)

    def start(ir, kind: str) -> None:
        registry.move_champion(ir, "1", action="promote", by="test")
        c = registry.client(ir)
        c.set_registered_model_alias("churn", "challenger", "2")
        monkeypatch.setenv("MLSPEC_NOW", STARTED.isoformat())
        registry.start_rollout(ir, "2", kind=kind, by="mlspec pipeline", reason="beats the champion")
        monkeypatch.setenv("MLSPEC_NOW", NOW.isoformat())

    return start


def log(base: Path, variant: str, version: str, outputs: np.ndarray, ids: list[str], source: str = "live"):
    """Predictions exactly as the server logs them (mlspec.serving.predlog), at times inside the rollout."""
    from mlspec.serving.metrics import Metrics
    from mlspec.serving.predlog import PredictionLogger

    times = list(np.linspace(STARTED.timestamp() + 60, NOW.timestamp() - 60, len(ids)))

    def clock() -> float:  # each request a little later; the file names read it too
        return times.pop(0) if len(times) > 1 else times[0]

    logger = PredictionLogger(str(base), 1.0, Metrics([0.1], 8), variant=variant, rotate_s=3600, clock=clock)
    rng = np.random.default_rng(0)
    for rid, out in zip(ids, outputs, strict=True):
        x = rng.random((1, len(FEATURES)), dtype=np.float32)
        logger.submit(rid, version, FEATURES, x, [out.reshape(1, -1).astype(np.float32)], source)
    logger.close()


def probabilities(p: np.ndarray) -> np.ndarray:
    return np.column_stack([1 - p, p])


class _Metrics(BaseHTTPRequestHandler):
    bodies: dict[str, bytes] = {}

    def do_GET(self) -> None:
        body = type(self).bodies[self.path]
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def metrics_server():
    """Serves /<variant> with the exposition of a real mlspec.serving.metrics.Metrics."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def publish(variant: str, requests: int, errors: int, latency_s: float, ir) -> str:
        from mlspec.serving.metrics import Metrics

        m = Metrics(list(ir.serving.slo.histogram_buckets_seconds), 8)
        for _ in range(requests - errors):
            m.requests.labels(route="infer", code="200").inc()
            m.latency.labels(route="infer").observe(latency_s)
        for _ in range(errors):
            m.requests.labels(route="infer", code="503").inc()
            m.latency.labels(route="infer").observe(latency_s)
        _Metrics.bodies[f"/{variant}"] = m.render()
        return f"http://127.0.0.1:{server.server_address[1]}/{variant}"

    try:
        yield publish
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_shadow_that_agrees_is_promoted_and_recorded(
    churn_ir, registry_with_a_challenger, metrics_server, tmp_path
):
    ir = ir_for(
        churn_ir, {"strategy": "shadow", "step_duration": "1h", "rollback_on": {"error_rate": 0.01}}, tmp_path
    )
    registry_with_a_challenger(ir, "shadow")
    ids = [f"r{i}" for i in range(600)]
    p = np.random.default_rng(1).random(len(ids))
    log(tmp_path / "log", contracts.CHAMPION, "1", probabilities(p), ids)
    log(
        tmp_path / "log", contracts.SHADOW, "2", probabilities(np.clip(p + 0.01, 0, 1)), ids
    )  # nearly the same
    log(tmp_path / "log", contracts.CHAMPION, "1", probabilities(p[:100]), ids[:100], source="loadtest")
    url = metrics_server("shadow", 600, 1, 0.02, ir)
    verdict = analysis.analyze(ir, metrics={"shadow": url})
    assert verdict["status"] == "pass", verdict
    checks = {c["name"]: c for c in verdict["checks"]}
    assert checks["paired_requests"]["value"] == 600  # the load test's requests are not paired
    assert checks["agreement"]["value"] > 0.95 and checks["score_distance"]["value"] < 0.1
    assert checks["error_rate"]["value"] == pytest.approx(1 / 600)
    moved = analysis.apply(ir, verdict)
    assert moved["action"] == "promote" and registry.alias_version(ir, "champion") == "2"
    tags = registry.version_tags(ir, "2")
    assert (
        tags[registry.STAGE_TAG] == "champion"
        and registry.version_tags(ir, "1")[registry.STAGE_TAG] == "retired"
    )
    last = registry.history(ir)[-1]
    assert (last["action"], last["alias"], last["version"], last["previous"]) == (
        "promote",
        "champion",
        "2",
        "1",
    )
    assert last["metrics"]["agreement"] > 0.95 and last["by"] == "mlspec analyze"


def test_shadow_that_disagrees_is_rejected_and_the_champion_stays(
    churn_ir, registry_with_a_challenger, metrics_server, tmp_path
):
    ir = ir_for(churn_ir, {"strategy": "shadow", "step_duration": "1h"}, tmp_path)
    registry_with_a_challenger(ir, "shadow")
    ids = [f"r{i}" for i in range(600)]
    p = np.random.default_rng(1).random(len(ids))
    log(tmp_path / "log", contracts.CHAMPION, "1", probabilities(p), ids)
    log(tmp_path / "log", contracts.SHADOW, "2", probabilities(1 - p), ids)  # predicts the other class
    verdict = analysis.analyze(ir)  # no rollback thresholds: the comparison alone decides
    assert verdict["status"] == "fail" and "same class for 0.0%" in verdict["reason"]
    moved = analysis.apply(ir, verdict, by="alice")
    assert moved["action"] == "reject" and moved["rejected"] == "2"
    assert registry.alias_version(ir, "champion") == "1"
    assert registry.alias_version(ir, "challenger") == "1"  # the shadow Deployment serves the champion again
    assert registry.version_tags(ir, "2")[registry.STAGE_TAG] == "rejected"
    again = analysis.analyze(ir)
    assert again["status"] == "idle"  # nothing left to judge


def test_the_verdict_waits_for_the_duration_and_for_metrics(churn_ir, registry_with_a_challenger, tmp_path):
    ir = ir_for(
        churn_ir, {"strategy": "shadow", "step_duration": "3h", "rollback_on": {"error_rate": 0.01}}, tmp_path
    )
    registry_with_a_challenger(ir, "shadow")
    ids = [f"r{i}" for i in range(600)]
    p = np.random.default_rng(1).random(len(ids))
    log(tmp_path / "log", contracts.CHAMPION, "1", probabilities(p), ids)
    log(tmp_path / "log", contracts.SHADOW, "2", probabilities(p), ids)
    verdict = analysis.analyze(ir)
    assert verdict["status"] == "pending" and "7200s of 10800s" in verdict["reason"]
    later = analysis.analyze(ir, now=NOW + pd.Timedelta(hours=2))
    # the comparison passed, but the shadow's error rate is not measured: it cannot be promoted blind
    assert later["status"] == "pending" and "not measured" in later["reason"]
    assert analysis.apply(ir, later) is None and registry.alias_version(ir, "champion") == "1"


def test_a_canary_breaching_its_slo_fails_at_once(
    churn_ir, registry_with_a_challenger, metrics_server, tmp_path
):
    ir = ir_for(
        churn_ir,
        {
            "strategy": "canary",
            "steps": [10, 100],
            "step_duration": "10h",
            "rollback_on": {"error_rate": 0.01},
        },
        tmp_path,
    )
    registry_with_a_challenger(ir, "slo")
    url = metrics_server("challenger", 1000, 50, 0.01, ir)  # 5% errors against a 1% limit
    verdict = analysis.analyze(ir, metrics={"challenger": url})
    assert verdict["status"] == "fail" and "error rate 0.0500" in verdict["reason"]  # before its 10h
    analysis.apply(ir, verdict)
    assert registry.alias_version(ir, "champion") == "1"


def test_a_b_promotes_only_a_significantly_better_challenger(churn_ir, registry_with_a_challenger, tmp_path):
    ir = ir_for(churn_ir, {"strategy": "a-b", "traffic_split": 50, "experiment_duration": "1h"}, tmp_path)
    assert ir.serving.rollout.analysis.metric == "auc"  # monitoring.performance's metric
    registry_with_a_challenger(ir, "experiment")
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 1200)
    ids = [f"r{i}" for i in range(1200)]
    noisy = np.clip(labels * 0.2 + rng.random(1200) * 0.8, 0, 1)  # weakly informative
    sharp = np.clip(labels * 0.6 + rng.random(1200) * 0.4, 0, 1)  # much better ranking
    champion, challenger = slice(0, 600), slice(600, 1200)
    log(tmp_path / "log", contracts.CHAMPION, "1", probabilities(noisy[champion]), ids[champion])
    log(tmp_path / "log", contracts.CHALLENGER, "2", probabilities(sharp[challenger]), ids[challenger])
    (tmp_path / "log" / "labels").mkdir()
    pd.DataFrame({"request_id": ids, "churned": labels}).to_csv(
        tmp_path / "log" / "labels" / "l.csv", index=False
    )
    verdict = analysis.analyze(ir)
    assert verdict["status"] == "pass", verdict
    test = next(c for c in verdict["checks"] if c["name"] == "experiment")
    assert test["value"] < 0.05
    # the same data with the variants swapped: the challenger is worse, the experiment fails
    log(tmp_path / "log2", contracts.CHAMPION, "1", probabilities(sharp[champion]), ids[champion])
    log(tmp_path / "log2", contracts.CHALLENGER, "2", probabilities(noisy[challenger]), ids[challenger])
    worse = analysis.analyze(ir, log=str(tmp_path / "log2"), labels=str(tmp_path / "log" / "labels"))
    assert worse["status"] == "fail" and "not below 0.05" in worse["reason"]


def test_the_rank_sum_auc_is_sklearns() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    for _ in range(20):
        y = rng.integers(0, 2, 300)
        score = np.round(rng.random(300), 2)  # ties included
        assert analysis._binary_auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
