"""The monitoring report for people: one self-contained HTML file, and a Markdown summary for CI comments.

Both are rendered from report.json alone, so `mlspec report RUN_DIR` re-renders any past run. The HTML has
no script, font, stylesheet or image from anywhere: inline CSS and inline SVG (mlspec.runtime.monitoring.svg),
so it opens offline and from an artifact store. Every number it shows sits in an element with
data-key (its path in report.json, as a JSON list) and data-value (the exact value), which the tests compare
with report.json.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from mlspec.runtime.monitoring import svg

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#2e3440;margin:0;background:#f6f7f9}
header{background:#2e3440;color:#eceff4;padding:18px 28px}header h1{margin:0 0 4px;font-size:20px}
header .meta{color:#d8dee9;font-size:13px}main{padding:8px 28px 40px;max-width:1280px}
section{background:#fff;border:1px solid #e3e6ec;border-radius:8px;padding:14px 18px;margin:16px 0}
h2{font-size:16px;margin:0 0 10px}h3{font-size:14px;margin:0 0 4px}
.badges{display:flex;gap:10px;flex-wrap:wrap;margin-top:12px}
.badge{border-radius:6px;padding:6px 12px;font-weight:600;background:#4c566a;color:#fff}
.badge.bad{background:#bf616a}.badge.ok{background:#5e8c61}.badge.warn{background:#d08770}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:5px 8px;
border-bottom:1px solid #eceff4;vertical-align:top}th{color:#4c566a;font-weight:600;background:#fafbfc}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.flag td{background:#fbeaea}.yes{color:#bf616a;font-weight:600}.no{color:#5e8c61}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:14px}
.card{border:1px solid #e3e6ec;border-radius:6px;padding:10px 12px}.card.drifted{border-color:#bf616a}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px;vertical-align:middle}
.muted{color:#6b7385;font-size:12px}code{background:#eceff4;padding:1px 4px;border-radius:3px}
header code{background:#434c5e;color:#eceff4}
"""


def _get(report: dict[str, Any], path: list[Any]) -> Any:
    node: Any = report
    for part in path:
        node = node[part]
    return node


def _num(path: list[Any], value: Any, text: str | None = None) -> str:
    """A number with its report.json path, so that tests (and people) can trace it."""
    if value is None:
        return '<span class="muted">&ndash;</span>'
    shown = text if text is not None else _fmt(value)
    return f'<span data-key="{escape(json.dumps(path))}" data-value="{escape(repr(value))}">{escape(shown)}</span>'


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _pct(path: list[Any], value: float | None) -> str:
    return _num(path, value, None if value is None else f"{value * 100:.2f}%")


def _yes(flag: bool) -> str:
    return '<span class="yes">yes</span>' if flag else '<span class="no">no</span>'


# ----------------------------------------------------------------------------------------------- sections


def _header(r: dict[str, Any]) -> str:
    drift = r.get("drift")
    violations = r.get("data_quality_violations", [])
    perf = r.get("performance") or {}
    badges = [
        f'<span class="badge {"bad" if r["retrain"] else "ok"}">retrain: {"yes" if r["retrain"] else "no"}</span>'
    ]
    if drift:
        cls = "bad" if drift["n_drifted"] else "ok"
        badges.append(
            f'<span class="badge {cls}">{_num(["drift", "n_drifted"], drift["n_drifted"])} of '
            f"{len(drift['features'])} features drifted</span>"
        )
    elif not r["enough_samples"]:
        badges.append(
            f'<span class="badge warn">drift not computed: fewer than {r["min_samples"]} rows</span>'
        )
    badges.append(
        f'<span class="badge {"bad" if violations else "ok"}">{len(violations)} data-quality violations</span>'
    )
    if perf.get("metric"):
        cls = "bad" if perf.get("degraded") else "ok"
        badges.append(
            f'<span class="badge {cls}">{escape(perf["metric"])} '
            f"{_num(['performance', 'value'], perf.get('value'))}</span>"
        )
    versions = ", ".join(r["model_versions"]) or "none"
    return (
        f"<header><h1>Monitoring report: {escape(r['system'])}</h1>"
        f'<div class="meta">window {escape(r["window_start"])} → {escape(r["now"])} · '
        f"{_num(['rows'], r['rows'])} logged predictions · model versions {escape(versions)} · "
        f"reference <code>{escape(r['reference'])}</code></div>"
        f'<div class="badges">{"".join(badges)}</div></header>'
    )


def _triggers(r: dict[str, Any]) -> str:
    rows = []
    for i, t in enumerate(r["triggers"]):
        suppressed = t["id"] in r["suppressed_triggers"]
        state = _yes(t["fired"]) + (
            ' <span class="muted">(suppressed by cooldown)</span>' if suppressed else ""
        )
        rows.append(
            f'<tr class="{"flag" if t["fired"] else ""}"><td><code>{escape(t["id"])}</code></td>'
            f'<td>{escape(t["kind"])}</td><td data-key="{escape(json.dumps(["triggers", i, "fired"]))}" '
            f'data-value="{t["fired"]!r}">{state}</td><td>{escape(t["reason"])}</td></tr>'
        )
    if not rows:
        return "<section><h2>Retraining triggers</h2><p class='muted'>No retraining section in the spec.</p></section>"
    cooldown = (
        f"<p class='muted'>Cooldown until {escape(r['cooldown_until'])}.</p>"
        if r.get("cooldown_until")
        else ""
    )
    return (
        "<section><h2>Retraining triggers</h2><table><tr><th>trigger</th><th>kind</th><th>fired</th>"
        f"<th>why</th></tr>{''.join(rows)}</table>{cooldown}</section>"
    )


def _feature_chart(name: str, dist: dict[str, Any]) -> str:
    key = ["distributions", name]
    if dist["kind"] == "numeric":
        labels = [f"[{a:.4g}, {b:.4g})" for a, b in zip(dist["bins"], dist["bins"][1:], strict=False)]
        chart = svg.paired_bars(
            labels, dist["reference"], dist["current"], key=key, axis=(dist["bins"][0], dist["bins"][-1])
        )
        missing = (
            f"<div class='muted'>missing: reference "
            f"{_pct(['distributions', name, 'missing_reference'], dist['missing_reference'])}, current "
            f"{_pct(['distributions', name, 'missing_current'], dist['missing_current'])}</div>"
        )
        return chart + missing
    return svg.paired_bars(
        dist["categories"], dist["reference"], dist["current"], key=key, rotate_labels=True
    )


def _drift(r: dict[str, Any]) -> str:
    drift = r.get("drift")
    dists = r["distributions"]
    legend = (
        f'<div class="legend muted"><span style="background:{svg.REFERENCE}"></span>reference'
        f'<span style="background:{svg.CURRENT}"></span>current window</div>'
    )
    if drift is None:
        note = (
            f"fewer than min_samples ({r['min_samples']}) rows in the window"
            if not r["enough_samples"]
            else "no drift monitor in the spec"
        )
        charts = "".join(
            f'<div class="card"><h3>{escape(n)}</h3>{_feature_chart(n, d)}</div>' for n, d in dists.items()
        )
        return (
            f"<section><h2>Distributions</h2><p class='muted'>Drift not scored: {note}.</p>{legend}"
            f"<div class='grid'>{charts}</div></section>"
        )
    rows: list[str] = []
    cards: list[str] = []
    for name, res in drift["features"].items():
        path = ["drift", "features", name]
        rows.append(
            f'<tr class="{"flag" if res["drifted"] else ""}"><td>{escape(name)}</td><td>{escape(res["kind"])}</td>'
            f'<td class="n">{_num([*path, "score"], res["score"])}</td><td>{_yes(res["drifted"])}</td>'
            f'<td class="n">{_pct([*path, "nan_fraction_current"], res["nan_fraction_current"])}</td>'
            f'<td class="n">{_pct([*path, "unseen_fraction"], res.get("unseen_fraction"))}</td></tr>'
        )
        score = _num([*path, "score"], res["score"])
        cards.append(
            f'<div class="card{" drifted" if res["drifted"] else ""}"><h3>{escape(name)} '
            f'<span class="muted">{escape(drift["method"])} {score} '
            f"(threshold {drift['threshold']:g}) · {'drifted' if res['drifted'] else 'stable'}</span></h3>"
            f"{_feature_chart(name, dists[name])}</div>"
        )
    for name, dist in dists.items():
        if name not in drift["features"]:
            cards.append(
                f'<div class="card"><h3>{escape(name)} <span class="muted">not scored</span></h3>'
                f"{_feature_chart(name, dist)}</div>"
            )
    return (
        f"<section><h2>Drift ({escape(drift['method'])}, drifted when score &gt; {drift['threshold']:g})</h2>"
        "<table><tr><th>feature</th><th>kind</th><th>score</th><th>drifted</th><th>missing</th>"
        f"<th>unseen</th></tr>{''.join(rows)}</table>{legend}<div class='grid'>{''.join(cards)}</div></section>"
    )


def _correlation(r: dict[str, Any]) -> str:
    corr = r.get("correlation")
    if not corr:
        return ""
    cols, ref, cur = corr["columns"], corr["reference"], corr["current"]
    change = [[abs(cur[i][j] - ref[i][j]) for j in range(len(cols))] for i in range(len(cols))]
    tips = [
        [
            f"{cols[i]} x {cols[j]}: reference {ref[i][j]:.3f}, current {cur[i][j]:.3f}"
            for j in range(len(cols))
        ]
        for i in range(len(cols))
    ]
    alert = r.get("correlation_alert")
    return (
        "<section><h2>Correlation change</h2><p>Largest change of a pairwise Pearson correlation: "
        f"{_num(['correlation_change'], r['correlation_change'])}"
        + (f" — {_yes(bool(alert))} above the alert threshold" if alert is not None else "")
        + "</p><p class='muted'>|current &minus; reference| per pair; hover a cell for both values.</p>"
        + svg.heatmap(cols, change, tips, key=["correlation_change_matrix"])
        + "</section>"
    )


def _schema_text(bounds: dict[str, Any], nullable: bool) -> str:
    parts = []
    if bounds["min"] is not None or bounds["max"] is not None:
        low = "" if bounds["min"] is None else f"{bounds['min']:g}"
        high = "" if bounds["max"] is None else f"{bounds['max']:g}"
        parts.append(f"[{low}, {high}]")
    if bounds["values"]:
        parts.append(
            "{" + ", ".join(bounds["values"][:6]) + (" …" if len(bounds["values"]) > 6 else "") + "}"
        )
    if not nullable:
        parts.append("not null")
    return " ".join(parts)


def _quality(r: dict[str, Any]) -> str:
    q = r["data_quality"]["features"]
    flagged = {v.split(":", 1)[0] for v in r.get("data_quality_violations", [])}
    rows = []
    for name, row in q.items():
        path = ["data_quality", "features", name]
        schema = _schema_text(row["bounds"], row["nullable"])
        rng = ""
        if row.get("min") is not None:
            low = _num([*path, "min"], row["min"], f"{row['min']:.4g}")
            high = _num([*path, "max"], row["max"], f"{row['max']:.4g}")
            rng = f"{low} … {high}"
        rows.append(
            f'<tr class="{"flag" if name in flagged else ""}"><td>{escape(name)}</td><td>{escape(row["type"])}</td>'
            f'<td class="n">{_num([*path, "rows"], row["rows"])}</td>'
            f'<td class="n">{_pct([*path, "null_rate"], row["null_rate"])}</td>'
            f'<td class="n">{_pct([*path, "null_rate_reference"], row["null_rate_reference"])}</td>'
            f'<td class="n">{_pct([*path, "out_of_range_rate"], row["out_of_range_rate"])}</td>'
            f'<td class="n">{_pct([*path, "unseen_rate"], row["unseen_rate"])}</td>'
            f"<td>{escape(schema)}</td><td class='n'>{rng}</td>"
            f"<td>{escape('; '.join(row['issues']))}</td></tr>"
        )
    violations = "".join(f"<li>{escape(v)}</li>" for v in r.get("data_quality_violations", []))
    return (
        "<section><h2>Live data quality</h2><table><tr><th>feature</th><th>type</th><th>rows</th>"
        "<th>null rate</th><th>null rate (reference)</th><th>out of range</th><th>unseen</th>"
        f"<th>schema</th><th>current range</th><th>issues</th></tr>{''.join(rows)}</table>"
        + (f"<p>Bounds of the data_quality trigger exceeded:</p><ul>{violations}</ul>" if violations else "")
        + "</section>"
    )


def _confusion(perf: dict[str, Any], key: str, title: str) -> str:
    matrix = perf[key]
    classes = perf.get("classes") or [str(i) for i in range(len(matrix))]
    head = "".join(f"<th>pred {escape(c)}</th>" for c in classes)
    body = []
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        cells = "".join(
            f'<td class="n">{_num(["performance", key, i, j], v)} '
            f'<span class="muted">({v / total * 100:.1f}%)</span></td>'
            for j, v in enumerate(row)
        )
        body.append(f"<tr><th>true {escape(classes[i])}</th>{cells}</tr>")
    return f"<div><h3>{title}</h3><table><tr><th></th>{head}</tr>{''.join(body)}</table></div>"


def _performance(r: dict[str, Any]) -> str:
    perf = r.get("performance")
    if not perf:
        return (
            "<section><h2>Performance</h2><p class='muted'>No labels joined to the window's predictions "
            "(labels go under &lt;log&gt;/labels/ with request_id and the target).</p></section>"
        )
    rows = "".join(
        f"<tr><td>{escape(k)}</td><td class='n'>{_num(['performance', 'metrics', k], v)}</td></tr>"
        for k, v in perf["metrics"].items()
    )
    kpis = "".join(
        f"<tr><td>{escape(k)}</td><td class='n'>{_num(['performance', 'kpis', k], v)}</td></tr>"
        for k, v in (perf.get("kpis") or {}).items()
    )
    parts = [
        f"<section><h2>Performance on {_num(['performance', 'labeled_rows'], perf['labeled_rows'])} labeled "
        "predictions</h2>"
    ]
    if perf.get("metric"):
        b = perf["bounds"]
        required = [
            f"≥ {b['min']:g}" if b["min"] is not None else "",
            f"≤ {b['max']:g}" if b["max"] is not None else "",
        ]
        verdict = (
            '<span class="yes">degraded</span>' if perf.get("degraded") else '<span class="no">ok</span>'
        )
        parts.append(
            f"<p>{escape(perf['metric'])} = {_num(['performance', 'value'], perf.get('value'))}, required "
            f"{escape(' and '.join(x for x in required if x))}: {verdict}</p>"
        )
    parts.append(f"<div class='grid'><div><h3>Metrics</h3><table>{rows}</table></div>")
    if kpis or perf.get("kpi_error"):
        error = f"<p class='yes'>{escape(perf['kpi_error'])}</p>" if perf.get("kpi_error") else ""
        parts.append(f"<div><h3>Business KPIs</h3><table>{kpis}</table>{error}</div>")
    if perf.get("confusion_matrix"):
        parts.append(_confusion(perf, "confusion_matrix", "Confusion matrix (window)"))
    if perf.get("confusion_matrix_reference"):
        parts.append(_confusion(perf, "confusion_matrix_reference", "Confusion matrix (at export)"))
    parts.append("</div>")
    if perf.get("confusion_matrix_change") is not None:
        parts.append(
            "<p>Largest change of a per-class rate: "
            f"{_num(['performance', 'confusion_matrix_change'], perf['confusion_matrix_change'])}</p>"
        )
    parts.append("</section>")
    return "".join(parts)


def _traffic(r: dict[str, Any]) -> str:
    hours = r.get("rows_per_hour") or {}
    chart = svg.bars(list(hours), [float(v) for v in hours.values()], key=["rows_per_hour"]) if hours else ""
    mix = " · ".join(
        f"{escape(label)}: "
        + ", ".join(f"{escape(k)} {_num([field, k], v)}" for k, v in r.get(field, {}).items())
        for field, label in (("sources", "source"), ("variants", "variant"))
        if r.get(field)
    )
    return (
        f"<section><h2>Traffic</h2><p class='muted'>Rows per hour (UTC), {escape(r.get('first_ts') or '')} → "
        f"{escape(r.get('last_ts') or '')}. {mix}</p>{chart}</section>"
    )


def render_html(report: dict[str, Any]) -> str:
    body = "".join(
        (
            _triggers(report),
            _quality(report),
            _drift(report),
            _correlation(report),
            _performance(report),
            _traffic(report),
        )
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; "
        'img-src data:">'
        f"<title>mlspec monitoring: {escape(report['system'])} {escape(report['now'])}</title>"
        f"<style>{CSS}</style></head><body>{_header(report)}<main>{body}"
        "<p class='muted'>Generated by <code>mlspec monitor</code> from report.json "
        "(re-render with <code>mlspec report</code>). Distributions: reference from the profile saved with "
        "the model; current values spread evenly between the profile's bin edges.</p></main></body></html>\n"
    )


# ----------------------------------------------------------------------------------------------- markdown


def _md_pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _md_num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def render_markdown(report: dict[str, Any]) -> str:
    r = report
    lines = [
        f"### Monitoring `{r['system']}`: {'**retrain**' if r['retrain'] else 'no retraining'}",
        "",
        f"Window {r['window_start']} → {r['now']}, {r['rows']:,} predictions, reference `{r['reference']}`.",
        "",
    ]
    if r["triggers"]:
        lines += ["| trigger | kind | fired | why |", "|---|---|---|---|"]
        lines += [
            f"| `{t['id']}` | {t['kind']} | {'yes' if t['fired'] else 'no'} | {t['reason'].replace('|', '/')} |"
            for t in r["triggers"]
        ]
        lines.append("")
    drift = r.get("drift")
    if drift:
        lines += [
            f"**Drift** ({drift['method']} > {drift['threshold']:g}): {drift['n_drifted']} of "
            f"{len(drift['features'])} features drifted"
            + (f": {', '.join(drift['drifted_features'])}" if drift["drifted_features"] else ""),
            "",
            "| feature | score | drifted |",
            "|---|---:|---|",
        ]
        lines += [
            f"| {n} | {_md_num(f['score'])} | {'**yes**' if f['drifted'] else 'no'} |"
            for n, f in drift["features"].items()
        ]
        lines.append("")
    if r.get("correlation_change") is not None:
        lines += [f"**Correlation change**: {r['correlation_change']:.4f}", ""]
    q = r["data_quality"]["features"]
    lines += [
        "**Data quality**",
        "",
        "| feature | null rate | out of range | unseen |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {n} | {_md_pct(row['null_rate'])} | {_md_pct(row['out_of_range_rate'])} | {_md_pct(row['unseen_rate'])} |"
        for n, row in q.items()
    ]
    lines.append("")
    if r.get("data_quality_violations"):
        lines += ["Bounds exceeded: " + "; ".join(r["data_quality_violations"]), ""]
    perf = r.get("performance")
    if perf:
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in perf["metrics"].items())
        lines += [f"**Performance** on {perf['labeled_rows']:,} labeled predictions: {metrics}", ""]
        if perf.get("kpis"):
            lines += ["Business KPIs: " + ", ".join(f"{k} {v:.4f}" for k, v in perf["kpis"].items()), ""]
    if r.get("suppressed_triggers"):
        lines += [f"Suppressed by the cooldown: {', '.join(r['suppressed_triggers'])}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
