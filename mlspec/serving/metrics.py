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
            [contracts.LABEL_ROUTE],
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
        self.cache_hits = Counter(
            contracts.counter_base(contracts.CACHE_HITS_TOTAL), "Cache hits.", registry=r
        )
        self.cache_misses = Counter(
            contracts.counter_base(contracts.CACHE_MISSES_TOTAL), "Cache misses.", registry=r
        )
        self.cache_errors = Counter(
            contracts.counter_base(contracts.CACHE_ERRORS_TOTAL),
            "Cache operations that failed (served uncached).",
            registry=r,
        )
        self.reloads = Counter(
            contracts.counter_base(contracts.MODEL_RELOADS_TOTAL),
            "Model hot reloads by outcome.",
            ["outcome"],
            registry=r,
        )
        self.log_dropped = Counter(
            contracts.counter_base(contracts.PREDICTION_LOG_DROPPED_TOTAL),
            "Prediction log records dropped.",
            registry=r,
        )
        self.log_written = Counter(
            contracts.counter_base(contracts.PREDICTION_LOG_RECORDS_TOTAL),
            "Prediction log records written.",
            registry=r,
        )
        self.connections_closed = Counter(
            contracts.counter_base(contracts.CONNECTIONS_CLOSED_TOTAL),
            "Connections the server closed to protect itself: header_timeout, evicted, refused.",
            ["reason"],
            registry=r,
        )

    def set_model(self, name: str, version: str) -> None:
        self.model_info.clear()
        self.model_info.labels(model=name, version=version).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
