"""The Grafana dashboard: grafana-foundation-sdk's own model reads back exactly what was generated, every line it
draws comes from the IR, the Grafana sidecar and data source agree with it, and its preview opens offline in
headless Chromium."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from k8s_testlib import KUBERNETES_LOOP, VARIANTS

from mlspec.ir import platform as pf

ROOT = Path(__file__).resolve().parents[3]
SCREENSHOT = ROOT / "docs" / "img" / "dashboard-preview.png"


def dashboard_of(objects, ir) -> dict:
    (cm,) = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard")]
    label, value = pf.GRAFANA_DASHBOARD_LABEL
    assert cm["metadata"]["labels"][label] == value
    assert cm["metadata"]["namespace"] == ir.system.namespace
    (text,) = cm["data"].values()
    return json.loads(text)


def panels(board: dict) -> dict[str, dict]:
    return {p["title"]: p for p in board["panels"] if p["type"] != "row"}


def steps(panel: dict) -> list:
    return [s["value"] for s in panel["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])]


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_sdk_model_reads_back_every_key(built, variant) -> None:
    """Dashboard.from_json -> to_json gives the same JSON: no key the model (Grafana 11.6's) does not know, every
    panel type and every query of a kind the SDK has a model for."""
    from grafana_foundation_sdk.cog import runtime
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard, Panel, RowPanel
    from grafana_foundation_sdk.models.prometheus import Dataquery

    register_default_plugins()
    ir, _, objects = built[variant]
    board = dashboard_of(objects, ir)
    model = Dashboard.from_json(board)
    assert json.loads(json.dumps(model, cls=JSONEncoder)) == board
    assert model.uid is not None and len(model.uid) <= 40
    for panel in model.panels or []:
        if isinstance(panel, RowPanel):
            continue
        assert isinstance(panel, Panel) and runtime.panelcfg_config(panel.type_val) is not None, (
            panel.type_val
        )
        assert panel.targets and all(isinstance(t, Dataquery) for t in panel.targets), panel.title
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))


def test_every_line_comes_from_the_ir(built) -> None:
    ir, _, objects = built["blue-green"]  # rollback limits too
    s = ir.serving
    objective, rollback = s.slo.objective, s.slo.rollback
    by = panels(dashboard_of(objects, ir))
    assert steps(by[f"Availability ({objective.window})"]) == [
        None,
        round(objective.availability_percent / 100, 10),
    ]
    factors = sorted({a.factor for a in objective.burn_rate_alerts})
    assert steps(by["Error budget burn rate"])[1:] == factors
    burn_queries = [t["expr"] for t in by["Error budget burn rate"]["targets"]]
    budget = repr(round(objective.error_budget, 10))
    assert all(q.endswith(f" / {budget}") for q in burn_queries)
    assert len(burn_queries) == len(
        {w for a in objective.burn_rate_alerts for w in (a.long_window, a.short_window)}
    )
    assert steps(by["Latency percentiles"])[1:] == [
        objective.latency_bucket_seconds,
        rollback.max_latency_bucket_seconds,
    ]
    assert steps(by["Error ratio"])[1:] == [objective.error_budget, rollback.max_error_rate]
    percentiles = [t["expr"] for t in by["Latency percentiles"]["targets"]]
    assert [q.split("{")[0] for q in percentiles] == [
        f"mlspec:request_duration_seconds:p{p:g}_rate5m".replace(".", "_")
        for p in ir.monitoring.latency_percentiles
    ]
    assert steps(by["Feature drift"]) == [None, ir.monitoring.drift.threshold]
    assert steps(by["Batch size"]) == [None, s.max_batch_size]
    perf = ir.monitoring.performance
    assert steps(by[f"Live {perf.metric}"]) == [None, perf.min]
    assert "Cache hit rate" in by and "GPU utilisation" not in by
    # stats read one value now, not a 30-day range at every step
    assert all(t["instant"] for p in by.values() if p["type"] == "stat" for t in p["targets"])


def test_gpu_serving_adds_dcgm_panels_and_the_exporter(built) -> None:
    ir, folder, objects = built["gpu"]
    by = panels(dashboard_of(objects, ir))
    assert "DCGM_FI_DEV_GPU_UTIL" in by["GPU utilisation"]["targets"][0]["expr"]
    dcgm = ir.component("dcgm-exporter")
    assert dcgm is not None and set(pf.DCGM_METRICS) == set(dcgm.metrics)
    assert (
        "dcgm-exporter"
        in yaml.safe_load((folder / "platform" / "kustomization.yaml").read_text())["resources"]
    )
    assert built["canary"][0].component("dcgm-exporter") is None  # CPU serving: no exporter, no GPU panels


def test_the_shadow_and_challenger_servers_are_on_the_dashboard(built) -> None:
    for variant, job in (("shadow", "churn-server-shadow"), ("a-b", "churn-server-challenger")):
        ir, _, objects = built[variant]
        board = dashboard_of(objects, ir)
        throughput = panels(board)["Throughput"]["targets"][0]["expr"]
        assert job in throughput, (variant, throughput)
        variable = next(v for v in board["templating"]["list"] if v["name"] == "variant")
        assert job in variable["query"]


def test_grafana_is_provisioned_to_load_it(built) -> None:
    """The platform's Grafana: the sidecar selects the ConfigMap's label, the data source is the one the
    dashboard's variable defaults to, and the chart is pinned."""
    ir, folder, objects = built["canary"]
    doc = yaml.safe_load((folder / "platform" / "grafana" / "kustomization.yaml").read_text())
    (chart,) = doc["helmCharts"]
    assert chart["version"] == pf.GRAFANA_CHART_VERSION and chart["repo"] == pf.GRAFANA_CHARTS
    sidecar = chart["valuesInline"]["sidecar"]["dashboards"]
    assert (sidecar["label"], sidecar["labelValue"]) == pf.GRAFANA_DASHBOARD_LABEL
    (source,) = chart["valuesInline"]["datasources"]["datasources.yaml"]["datasources"]
    assert source["url"] == pf.PROMETHEUS_URL
    board = dashboard_of(objects, ir)
    variable = next(v for v in board["templating"]["list"] if v["name"] == "datasource")
    assert variable["current"]["value"] == source["uid"]
    assert "kubectl kustomize --enable-helm platform/grafana" in (folder / "README.md").read_text()


def test_the_monitor_pushes_where_prometheus_scrapes(built) -> None:
    """The CronJob names the Pushgateway the platform installs; its NetworkPolicy lets it reach it."""
    from mlspec import contracts

    ir, folder, objects = built[KUBERNETES_LOOP]  # the monitor CronJob exists where Kubernetes owns the loop
    (cron,) = [
        o for o in objects if o["kind"] == "CronJob" and o["metadata"]["name"] == f"{ir.system.name}-monitor"
    ]
    env = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": contracts.PUSHGATEWAY_URL_ENV, "value": pf.PUSHGATEWAY_URL} in env
    (policy,) = [
        o
        for o in objects
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == f"{ir.system.name}-monitor"
    ]
    ports = [p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])]
    assert pf.PUSHGATEWAY_PORT in ports
    platform = (folder / "platform" / "pushgateway.yaml").read_text()
    monitor = next(d for d in yaml.safe_load_all(platform) if d["kind"] == "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True  # keeps the pushed job and system labels
    assert f"pushgateway.{pf.MONITORING_NAMESPACE}.svc:{pf.PUSHGATEWAY_PORT}" in pf.PUSHGATEWAY_URL


@pytest.mark.engine
def test_the_preview_opens_offline_in_chromium(built, tmp_path) -> None:
    """The committed preview page: every panel with its title and queries, no request but the file itself, no
    console message; the screenshot in docs/ is taken from it."""
    sys.path.insert(0, str(ROOT / "tests"))
    import chromium

    ir, folder, objects = built["canary"]
    board = dashboard_of(objects, ir)
    page_path = folder / "dashboard-preview.html"
    page = chromium.visit(
        page_path,
        "[...document.querySelectorAll('[data-panel]')].map(e => [e.dataset.panel, e.querySelector('h2') ?"
        " e.querySelector('h2').firstChild.textContent.trim() : e.textContent,"
        " [...e.querySelectorAll('pre')].map(q => q.textContent)])",
        width=1600,
    )
    assert page.requests == [page_path.resolve().as_uri()]
    assert page.console == []
    expected = [[p["type"], p["title"], [t["expr"] for t in p.get("targets", [])]] for p in board["panels"]]
    assert page.values == expected
    assert page.screenshot.startswith(b"\x89PNG") and len(page.screenshot) > 50_000
    if os.environ.get("MLSPEC_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT.write_bytes(page.screenshot)
