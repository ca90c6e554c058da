"""Sampled prediction logging for monitoring: columnar Parquet, written in batches off the event loop.

The request path appends one tuple per sampled request to a deque: no lock, no copy, no encoding. A
background thread wakes every WAKE_S, turns what is pending into Arrow columns (one per feature, one row per
input row) and appends them to the open file of the record's hour:

    BASE/date=YYYY-MM-DD/hour=HH/<HHMMSS>-<id>.parquet      BASE a directory or any fsspec URL (s3://...)

A file is closed, and from then on readable by the monitor, after `rotate_s` seconds, at `max_file_bytes`, when
the hour or the model's input layout changes, and on shutdown; a local file is written under a hidden name
and renamed when complete. Row groups hold up to ROW_GROUP_ROWS rows. Columns (docs/serving.md):

    ts timestamp[ms, UTC], request_id, model_version, variant, source (strings), row int32,
    one column per model input feature (the input dtype), outputs list<float32>

Memory is bounded: past `max_pending_rows` rows waiting for the thread, records are dropped and counted
(mlspec_prediction_log_dropped_total), never blocking a request.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlspec.serving.metrics import Metrics

log = logging.getLogger("mlspec.serving")
WAKE_S = 0.5
ROW_GROUP_ROWS = 65_536
RESERVED = ("ts", "request_id", "model_version", "variant", "source", "row", "outputs")
DEFAULT_VARIANT = "champion"
DEFAULT_SOURCE = "live"


@dataclass(slots=True)
class _Record:
    ts: float
    request_id: str
    version: str
    source: str
    features: list[str] | None
    inputs: np.ndarray
    outputs: list[np.ndarray]


@dataclass
class _OpenFile:
    path: str  # where it becomes visible
    temp: str  # where it is written
    handle: Any
    writer: Any
    layout: tuple
    opened: float
    rows: int = 0
    pending: list = field(default_factory=list)  # record batches not yet in a row group
    pending_rows: int = 0


class PredictionLogger:
    def __init__(
        self,
        base: str,
        sample_rate: float,
        metrics: Metrics,
        *,
        variant: str = DEFAULT_VARIANT,
        rotate_s: float = 60.0,
        max_file_bytes: int = 128 * 2**20,
        max_pending_rows: int = 1_000_000,
        clock: Any = time.time,
    ) -> None:
        self.base = base.rstrip("/")
        self.sample_rate = sample_rate
        self.metrics = metrics
        self.variant = variant
        self.rotate_s = rotate_s
        self.max_file_bytes = max_file_bytes
        self.max_pending_rows = max_pending_rows
        self.clock = clock  # the records' timestamps (tests pin it)
        self._pending: deque[_Record] = deque()
        self._pending_rows = 0
        self._lock = threading.Lock()
        self._files: dict[str, _OpenFile] = {}
        self._stop = threading.Event()
        self._refused: set[tuple[str, ...]] = set()
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
        source: str = DEFAULT_SOURCE,
    ) -> None:
        """Never blocks and never copies: the record is encoded and written on the background thread."""
        rows = len(inputs)
        with self._lock:
            if self._pending_rows + rows > self.max_pending_rows:
                self.metrics.log_dropped.inc(rows)
                return
            self._pending_rows += rows
        self._pending.append(
            _Record(self.clock(), request_id, model_version, source, features, inputs, outputs)
        )

    def close(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    # --- the background thread ------------------------------------------------------------------------

    def _loop(self) -> None:
        # Pay the imports (pyarrow pulls in pandas lazily) now, at startup, not on the first flush under load.
        import fsspec  # noqa: F401
        import pyarrow.parquet  # noqa: F401

        one = np.zeros((1, 1), dtype=np.float32)
        _to_batch([_Record(0.0, "", "", "", ["x"], one, [one])], ("x",), "")
        wake = min(WAKE_S, self.rotate_s)
        while not self._stop.wait(wake):
            self._step(final=False)
        self._step(final=True)

    def _step(self, *, final: bool) -> None:
        records = []
        while self._pending:
            records.append(self._pending.popleft())
        if records:
            with self._lock:
                self._pending_rows -= sum(len(r.inputs) for r in records)
            for partition, batch in self._batches(records):
                self._append(partition, batch)
        now = time.monotonic()
        for key, f in list(self._files.items()):
            if final or now - f.opened >= self.rotate_s or f.handle.tell() >= self.max_file_bytes:
                self._close(key)

    def _batches(self, records: list[_Record]) -> list[tuple[str, Any]]:
        """Records grouped by hour partition and input layout, as Arrow record batches."""
        groups: dict[tuple, list[_Record]] = {}
        for r in records:
            names = tuple(r.features or (f"f{i}" for i in range(r.inputs.shape[1])))
            layout = (names, r.inputs.dtype.str)
            hour = int(r.ts // 3600)
            groups.setdefault((hour, layout), []).append(r)
        out = []
        for (hour, layout), group in groups.items():
            clash = sorted(set(layout[0]) & set(RESERVED))
            if clash:
                if layout[0] not in self._refused:
                    self._refused.add(layout[0])
                    log.error("prediction log: feature names %s are reserved columns; not logging", clash)
                self.metrics.log_dropped.inc(sum(len(r.inputs) for r in group))
                continue
            stamp = time.gmtime(hour * 3600)
            partition = f"date={time.strftime('%Y-%m-%d', stamp)}/hour={stamp.tm_hour:02d}"
            out.append((partition, _to_batch(group, layout[0], self.variant)))
        return out

    def _append(self, partition: str, batch: Any) -> None:
        layout = tuple(batch.schema.names), tuple(str(t) for t in batch.schema.types)
        f = self._files.get(partition)
        if f is not None and f.layout != layout:
            self._close(partition)
            f = None
        try:
            if f is None:
                f = self._files[partition] = self._open(partition, batch.schema, layout)
            f.pending.append(batch)
            f.pending_rows += batch.num_rows
            if f.pending_rows >= ROW_GROUP_ROWS:
                self._write_group(f)
        except Exception as exc:  # a broken sink must never take the server down
            log.warning(
                "prediction log write under %s failed, %d rows dropped: %s", partition, batch.num_rows, exc
            )
            self.metrics.log_dropped.inc(batch.num_rows)
            self._discard(partition)

    def _open(self, partition: str, schema: Any, layout: tuple) -> _OpenFile:
        import fsspec
        import pyarrow.parquet as pq

        name = f"{time.strftime('%H%M%S', time.gmtime(self.clock()))}-{uuid.uuid4().hex[:12]}.parquet"
        path = f"{self.base}/{partition}/{name}"
        from fsspec.implementations.local import LocalFileSystem

        fs, fs_path = fsspec.core.url_to_fs(path)
        # object stores publish a file only when it is complete; a local file is renamed when it is
        temp = f"{fs_path.rsplit('/', 1)[0]}/.{name}.tmp" if isinstance(fs, LocalFileSystem) else fs_path
        fs.makedirs(fs_path.rsplit("/", 1)[0], exist_ok=True)
        handle = fs.open(temp, "wb")
        # dictionary-encode the strings only (hashing random floats costs more than it saves); statistics for
        # ts only, which is what readers filter on
        writer = pq.ParquetWriter(
            handle,
            schema,
            compression="zstd",
            compression_level=1,
            use_dictionary=["request_id", "model_version", "variant", "source"],
            write_statistics=["ts"],
        )
        return _OpenFile(fs_path, temp, handle, writer, layout, time.monotonic())

    def _write_group(self, f: _OpenFile) -> None:
        import pyarrow as pa

        if not f.pending:
            return
        f.writer.write_table(pa.Table.from_batches(f.pending), row_group_size=ROW_GROUP_ROWS)
        f.rows += f.pending_rows
        self.metrics.log_written.inc(f.pending_rows)
        f.pending, f.pending_rows = [], 0

    def _close(self, partition: str) -> None:
        import fsspec

        f = self._files.pop(partition)
        try:
            self._write_group(f)
            f.writer.close()
            f.handle.close()
            if f.temp != f.path:
                fs, _ = fsspec.core.url_to_fs(self.base)
                fs.mv(f.temp, f.path)
        except Exception as exc:
            log.warning(
                "prediction log file %s could not be completed, %d rows dropped: %s",
                f.path,
                f.pending_rows + f.rows,
                exc,
            )
            self.metrics.log_dropped.inc(f.pending_rows)

    def _discard(self, partition: str) -> None:
        f = self._files.pop(partition, None)
        if f is not None:
            with contextlib.suppress(Exception):  # already failing; the drop is counted
                f.handle.close()
            if f.temp != f.path and os.path.exists(f.temp):
                os.unlink(f.temp)


def _to_batch(records: list[_Record], names: tuple[str, ...], variant: str) -> Any:
    """One record batch, one row per input row; per-request values repeated with `take`, no Python loop per row."""
    import pyarrow as pa

    counts = np.fromiter((len(r.inputs) for r in records), dtype=np.int64, count=len(records))
    owner = pa.array(np.repeat(np.arange(len(records)), counts))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    inputs = np.concatenate([r.inputs for r in records])
    outputs = _outputs(records, counts, inputs.shape[0])
    ts_ms = np.fromiter((r.ts * 1000 for r in records), dtype=np.float64, count=len(records)).astype(np.int64)
    columns = {
        "ts": pa.array(np.repeat(ts_ms, counts), type=pa.timestamp("ms", tz="UTC")),
        "request_id": pa.array([r.request_id for r in records], type=pa.string()).take(owner),
        "model_version": pa.array([r.version for r in records], type=pa.string()).take(owner),
        "variant": pa.array([variant] * len(records), type=pa.string()).take(owner),
        "source": pa.array([r.source for r in records], type=pa.string()).take(owner),
        "row": pa.array((np.arange(inputs.shape[0]) - np.repeat(starts, counts)).astype(np.int32)),
    }
    by_feature = np.ascontiguousarray(inputs.T)  # one transposing copy, then a zero-copy array per column
    for j, name in enumerate(names):
        columns[name] = pa.array(by_feature[j])
    columns["outputs"] = outputs
    return pa.RecordBatch.from_pydict(columns)


def _outputs(records: list[_Record], counts: np.ndarray, n: int) -> Any:
    """The model outputs of each input row, flattened, as list<float32>."""
    import pyarrow as pa

    if all(len(r.outputs) == 1 for r in records):  # the usual case: one output tensor, one shape
        try:
            flat = np.concatenate([r.outputs[0] for r in records])
        except ValueError:
            flat = None
        if flat is not None and flat.shape[0] == n:
            matrix = flat.reshape(n, -1)
            offsets = np.arange(0, matrix.size + 1, matrix.shape[1], dtype=np.int32)
            return pa.ListArray.from_arrays(pa.array(offsets), pa.array(matrix.astype(np.float32).ravel()))
    rows = [np.concatenate([o.reshape(len(r.inputs), -1) for o in r.outputs], axis=1) for r in records]
    widths = np.repeat(np.fromiter((o.shape[1] for o in rows), dtype=np.int64, count=len(rows)), counts)
    return pa.ListArray.from_arrays(
        pa.array(np.concatenate(([0], np.cumsum(widths))).astype(np.int32)),
        pa.array(np.concatenate([o.ravel() for o in rows]).astype(np.float32)),
    )
