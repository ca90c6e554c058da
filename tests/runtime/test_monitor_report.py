"""The monitoring report: its numbers are report.json's, it opens offline in Chromium, `mlspec report` writes it."""

from __future__ import annotations

import json
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import monitor_scenario as scenario
import pandas as pd
import pytest
from click.testing import CliRunner

from mlspec.cli import cli
from mlspec.runtime import monitor

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "img" / "monitoring-report.png"


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One monitoring run over the scenario's broken day (drift, nulls, out-of-range, unseen, labels)."""
    tmp = tmp_path_factory.mktemp("report")
    ir = scenario.churn_ir_with_data_quality(tmp)
    reference = scenario.write_reference(tmp / "run", ir)
    frame = scenario.broken_window()
    ids = scenario.write_log(tmp / "log", frame)
    scenario.write_labels(tmp / "log", frame, ids)
    cwd = os.getcwd()
    os.chdir(tmp)  # relative paths, as a user would type them (they show in the report)
    try:
        result = monitor.run_monitor(ir, "run", log="log", now=scenario.NOW, state="state.json", mlflow=False)
    finally:
        os.chdir(cwd)
    out = tmp / Path(result["report_path"]).parent
    return {
        "ir": ir,
        "tmp": tmp,
        "reference": reference,
        "result": result,
        "report": json.loads((out / "report.json").read_text()),
        "html": out / "report.html",
        "markdown": (out / "report.md").read_text(),
    }


class _Numbers(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[list[Any], str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("data-key") is not None:
            self.found.append((json.loads(a["data-key"] or "null"), a.get("data-value") or ""))


def _at(report: dict[str, Any], path: list[Any]) -> Any:
    node: Any = report
    for part in path:
        node = node[part]
    return node


def _check(report: dict[str, Any], found: list[tuple[list[Any], str]]) -> set[str]:
    """Every number the page shows is the report.json value at its path; returns the sections seen."""
    special = {"correlation_change_matrix", "rows_per_hour"}  # drawn from report.json lists, checked below
    sections = set()
    for path, value in found:
        sections.add(str(path[0]))
        if path[0] in special:
            continue
        expected = _at(report, path)
        assert repr(expected) == value, (path, expected, value)
    return sections


def test_every_number_in_the_html_is_the_one_in_report_json(broken) -> None:
    parser = _Numbers()
    parser.feed(broken["html"].read_text())
    report = broken["report"]
    sections = _check(report, parser.found)
    assert {"drift", "data_quality", "performance", "distributions", "triggers", "rows"} <= sections
    paths = [p for p, _ in parser.found]
    for name in scenario.FEATURES:
        assert ["drift", "features", name, "score"] in paths
        assert ["data_quality", "features", name, "null_rate"] in paths
    assert ["performance", "confusion_matrix", 1, 1] in paths
    heat = {tuple(p[1:]): float(v) for p, v in parser.found if p[0] == "correlation_change_matrix"}
    corr = report["correlation"]
    for (i, j), value in heat.items():
        assert value == abs(corr["current"][i][j] - corr["reference"][i][j])
    hours = [float(v) for p, v in parser.found if p[0] == "rows_per_hour"]
    assert hours == [float(v) for v in report["rows_per_hour"].values()] and sum(hours) == report["rows"]


def test_data_quality_fires_its_trigger_and_is_exported_to_prometheus(broken) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    report, result = broken["report"], broken["result"]
    q = report["data_quality"]["features"]
    assert q["support_calls"]["null_rate"] == pytest.approx(0.508, abs=0.02)  # the 50.8% NaN feature
    assert q["tenure_months"]["below_min"] == q["tenure_months"]["out_of_range"] > 0
    assert q["contract"]["unseen_rate"] == pytest.approx(0.06, abs=0.01)
    assert q["monthly_charges"]["out_of_range_rate"] == 0.0
    assert "data_quality-4" in result["fired_triggers"]
    reason = next(t["reason"] for t in report["triggers"] if t["id"] == "data_quality-4")
    assert (
        "support_calls: null rate" in reason
        and "tenure_months: out-of-range" in reason
        and "contract: unseen" in reason
    )
    prom = (broken["html"].parent / "metrics.prom").read_text()
    families = {f.name: f for f in text_string_to_metric_families(prom)}
    nulls = {s.labels["feature"]: s.value for s in families["mlspec_feature_null_rate"].samples}
    assert nulls["support_calls"] == q["support_calls"]["null_rate"]
    unseen = {s.labels["feature"]: s.value for s in families["mlspec_feature_unseen_rate"].samples}
    assert set(unseen) == {"contract"} and unseen["contract"] == q["contract"]["unseen_rate"]
    assert families["mlspec_data_quality_violations"].samples[0].value == 3


def test_a_clean_window_keeps_the_data_quality_trigger_quiet(tmp_path: Path) -> None:
    ir = scenario.churn_ir_with_data_quality(tmp_path)
    scenario.write_reference(tmp_path / "run", ir)
    clean = pd.read_csv(scenario.DATA / "reference.csv")
    scenario.write_log(tmp_path / "log", clean)
    result = monitor.run_monitor(
        ir,
        str(tmp_path / "run"),
        log=str(tmp_path / "log"),
        now=scenario.NOW,
        state=str(tmp_path / "s.json"),
        mlflow=False,
    )
    assert result["data_quality_violations"] == [] and result["fired_triggers"] == []
    report = json.loads(Path(result["report_path"]).read_text())
    assert (
        next(t for t in report["triggers"] if t["kind"] == "data_quality")["reason"]
        == "every feature within its bounds"
    )


def test_markdown_summary_for_ci_comments(broken) -> None:
    md = broken["markdown"]
    assert md.startswith("### Monitoring `churn`: **retrain**")
    assert "| `data_quality-4` | data_quality | yes |" in md
    assert "| monthly_charges | 1.4" in md and "| support_calls | 5" in md  # drift score, then the null rate


@pytest.mark.engine
def test_the_report_opens_offline_in_chromium_without_errors_or_requests(broken) -> None:
    import chromium

    page = chromium.visit(
        broken["html"],
        "[...document.querySelectorAll('[data-key]')].map(e => [JSON.parse(e.dataset.key), e.dataset.value])"
        ".concat([[['svg'], String(document.querySelectorAll('svg').length)]])",
    )
    assert page.requests == [broken["html"].resolve().as_uri()]  # the file itself, nothing else
    assert page.console == []  # no console message, no exception, no CSP violation
    found = [(p, v) for p, v in page.values if p != ["svg"]]
    _check(broken["report"], found)
    n_svg = int(next(v for p, v in page.values if p == ["svg"]))
    assert n_svg >= len(scenario.FEATURES) + 2  # a chart per feature, the heatmap, the traffic
    assert page.screenshot.startswith(b"\x89PNG") and len(page.screenshot) > 50_000
    if os.environ.get("MLSPEC_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT.write_bytes(page.screenshot)


def test_mlspec_report_renders_a_window_without_recording_anything(
    broken, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = broken["tmp"] / "churn-dq.yaml"
    runner = CliRunner()
    done = runner.invoke(
        cli,
        [
            "report",
            str(spec),
            "--log",
            str(broken["tmp"] / "log"),
            "--reference",
            str(broken["reference"]),
            "--out",
            "out",
        ],
        env={"MLSPEC_NOW": scenario.NOW.isoformat()},
    )
    assert done.exit_code == 0, done.output
    assert "report: out/report.html" in done.output and (tmp_path / "out" / "report.md").exists()
    assert not Path(".mlspec/monitoring").exists()  # no trigger state written


def test_mlspec_report_rerenders_a_report_json(broken, tmp_path: Path) -> None:
    source = broken["html"].parent / "report.json"
    done = CliRunner().invoke(cli, ["report", "--from-json", str(source), "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "report.html").read_text() == broken["html"].read_text()
    bad = tmp_path / "other.json"
    bad.write_text("{}")
    done = CliRunner().invoke(cli, ["report", "--from-json", str(bad)])
    assert done.exit_code == 2 and "is not a monitoring report.json" in done.output
    shutil.rmtree(tmp_path / "report.html", ignore_errors=True)


@pytest.mark.engine
def test_the_monitoring_run_is_logged_to_mlflow_with_its_report(broken, tmp_path: Path, monkeypatch) -> None:
    from mlflow import MlflowClient

    from mlspec.runtime.monitoring import tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert not tracking.enabled(broken["ir"], None)  # no registry database yet: nothing is created for it
    MlflowClient(tracking_uri=uri).search_experiments()  # the registry a training run would have created
    assert tracking.enabled(broken["ir"], None)
    result = monitor.run_monitor(
        broken["ir"],
        str(tmp_path / "run"),
        reference=str(broken["reference"]),
        log=str(broken["tmp"] / "log"),
        now=scenario.NOW,
        state=str(tmp_path / "state.json"),
        mlflow=True,
    )
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(result["mlflow_run_id"])
    assert run.data.tags["mlspec.run_kind"] == "monitoring" and run.data.tags["mlspec.retrain"] == "true"
    report = json.loads(Path(result["report_path"]).read_text())
    assert (
        run.data.metrics["drift.monthly_charges"] == report["drift"]["features"]["monthly_charges"]["score"]
    )
    assert (
        run.data.metrics["null_rate.support_calls"]
        == report["data_quality"]["features"]["support_calls"]["null_rate"]
    )
    assert run.data.metrics["live.auc"] == report["performance"]["metrics"]["auc"]
    files = {f.path for f in client.list_artifacts(run.info.run_id, "monitoring")}
    assert files == {f"monitoring/{n}" for n in ("report.json", "metrics.prom", "report.html", "report.md")}
    assert tracking.enabled(broken["ir"], None)  # the registry exists now: later runs log by default


def test_business_kpis_are_computed_on_the_labeled_predictions(tmp_path: Path, monkeypatch) -> None:
    import mlspec

    monkeypatch.chdir(tmp_path)  # the KPI module is imported from the working directory, as in a project
    (tmp_path / "churn_kpis.py").write_text(
        "def saved_revenue(y_true, y_pred, y_score, frame):\n"
        "    caught = ((y_true == 1) & (y_pred == 1)).sum()\n"
        "    return float(caught * 120.0 - (y_pred == 1).sum() * 10.0 + 0 * frame['tenure_months'].sum())\n"
    )
    scenario.churn_ir_with_data_quality(tmp_path)
    spec = tmp_path / "churn-dq.yaml"
    spec.write_text(
        spec.read_text().replace(
            "  metrics: [accuracy, f1, auc]\n",
            '  metrics: [accuracy, f1, auc]\n  custom_metrics: {saved_revenue: "churn_kpis:saved_revenue"}\n',
        )
    )
    ir = mlspec.lower(mlspec.load(spec))
    scenario.write_reference(tmp_path / "run", ir)
    frame = scenario.broken_window(rows=1200)
    ids = scenario.write_log(tmp_path / "log", frame)
    scenario.write_labels(tmp_path / "log", frame, ids)
    result = monitor.run_monitor(ir, "run", log="log", now=scenario.NOW, state="s.json", mlflow=False)
    perf = json.loads(Path(result["report_path"]).read_text())["performance"]
    cm = perf["confusion_matrix"]  # rows: true class, columns: predicted
    assert perf["kpis"] == {"saved_revenue": cm[1][1] * 120.0 - (cm[0][1] + cm[1][1]) * 10.0}
    prom = Path(result["metrics_path"]).read_text()
    assert (
        f'mlspec_business_kpi{{kpi="saved_revenue",system="churn"}} {perf["kpis"]["saved_revenue"]}' in prom
    )
    assert "Business KPIs" in Path(result["html_report_path"]).read_text()
