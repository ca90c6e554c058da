"""Server settings: from the IR's serving section, or defaults when serving a bare model."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from mlspec import contracts
from mlspec.ir.policy import LATENCY_BUCKETS


@dataclass(frozen=True)
class ServerConfig:
    model_uri: str  # a .onnx path, or models:/name@alias / models:/name/version
    model_name: str
    tracking_uri: str | None = None
    accelerator: str = "cpu"
    host: str = "127.0.0.1"
    port: int = 8080
    max_batch_size: int = 64
    max_batch_delay_ms: float = 2.0
    latency_buckets: list[float] = field(default_factory=lambda: list(LATENCY_BUCKETS))
    cache_url: str | None = None
    cache_ttl_seconds: int = 600
    prediction_log: str | None = None
    variant: str = (
        contracts.CHAMPION
    )  # logged with every prediction (the rollout's champion, challenger, shadow)
    sample_rate: float = 1.0
    log_flush_interval_s: float = 60.0  # prediction log files are closed (readable) this often
    features: list[str] | None = None  # fallback when the model carries no mlspec.features metadata
    max_body_bytes: int = 4 * 1024 * 1024
    max_rows: int = 1024
    max_pending_rows: int = 8192  # rows queued for inference before requests get 503
    request_timeout_s: float = 10.0
    header_timeout_s: float = 10.0  # a connection that has not sent its request headers by then is closed
    keep_alive_s: float = 30.0  # an idle kept-alive connection is closed after this
    max_connections: int = 2048  # open connections; at the cap the longest-waiting idle one is closed
    reload_interval_s: float = 30.0
    graceful_timeout_s: float = 30.0
    threads: int | None = None

    def with_overrides(self, **overrides: Any) -> ServerConfig:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def from_ir(ir: Any) -> ServerConfig:
    """Settings of the spec's serving section; the cache Service DNS name becomes the default Redis URL."""
    s = ir.serving
    if s is None:
        raise ValueError(f"spec '{ir.system.name}' has no serving section")
    cache_url = None
    if s.cache is not None:
        cache_url = (
            os.environ.get("MLSPEC_CACHE_URL") or f"redis://{s.cache.service}:{contracts.REDIS_PORT}/0"
        )
    return ServerConfig(
        model_uri=s.model_uri,
        model_name=s.model_name,
        tracking_uri=os.environ.get("MLFLOW_TRACKING_URI") or ir.registry.tracking_uri,
        accelerator=s.accelerator,
        port=s.port,
        max_batch_size=s.max_batch_size,
        max_batch_delay_ms=s.max_batch_delay_ms,
        latency_buckets=list(s.slo.histogram_buckets_seconds),
        cache_url=cache_url,
        cache_ttl_seconds=s.cache.ttl_seconds if s.cache else 600,
        prediction_log=s.prediction_log or None,
        variant=os.environ.get(contracts.VARIANT_ENV) or contracts.CHAMPION,
        sample_rate=s.sample_rate,
        features=list(ir.data.features),
    )
