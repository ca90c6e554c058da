"""Prometheus metrics of one server; a private registry so several servers can live in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from mlspec import contracts

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self, buckets: list[float], max_batch_size: int) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.latency = Histogram(
            contracts.REQUEST_DURATION,
            "Inference request latency.",
            ["route"],
            buckets=buckets,
            registry=r,
        )
        self.requests = Counter(
            contracts.counter_base(contracts.REQUESTS_TOTAL),
            "Requests by route and HTTP status code.",
            [contracts.LABEL_ROUTE, contracts.LABEL_CODE],
            registry=r,
        )
        batch_buckets = sorted({1, 2, 4, 8, 16, 32, 64, 128, 256, max_batch_size})
        self.batch_size = Histogram(
            contracts.BATCH_SIZE_ROWS, "Rows per ONNX Runtime call.", buckets=batch_buckets, registry=r
        )
        self.model_info = Gauge(
            contracts.MODEL_INFO,
            "The model version being served (1 = active).",
            ["model", "version"],
            registry=r,
        )
        self.in_flight = Gauge(
            contracts.REQUESTS_IN_FLIGHT, "Requests received and not yet answered.", registry=r
        )
        self.cache_hits = Counter("mlspec_cache_hits", "Cache hits.", registry=r)
        self.cache_misses = Counter("mlspec_cache_misses", "Cache misses.", registry=r)
        self.cache_errors = Counter(
            "mlspec_cache_errors", "Cache operations that failed (served uncached).", registry=r
        )
        self.reloads = Counter(
            "mlspec_model_reloads", "Model hot reloads by outcome.", ["outcome"], registry=r
        )
        self.log_dropped = Counter(
            "mlspec_prediction_log_dropped", "Prediction log records dropped.", registry=r
        )
        self.log_written = Counter(
            "mlspec_prediction_log_records", "Prediction log records written.", registry=r
        )
        self.connections_closed = Counter(
            "mlspec_connections_closed",
            "Connections the server closed to protect itself: header_timeout, evicted, refused.",
            ["reason"],
            registry=r,
        )

    def set_model(self, name: str, version: str) -> None:
        self.model_info.clear()
        self.model_info.labels(model=name, version=version).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
