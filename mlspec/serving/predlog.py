"""Sampled prediction logging for monitoring, written as JSONL batches by a background thread.

Each line: {"ts": ISO-8601 UTC, "request_id", "model_version", "row", "inputs": {feature: value},
"outputs": [...]}, one line per input row. Files land in BASE/date=YYYY-MM-DD/<time>-<uuid>.jsonl, BASE being
a local directory or any fsspec URL (s3://...). The request path only enqueues; a full queue drops and counts.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np

from mlspec.serving.metrics import Metrics

log = logging.getLogger("mlspec.serving")
_STOP = object()


class PredictionLogger:
    def __init__(
        self,
        base: str,
        sample_rate: float,
        metrics: Metrics,
        *,
        batch_records: int = 1000,
        flush_interval_s: float = 5.0,
        max_queue: int = 10_000,
    ) -> None:
        self.base = base.rstrip("/")
        self.sample_rate = sample_rate
        self.metrics = metrics
        self.batch_records = batch_records
        self.flush_interval_s = flush_interval_s
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._loop, name="prediction-log", daemon=True)
        self._thread.start()

    def sampled(self) -> bool:
        return self.sample_rate >= 1.0 or random.random() < self.sample_rate

    def submit(
        self,
        request_id: str,
        model_version: str,
        features: list[str] | None,
        inputs: np.ndarray,
        outputs: list[np.ndarray],
    ) -> None:
        """Never blocks: the record is built and written on the background thread."""
        try:
            self._queue.put_nowait((time.time(), request_id, model_version, features, inputs, outputs))
        except queue.Full:
            self.metrics.log_dropped.inc(len(inputs))

    def close(self, timeout: float = 10.0) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _loop(self) -> None:
        lines: list[str] = []
        deadline = time.monotonic() + self.flush_interval_s
        while True:
            try:
                item = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                item = None
            if item is _STOP:
                self._flush(lines)
                return
            if item is not None:
                lines.extend(_records(*item))
            if len(lines) >= self.batch_records or time.monotonic() >= deadline:
                self._flush(lines)
                lines = []
                deadline = time.monotonic() + self.flush_interval_s

    def _flush(self, lines: list[str]) -> None:
        if not lines:
            return
        import fsspec

        now = datetime.now(UTC)
        path = f"{self.base}/date={now:%Y-%m-%d}/{now:%H%M%S%f}-{uuid.uuid4().hex[:12]}.jsonl"
        try:
            fs, fs_path = fsspec.core.url_to_fs(path)
            fs.makedirs(fs_path.rsplit("/", 1)[0], exist_ok=True)
            with fs.open(fs_path, "w") as fh:
                fh.write("\n".join(lines) + "\n")
            self.metrics.log_written.inc(len(lines))
        except Exception as exc:  # a broken sink must never take the server down
            log.warning("prediction log write to %s failed, %d records dropped: %s", path, len(lines), exc)
            self.metrics.log_dropped.inc(len(lines))


def _records(
    ts: float,
    request_id: str,
    version: str,
    features: list[str] | None,
    inputs: np.ndarray,
    outputs: list[np.ndarray],
) -> list[str]:
    stamp = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    names = features or [f"f{i}" for i in range(inputs.shape[1])]
    rows = inputs.tolist()
    outs = [o.reshape(len(rows), -1).tolist() for o in outputs]
    result = []
    for i, row in enumerate(rows):
        flat = [v for out in outs for v in out[i]]
        result.append(
            json.dumps(
                {
                    "ts": stamp,
                    "request_id": request_id,
                    "model_version": version,
                    "row": i,
                    "inputs": dict(zip(names, row, strict=True)),
                    "outputs": flat,
                }
            )
        )
    return result
