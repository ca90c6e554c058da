"""Every metric the generated Grafana dashboard queries exists: in a real server's /metrics, in what a real monitor
run pushed to a real Pushgateway, among the recording rules of the generated PrometheusRules, or in the metrics
of the platform row that provides it (cAdvisor, DCGM). Prometheus' own promtool parses every query."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import monitor_scenario as scenario
import pytest
import yaml

from mlspec import contracts
from mlspec.backends import EmitContext

ROOT = Path(__file__).resolve().parents[1]
PUSHGATEWAY = shutil.which("prometheus-pushgateway")
PROMTOOL = shutil.which("promtool")
# Grafana's variables, as Grafana would substitute them before the query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$variant": ".*"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def post(url: str, body: dict) -> int:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def wait_for(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited: {log.read_text()}")
        try:
            get(url)
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} not ready: {log.read_text()}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


def sample_names(text: str) -> dict[str, set[str]]:
    """Exposed sample name -> the label names its samples carry."""
    from prometheus_client.parser import text_string_to_metric_families

    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def promql(query: str) -> str:
    """The PromQL Prometheus receives for a dashboard query: Grafana's variables substituted, and the argument of
    Grafana's label_values() (a variable's query)."""
    for variable, value in GRAFANA_VARIABLES.items():
        query = query.replace(variable, value)
    if query.startswith("label_values("):
        query = query[len("label_values(") : query.rindex(",")]
    return query


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, matcher label names) of every vector selector in a PromQL expression."""
    import promql_parser

    expr = promql(expr)
    found: list[tuple[str, set[str]]] = []

    def walk(node) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append((node.name, {m.name for m in node.matchers.matchers}))
            return
        for attr in ("expr", "lhs", "rhs", "param", "vector_selector"):
            child = getattr(node, attr, None)
            if child is not None:
                walk(child)
        for arg in getattr(node, "args", None) or []:
            walk(arg)

    walk(promql_parser.parse(expr))
    return found


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """The churn system with a data_quality trigger: its IR and its Kubernetes output."""
    from mlspec_kubernetes import KubernetesBackend

    tmp = tmp_path_factory.mktemp("dashboard")
    ir = scenario.churn_ir_with_data_quality(tmp)
    artifacts = KubernetesBackend().emit(ir, EmitContext(allow_unsupported=True, spec_path="churn-dq.yaml"))
    objects = [
        doc
        for a in artifacts
        if a.path.endswith(".yaml") and a.path != "kustomization.yaml" and "/" not in a.path
        for doc in yaml.safe_load_all(a.data())
        if doc
    ]
    (cm,) = [o for o in objects if o["metadata"]["name"] == f"{ir.system.name}-dashboard"]
    board = json.loads(next(iter(cm["data"].values())))
    queries = [(p["title"], t["expr"]) for p in board["panels"] for t in p.get("targets", [])]
    queries += [
        ("variable " + v["name"], v["query"]) for v in board["templating"]["list"] if v["type"] == "query"
    ]
    records = {
        rule["record"]
        for o in objects
        if o["kind"] == "PrometheusRule"
        for group in o["spec"]["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    return ir, tmp, queries, records


@pytest.fixture(scope="module")
def server_metrics(system, redis_server) -> dict[str, set[str]]:
    """A real `mlspec serve` with a Redis cache after a few requests, one of them repeated (a cache hit)."""
    from mlspec.serving.demo import write_mlp

    _, tmp, _, _ = system
    model = tmp / "mlp.onnx"
    features = [f"x{i}" for i in range(4)]
    write_mlp(model, 4, hidden=(8,), seed=1, features=features)
    port = free_port()
    log = tmp / "server.log"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "mlspec", "serve", "--model", str(model), "--name", "churn"),
            *("--cache-url", redis_server, "--host", "127.0.0.1", "--port", str(port)),
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}{contracts.HEALTH_READY_PATH}", proc, log)
        for i in range(5):
            assert post(f"{url}/predict", {"inputs": [[float(i), 1.0, 2.0, 3.0]]}) == 200
        assert post(f"{url}/predict", {"inputs": [[0.0, 1.0, 2.0, 3.0]]}) == 200
        return sample_names(get(f"{url}{contracts.METRICS_PATH}"))
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def monitor_metrics(system) -> dict[str, set[str]]:
    """One monitor run over the scenario's broken day, pushing to a real Pushgateway on 127.0.0.1."""
    import os

    from mlspec.runtime import monitor

    if PUSHGATEWAY is None:
        pytest.fail("prometheus-pushgateway is not installed (scripts/setup.sh installs it from Debian)")
    ir, tmp, _, _ = system
    port = free_port()
    log = tmp / "pushgateway.log"
    proc = subprocess.Popen(
        [PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    gateway = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{gateway}/-/ready", proc, log)
        scenario.write_reference(tmp / "run", ir)
        frame = scenario.broken_window()
        ids = scenario.write_log(tmp / "log", frame)
        scenario.write_labels(tmp / "log", frame, ids)
        os.environ[contracts.PUSHGATEWAY_URL_ENV] = gateway
        try:
            monitor.run_monitor(
                ir,
                str(tmp / "run"),
                log=str(tmp / "log"),
                now=scenario.NOW,
                state=str(tmp / "state.json"),
                mlflow=False,
            )
        finally:
            del os.environ[contracts.PUSHGATEWAY_URL_ENV]
        names = sample_names(get(f"{gateway}/metrics"))
    finally:
        stop(proc)
    pushed = {n: labels for n, labels in names.items() if contracts.LABEL_SYSTEM in labels}
    assert all({"job", contracts.LABEL_SYSTEM} <= labels for labels in pushed.values())  # the push's grouping
    return pushed


@pytest.mark.engine
def test_every_dashboard_query_reads_an_exported_metric(system, server_metrics, monitor_metrics) -> None:
    ir, _, queries, records = system
    platform = {m: c.id for c in ir.platform for m in c.metrics}
    used = {"server": set(), "monitor": set(), "recording rule": set(), "platform": set()}
    for title, expr in queries:
        for name, labels in selectors(expr):
            if name in server_metrics:
                used["server"].add(name)
                # labels the server exports, or those the ServiceMonitor's scrape adds
                assert labels <= server_metrics[name] | {"namespace", "job", contracts.LABEL_VARIANT}, (
                    title,
                    name,
                )
            elif name in monitor_metrics:
                used["monitor"].add(name)
                assert labels <= monitor_metrics[name], (title, name, labels)
            elif name in records:
                used["recording rule"].add(name)
            elif name in platform:
                used["platform"].add(name)
            else:
                pytest.fail(f"panel {title!r} queries {name}, which nothing exports")
    assert {
        contracts.REQUESTS_TOTAL,
        f"{contracts.REQUEST_DURATION}_bucket",
        contracts.CACHE_HITS_TOTAL,
    } <= used["server"]
    assert {contracts.FEATURE_DRIFT_SCORE, contracts.FEATURE_NULL_RATE, contracts.MONITOR_LAST_RUN} <= used[
        "monitor"
    ]
    assert used["recording rule"] and used["platform"] == {
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
    }


@pytest.mark.engine
def test_promtool_parses_every_dashboard_query(system, tmp_path) -> None:
    """Prometheus' own parser: each query as the expression of a recording rule, checked by promtool."""
    if PROMTOOL is None:
        pytest.fail("promtool is not installed (scripts/setup.sh installs Debian's prometheus package)")
    _, _, queries, _ = system
    rules = []
    for i, (_, query) in enumerate(queries):
        rules.append({"record": f"dashboard:query_{i}", "expr": promql(query)})
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{len(rules)} rules found" in out.stdout
