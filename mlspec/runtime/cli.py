"""Click commands `mlspec run|monitor|promote|rollback`, loaded lazily by the root CLI."""

from __future__ import annotations

import json
import sys

import click

from mlspec.runtime import StepError, UsageError

ENV = click.option("--env", "env", default=None, metavar="NAME", help="Environment overlay to apply.")
SPEC_ARG = click.argument("spec", type=click.Path(dir_okay=False, path_type=str))


def _pin_clock(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from mlspec import clock

    if value is None:
        return None
    try:
        return clock.pin(value)
    except clock.ClockError as exc:
        raise click.BadParameter(str(exc)) from exc


NOW = click.option(
    "--now",
    default=None,
    metavar="ISO8601",
    expose_value=False,
    is_eager=True,
    callback=_pin_clock,
    help="Evaluate as of this instant (sets MLSPEC_NOW for every step); default: the wall clock.",
)


def _ir(spec: str, env: str | None):
    """A spec, or the compiled IR JSON that generated deployments mount (e.g. the monitoring CronJob)."""
    from mlspec import api

    return api.load_ir(spec, env)


@click.command()
@SPEC_ARG
@ENV
@click.option(
    "--from", "from_step", default=None, metavar="STEP", help="Resume the latest run (or --run-id) at STEP."
)
@click.option("--until", "until_step", default=None, metavar="STEP", help="Stop after STEP.")
@click.option("--run-id", default=None, metavar="ID", help="Run id (directory under .mlspec/runs).")
@NOW
def run(
    spec: str, env: str | None, from_step: str | None, until_step: str | None, run_id: str | None
) -> None:
    """Run the training pipeline locally, step by step.

    \b
    Example:
      mlspec run specs/churn.yaml
      mlspec run specs/churn.yaml --from evaluate
    """
    from mlspec.runtime.runner import run_spec

    try:
        code = run_spec(
            spec,
            env=env,
            from_step=from_step,
            until_step=until_step,
            run_id=run_id,
            echo=lambda line: click.echo(line, err=False),
        )
    except UsageError as exc:
        raise click.UsageError(str(exc)) from exc
    sys.exit(code)


@click.command()
@SPEC_ARG
@ENV
@click.option("--run-dir", default=".mlspec/monitor", show_default=True, help="Where the report is written.")
@click.option("--log", "log", default=None, help="Prediction log (default: serving.prediction_log).")
@click.option("--labels", default=None, help="Labels to join on the window (CSV/Parquet URI).")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Decide on the current trigger state but record nothing: no state, no MLflow run, no retraining.",
)
@NOW
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: a summary for people; json: one JSON object (the result and the trigger sent) for tools.",
)
@click.option(
    "--mlflow/--no-mlflow",
    "mlflow",
    default=None,
    help="Log the run to MLflow (default: when the registry exists).",
)
def monitor(
    spec: str,
    env: str | None,
    run_dir: str,
    log: str | None,
    labels: str | None,
    dry_run: bool,
    fmt: str,
    mlflow: bool | None,
) -> None:
    """Compute drift, data quality and performance; fire retraining triggers.

    \b
    Example:
      mlspec monitor specs/churn.yaml --dry-run
      mlspec monitor specs/churn.yaml --format json | jq .drifted_features
    """
    from mlspec.runtime import monitor as mon
    from mlspec.runtime import triggers

    ir = _ir(spec, env)
    if ir.monitoring is None:
        raise click.UsageError(f"{spec} has no monitoring section")
    try:
        result = mon.run_monitor(ir, run_dir, log=log, labels=labels, mlflow=mlflow, dry_run=dry_run)
        sent = None
        if result.get("retrain") and ir.retraining is not None and not dry_run:
            sent = triggers.send(ir, result)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from exc
    except (StepError, mon.MonitorError, triggers.SinkError) as exc:
        raise click.ClickException(f"monitor failed: {exc}") from exc
    if fmt == "json":
        click.echo(json.dumps({**result, "trigger": sent}, indent=2, sort_keys=True, default=str))
        return
    click.echo(result["summary"])
    click.echo(f"report: {result['html_report_path']} ({result['report_path']})")
    if sent is not None:
        click.echo(f"retraining triggered via the {ir.retraining.sink} sink")
    elif result.get("retrain"):
        click.echo("retraining not triggered: " + ("--dry-run" if dry_run else "no retraining section"))


@click.command()
@click.argument("spec", required=False, type=click.Path(dir_okay=False, path_type=str))
@ENV
@click.option("--out", default=".mlspec/report", show_default=True, help="Where the report files go.")
@click.option("--log", "log", default=None, help="Prediction log (default: serving.prediction_log).")
@click.option("--labels", default=None, help="Labels to join on the window (CSV/Parquet URI).")
@click.option("--reference", default=None, help="Reference profile (default: the run's or the champion's).")
@click.option(
    "--from-json",
    "from_json",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=str),
    help="Re-render a monitoring run's report.json instead of reading the log.",
)
def report(
    spec: str | None,
    env: str | None,
    out: str,
    log: str | None,
    labels: str | None,
    reference: str | None,
    from_json: str | None,
) -> None:
    """Write the monitoring report (HTML and Markdown) of the current window.

    Reads the window like `mlspec monitor` and shows what the triggers would decide, but records nothing:
    no trigger state, no retraining, no MLflow run. Writes report.html (self-contained, opens offline),
    report.md, report.json and metrics.prom.

    \b
    Example:
      mlspec report specs/churn.yaml --log predictions/
      mlspec report --from-json .mlspec/monitor/steps/monitor/report.json --out /tmp/report
    """
    import shutil
    import tempfile
    from pathlib import Path

    from mlspec.runtime import monitor as mon
    from mlspec.runtime import triggers
    from mlspec.runtime.monitoring import report as rendering

    if from_json:
        data = json.loads(Path(from_json).read_text())
        if not isinstance(data, dict) or "distributions" not in data:
            raise click.UsageError(f"{from_json} is not a monitoring report.json")
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "report.html").write_text(rendering.render_html(data))
        (Path(out) / "report.md").write_text(rendering.render_markdown(data))
        click.echo(f"report: {Path(out) / 'report.html'}")
        return
    if spec is None:
        raise click.UsageError("give a SPEC (or --from-json REPORT)")
    ir = _ir(spec, env)
    if ir.monitoring is None:
        raise click.UsageError(f"{spec} has no monitoring section")
    with tempfile.TemporaryDirectory() as tmp:
        # decide on the trigger state without writing it: a report changes nothing the monitor relies on
        try:
            result = mon.run_monitor(
                ir,
                tmp,
                reference=reference,
                log=log,
                labels=labels,
                state=triggers.default_state_path(ir, ".mlspec/monitor"),
                mlflow=False,
                dry_run=True,
            )
        except (StepError, triggers.SinkError) as exc:
            raise click.ClickException(f"report failed: {exc}") from exc
        Path(out).mkdir(parents=True, exist_ok=True)
        for produced in Path(result["report_path"]).parent.iterdir():
            shutil.copy(produced, Path(out) / produced.name)
    click.echo(Path(out, "report.md").read_text())
    click.echo(f"report: {Path(out) / 'report.html'}")


@click.command()
@SPEC_ARG
@click.option("--version", "version", required=True, help="Registered model version to make champion.")
@click.option("--reason", default="", help="Why (recorded in the registry).")
@click.option("--by", default=None, help="Who (default: the current user).")
@ENV
def promote(spec: str, version: str, reason: str, by: str | None, env: str | None) -> None:
    """Move the champion alias to a model version.

    \b
    Example:
      mlspec promote specs/churn.yaml --version 3 --reason "hotfix"
    """
    from mlspec.runtime import registry

    ir = _ir(spec, env)
    try:
        entry = registry.move_champion(ir, version, action="promote", by=by, reason=reason)
    except StepError as exc:
        raise click.ClickException(f"promote failed: {exc}") from exc
    click.echo(
        f"{ir.registry.model_name}: champion {entry['previous'] or '(none)'} -> {entry['version']} by {entry['by']}"
    )


@click.command()
@SPEC_ARG
@click.option("--reason", default="", help="Why (recorded in the registry).")
@click.option("--by", default=None, help="Who (default: the current user).")
@ENV
def rollback(spec: str, reason: str, by: str | None, env: str | None) -> None:
    """Return the champion alias to the previous champion.

    \b
    Example:
      mlspec rollback specs/churn.yaml --reason "latency regression"
    """
    from mlspec.runtime import registry

    ir = _ir(spec, env)
    try:
        entry = registry.rollback(ir, by=by, reason=reason)
    except StepError as exc:
        raise click.ClickException(f"rollback failed: {exc}") from exc
    click.echo(
        f"{ir.registry.model_name}: champion {entry['previous']} -> {entry['version']} (rollback by {entry['by']})"
    )


def _pairs(values: tuple[str, ...], flag: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise click.BadParameter(f"expects VARIANT=URL, got {item!r}", param_hint=flag)
        out[key] = value
    return out


@click.command()
@SPEC_ARG
@ENV
@click.option("--apply", "apply_", is_flag=True, help="Promote on pass, reject on fail (else: only report).")
@click.option("--log", "log", default=None, help="Prediction log (default: serving.prediction_log).")
@click.option("--labels", default=None, help="Labels for an a-b experiment (default: <log>/labels).")
@click.option(
    "--metrics",
    "metrics",
    multiple=True,
    metavar="VARIANT=URL",
    help="A variant's /metrics endpoint (error rate and latency since that server started).",
)
@click.option(
    "--prometheus",
    default=None,
    metavar="URL",
    help="Prometheus with the servers' metrics (default: $MLSPEC_PROMETHEUS_URL).",
)
@click.option("--by", default=None, help="Who (recorded with a promotion or rejection).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@NOW
def analyze(
    spec: str,
    env: str | None,
    apply_: bool,
    log: str | None,
    labels: str | None,
    metrics: tuple[str, ...],
    prometheus: str | None,
    by: str | None,
    fmt: str,
) -> None:
    """Judge the challenger by the rollout's analysis; with --apply, promote it or reject it.

    \b
    shadow: agreement and score distance with the champion on mirrored requests, error rate, latency;
    canary: the challenger's error rate and latency; a-b: a significance test of the metric.
    Exit code 0 whatever the verdict (pass, fail, pending, idle); 1 when the analysis cannot run.

    \b
    Example:
      mlspec analyze specs/churn.yaml --metrics challenger=http://127.0.0.1:8081/metrics
      mlspec analyze /etc/mlspec/ir.json --apply --prometheus http://prometheus:9090
    """
    from mlspec.runtime import analysis

    ir = _ir(spec, env)
    if ir.serving is None:
        raise click.UsageError(f"{spec} has no serving section")
    try:
        verdict = analysis.analyze(
            ir, log=log, labels=labels, metrics=_pairs(metrics, "--metrics"), prometheus=prometheus
        )
        moved = analysis.apply(ir, verdict, by=by) if apply_ else None
    except StepError as exc:
        raise click.ClickException(f"analyze failed: {exc}") from exc
    verdict["applied"] = moved
    if fmt == "json":
        click.echo(json.dumps(verdict, indent=2, sort_keys=True, default=str))
        return
    click.echo(f"{ir.system.name}: {verdict['status']}: {verdict['reason']}")
    for check in verdict["checks"]:
        mark = {True: "pass", False: "FAIL", None: "wait"}[check["passed"]]
        click.echo(f"  {mark:4} {check['name']}: {check['detail']}")
    if moved is not None:
        click.echo(f"  {moved['action']}: {moved['alias']} -> version {moved['version']} ({moved['reason']})")


@click.command()
@SPEC_ARG
@ENV
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def history(spec: str, env: str | None, fmt: str) -> None:
    """Every transition of the champion and challenger aliases: who, when, why, with which metrics.

    \b
    Example:
      mlspec history specs/churn.yaml
    """
    from datetime import UTC, datetime

    from mlspec.runtime import registry

    ir = _ir(spec, env)
    try:
        entries = registry.history(ir)
    except StepError as exc:
        raise click.ClickException(f"history failed: {exc}") from exc
    if fmt == "json":
        click.echo(json.dumps(entries, indent=2, sort_keys=True, default=str))
        return
    if not entries:
        click.echo(f"{ir.registry.model_name}: no transitions recorded")
        return
    for e in entries:
        at = datetime.fromtimestamp(int(e.get("at", 0)), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        move = f"{e.get('alias')} {e.get('previous') or '-'} -> {e.get('version') or '-'}"
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted((e.get("metrics") or {}).items()))
        click.echo(f"{at}  {e['action']:8}  {move:24}  by {e.get('by')}: {e.get('reason', '')}")
        if metrics:
            click.echo(f"{'':22}{metrics}")
