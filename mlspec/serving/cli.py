"""`mlspec serve` and `mlspec loadtest` (loaded lazily by the root CLI)."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

from mlspec import contracts


def _ir(spec: str, env: str | None):
    import mlspec
    from mlspec.diagnostics import MlspecError

    try:
        return mlspec.load_ir(spec, env)
    except MlspecError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot read {spec}: {exc}") from None


@click.command()
@click.argument("spec", required=False)
@click.option(
    "--model", "model_uri", help="models:/<name>@<alias>, models:/<name>/<version> or a .onnx file."
)
@click.option("--env", help="Environment overlay of the spec.")
@click.option("--name", help="Model name in the V2 API (default: the spec's model, or the file's stem).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, help="Default: the spec's serving port, else 8080.")
@click.option(
    "--tracking-uri", help="MLflow tracking/registry URI (default: $MLFLOW_TRACKING_URI, the spec's)."
)
@click.option("--accelerator", type=click.Choice(["cpu", "gpu"]))
@click.option("--cache-url", help="Redis URL (default: $MLSPEC_CACHE_URL, else the spec's cache Service).")
@click.option("--no-cache", is_flag=True, help="Serve without the cache even when the spec has one.")
@click.option("--prediction-log", help="Directory or s3:// URL for sampled prediction logs.")
@click.option(
    "--variant",
    type=click.Choice(["champion", "challenger", "shadow"]),
    help="The rollout variant this server is, logged with each prediction (default: $MLSPEC_VARIANT, "
    "else champion).",
)
@click.option("--sample-rate", type=float)
@click.option(
    "--log-flush-interval",
    "log_flush_interval_s",
    type=float,
    help="Seconds before a prediction log file is closed and readable (60).",
)
@click.option("--max-batch-size", type=int)
@click.option("--max-batch-delay-ms", type=float)
@click.option("--max-rows", type=int, help="Rows accepted in one request.")
@click.option("--max-body-bytes", type=int)
@click.option("--max-pending-rows", type=int, help="Rows waiting for inference before new requests get 503.")
@click.option("--request-timeout", "request_timeout_s", type=float, help="Seconds before a request gets 504.")
@click.option(
    "--header-timeout", "header_timeout_s", type=float, help="Seconds a connection has to send its headers."
)
@click.option(
    "--keep-alive", "keep_alive_s", type=float, help="Seconds an idle kept-alive connection stays open."
)
@click.option(
    "--max-connections", type=int, help="Open connections; at the cap the longest idle one is closed."
)
@click.option("--reload-interval", "reload_interval_s", type=float, help="Seconds between registry polls.")
@click.option("--threads", type=int, help="ONNX Runtime intra-op threads (default: the container CPU limit).")
@click.option("--log-level", default="info", show_default=True)
def serve(
    spec: str | None,
    model_uri: str | None,
    env: str | None,
    name: str | None,
    log_level: str,
    no_cache: bool,
    **overrides,
) -> None:
    """Serve a model over the Open Inference Protocol (KServe V2) with /predict and /metrics."""
    from mlspec.serving.config import ServerConfig, from_ir

    if spec is None and model_uri is None:
        raise click.UsageError("give SPEC (a spec or a compiled IR JSON), --model, or both")
    if spec is not None:
        # SPEC gives every setting; --model then picks another version (e.g. the challenger in a shadow pod).
        config = from_ir(_ir(spec, env))
        if model_uri:
            config = config.with_overrides(model_uri=model_uri)
        if name:
            config = config.with_overrides(model_name=name)
    else:
        assert model_uri is not None
        if not model_uri.startswith("models:/") and not Path(model_uri).is_file():
            raise click.UsageError(f"--model {model_uri!r} is neither a models:/ URI nor an existing file")
        default_name = (
            model_uri[len("models:/") :].split("@")[0].split("/")[0]
            if model_uri.startswith("models:/")
            else Path(model_uri).stem
        )
        import os

        config = ServerConfig(
            model_uri=model_uri,
            model_name=name or default_name,
            tracking_uri=os.environ.get("MLFLOW_TRACKING_URI"),
            cache_url=os.environ.get("MLSPEC_CACHE_URL"),
            variant=os.environ.get(contracts.VARIANT_ENV) or contracts.CHAMPION,
        )
    config = config.with_overrides(**overrides)
    if no_cache:
        config = config.with_overrides(cache_url="")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from mlspec.serving.server import run_server

    sys.exit(run_server(config))


@click.command()
@click.argument("url")
@click.option("--spec", required=True, help="The spec whose SLO the result is judged against.")
@click.option("--env", help="Environment overlay of the spec.")
@click.option("--duration", default="10s", show_default=True, help="How long to drive load (e.g. 10s, 1m).")
@click.option("--rps", type=float, help="Open loop at this request rate.")
@click.option("--concurrency", type=int, help="Closed loop with this many clients (default 8).")
@click.option("--rows", type=int, default=1, show_default=True, help="Rows per request.")
@click.option("--max-requests", type=int, default=1_000_000, show_default=True)
@click.option("--model", "model_name", help="Model name on the server (default: the spec's).")
def loadtest(
    url: str,
    spec: str,
    env: str | None,
    duration: str,
    rps: float | None,
    concurrency: int | None,
    rows: int,
    max_requests: int,
    model_name: str | None,
) -> None:
    """Drive load at a server on this machine; exit 1 when the spec's SLO is missed."""
    from mlspec.serving import loadtest as lt
    from mlspec.units import duration_seconds

    if rps is not None and concurrency is not None:
        raise click.UsageError("give --rps or --concurrency, not both")
    if rps is not None and rps <= 0:
        raise click.UsageError("--rps must be positive")
    try:
        seconds = float(duration) if duration.replace(".", "", 1).isdigit() else duration_seconds(duration)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    seconds = min(max(seconds, 0.1), 3600.0)
    ir = _ir(spec, env)
    if ir.serving is None or ir.serving.slo.objective is None:
        raise click.ClickException(f"spec {spec} declares no serving SLO to test against")
    try:
        lt.split_url(url)
        lt.require_loopback(lt.split_url(url)[0])
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None

    async def drive():
        bodies = await lt.model_bodies(url, model_name or ir.serving.model_name, rows)
        return await lt.run_load(
            url,
            "/predict",
            bodies,
            duration_s=seconds,
            rps=rps,
            concurrency=concurrency or (None if rps else 8),
            max_requests=max_requests,
        )

    try:
        result = asyncio.run(drive())
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot load-test {url}: {exc}") from None
    policy = ir.serving.slo
    objective = policy.objective
    percentiles = ir.monitoring.latency_percentiles if ir.monitoring else (50, 95, 99)
    click.echo(lt.report(result, policy, percentiles))
    problems = lt.slo_violations(result, policy)
    if problems:
        for problem in problems:
            click.echo(f"SLO missed: {problem}", err=True)
        sys.exit(1)
    click.echo(
        f"SLO met: p{policy.latency_quantile * 100:g} <= {objective.latency_p99_ms:g} ms, "
        f"availability >= {objective.availability_percent:g}%"
    )
