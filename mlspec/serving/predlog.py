"""Sampled prediction logging for monitoring: columnar Parquet, written in batches off the event loop.

The request path copies the request's input rows and outputs into a preallocated buffer (two small numpy
copies, so the request's own arrays are freed at once) and notes its id and time. A background thread wakes
every WAKE_S, takes the filled buffers, turns them into Arrow columns (one per feature, one row per input row)
and appends them to the open file of the rows' hour:

    BASE/date=YYYY-MM-DD/hour=HH/<HHMMSS>-<id>.parquet      BASE a directory or any fsspec URL (s3://...)

Files are closed, and from then on readable by the monitor, every `rotate_s` seconds, at `max_file_bytes`, when
the model's input layout changes, and on shutdown; a local file is written under a hidden name and renamed
when complete. A row group is one buffer (up to BUFFER_ROWS rows). Columns (docs/serving.md):

    ts timestamp[ms, UTC], request_id, model_version, variant, source (dictionary-encoded strings), row int32,
    one column per model input feature (the input dtype), outputs list<float32>

Memory is bounded: past `max_pending_rows` rows waiting for the thread, records are dropped and counted
(mlspec_prediction_log_dropped_total), never blocking a request. Buffers are reused.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlspec import contracts
from mlspec.serving.metrics import Metrics

log = logging.getLogger("mlspec.serving")
WAKE_S = 0.5
BUFFER_ROWS = 65_536  # a buffer becomes one row group
SPARE_BUFFERS = 2
RESERVED = ("ts", "request_id", "model_version", "variant", "source", "row", "outputs")
DEFAULT_VARIANT = contracts.CHAMPION
DEFAULT_SOURCE = contracts.LIVE_SOURCE


class _Buffer:
    """Input rows and outputs of consecutive requests with one layout, and who asked when."""

    def __init__(self, layout: tuple[tuple[str, ...], str, int], capacity: int) -> None:
        names, dtype, width = layout
        self.layout = layout
        self.capacity = capacity
        self.inputs = np.empty(
            (capacity, len(names)), dtype=np.dtype(dtype)
        )  # row-major: a plain copy per request
        self.outputs = np.empty((capacity, width), dtype=np.float32)
        self.rows = 0
        # per request, in arrival order (parallel lists: cheap to append, cheap to hand to numpy and Arrow)
        self.ts: list[float] = []
        self.ids: list[str] = []
        self.versions: list[str] = []
        self.sources: list[str] = []
        self.counts: list[int] = []

    def fits(self, layout: tuple, rows: int) -> bool:
        return layout == self.layout and self.rows + rows <= self.capacity

    def add(
        self, ts: float, request_id: str, version: str, source: str, x: np.ndarray, out: np.ndarray
    ) -> None:
        n = len(x)
        self.inputs[self.rows : self.rows + n] = x
        self.outputs[self.rows : self.rows + n] = out
        self.rows += n
        self.ts.append(ts)
        self.ids.append(request_id)
        self.versions.append(version)
        self.sources.append(source)
        self.counts.append(n)

    def reset(self) -> _Buffer:
        self.rows = 0
        self.ts, self.ids, self.versions, self.sources, self.counts = [], [], [], [], []
        return self


@dataclass
class _OpenFile:
    path: str  # where it becomes visible
    temp: str  # where it is written
    handle: Any
    writer: Any
    layout: tuple
    rows: int = 0


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
        self._lock = threading.Lock()  # guards the buffers below, shared with the writer thread
        self._current: _Buffer | None = None
        self._full: list[_Buffer] = []
        self._spare: list[_Buffer] = []
        self._pending_rows = 0
        self._files: dict[str, _OpenFile] = {}
        self._stop = threading.Event()
        self._rotated = time.monotonic()
        self._refused: set[tuple[str, ...]] = set()
        self._features: list[str] | None = None  # the model's feature list last seen, and its columns
        self._columns: tuple[str, ...] | None = None
        # Pay the imports (pyarrow pulls in pandas lazily) here, while the server starts, not under load.
        import fsspec  # noqa: F401
        import pyarrow.parquet  # noqa: F401

        warm = _Buffer((("x",), "<f4", 1), 1)
        warm.add(0.0, "", "", "", np.zeros((1, 1), dtype=np.float32), np.zeros((1, 1), dtype=np.float32))
        _to_batch(warm, "", 0, 1, 0, 1)
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
        """Never blocks: two small copies into a buffer; encoding and writing happen on the background thread."""
        rows = len(inputs)
        names = self._names(features, inputs.shape[1])
        if names is None:
            self.metrics.log_dropped.inc(rows)
            return
        out = (
            outputs[0].reshape(rows, -1)
            if len(outputs) == 1
            else np.hstack([o.reshape(rows, -1) for o in outputs])
        )
        layout = (names, inputs.dtype.str, out.shape[1])
        with self._lock:
            if self._pending_rows + rows > self.max_pending_rows:
                self.metrics.log_dropped.inc(rows)
                return
            buf = self._current
            if buf is None or not buf.fits(layout, rows):
                if buf is not None:
                    self._full.append(buf)
                buf = self._current = self._buffer(layout, rows)
            buf.add(self.clock(), request_id, model_version, source, inputs, out)
            self._pending_rows += rows

    def _names(self, features: list[str] | None, width: int) -> tuple[str, ...] | None:
        """The feature columns, None when a name is reserved; worked out once per model (its list object)."""
        if features is not self._features or features is None:
            names = tuple(features) if features else tuple(f"f{i}" for i in range(width))
            clash = sorted(set(names) & set(RESERVED))
            if clash and names not in self._refused:
                self._refused.add(names)
                log.error("prediction log: feature names %s are reserved columns; not logging", clash)
            self._features, self._columns = features, None if clash else names
        return self._columns

    def _buffer(self, layout: tuple, rows: int) -> _Buffer:
        """A spare buffer of this layout, else a new one (under the lock)."""
        for i, spare in enumerate(self._spare):
            if spare.layout == layout and spare.capacity >= rows:
                return self._spare.pop(i)
        return _Buffer(layout, max(BUFFER_ROWS, rows))

    def close(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    # --- the background thread ------------------------------------------------------------------------

    def _loop(self) -> None:
        wake = min(WAKE_S, self.rotate_s)
        while not self._stop.wait(wake):
            self._step(final=False)
        self._step(final=True)

    def _step(self, *, final: bool) -> None:
        now = time.monotonic()
        rotate = final or now - self._rotated >= self.rotate_s
        with self._lock:
            ready, self._full = self._full, []
            if rotate and self._current is not None and self._current.rows:
                ready.append(self._current)  # a partly filled buffer waits for more rows until rotation
                self._current = None
        for buf in ready:
            for partition, batch in self._batches(buf):
                self._append(partition, batch)
            with self._lock:
                self._pending_rows -= buf.rows
                if len(self._spare) < SPARE_BUFFERS and buf.capacity == BUFFER_ROWS:
                    self._spare.append(buf.reset())
        for key, f in list(self._files.items()):
            if rotate or f.handle.tell() >= self.max_file_bytes:
                self._close(key)
        if rotate:
            self._rotated = now

    def _batches(self, buf: _Buffer) -> list[tuple[str, Any]]:
        """The buffer's rows as Arrow record batches, one per hour partition (requests arrive in time order)."""
        hours = (np.asarray(buf.ts) // 3600).astype(np.int64)
        cuts = [0, *(np.flatnonzero(np.diff(hours)) + 1).tolist(), len(hours)]
        first_rows = np.concatenate(([0], np.cumsum(buf.counts))).tolist()
        out = []
        for lo, hi in itertools.pairwise(cuts):
            stamp = time.gmtime(int(hours[lo]) * 3600)
            partition = f"date={time.strftime('%Y-%m-%d', stamp)}/hour={stamp.tm_hour:02d}"
            out.append((partition, _to_batch(buf, self.variant, lo, hi, first_rows[lo], first_rows[hi])))
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
            f.writer.write_batch(batch, row_group_size=BUFFER_ROWS)
            f.rows += batch.num_rows
            self.metrics.log_written.inc(batch.num_rows)
        except Exception as exc:  # a broken sink must never take the server down
            log.warning(
                "prediction log write under %s failed, %d rows dropped: %s",
                partition,
                batch.num_rows + (f.rows if f else 0),
                exc,
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
        if isinstance(fs, LocalFileSystem):
            import pyarrow.fs as pafs

            # Arrow's own file: page writes never take the GIL from the request path
            handle = pafs.LocalFileSystem().open_output_stream(temp)
        else:
            handle = fs.open(temp, "wb")
        # dictionary-encode the strings only (hashing random floats costs more than it saves); statistics for
        # ts only, which is what readers filter on
        writer = pq.ParquetWriter(
            handle,
            schema,
            compression="snappy",  # random floats hardly compress; zstd would cost 2x the CPU for 10% less disk
            use_dictionary=["request_id", "model_version", "variant", "source"],
            write_statistics=["ts"],
        )
        return _OpenFile(fs_path, temp, handle, writer, layout)

    def _close(self, partition: str) -> None:
        import fsspec

        f = self._files.pop(partition)
        try:
            f.writer.close()
            f.handle.close()
            if f.temp != f.path:
                fs, _ = fsspec.core.url_to_fs(self.base)
                fs.mv(f.temp, f.path)
        except Exception as exc:
            log.warning(
                "prediction log file %s could not be completed, %d rows lost: %s", f.path, f.rows, exc
            )
            self.metrics.log_dropped.inc(f.rows)

    def _discard(self, partition: str) -> None:
        f = self._files.pop(partition, None)
        if f is not None:
            with contextlib.suppress(Exception):  # already failing; the drop is counted
                f.handle.close()
            if f.temp != f.path and os.path.exists(f.temp):
                os.unlink(f.temp)


def _to_batch(buf: _Buffer, variant: str, lo: int, hi: int, row_lo: int, row_hi: int) -> Any:
    """Requests lo..hi (rows row_lo..row_hi) as a record batch: one row per input row, no Python loop per row."""
    import pyarrow as pa

    counts = np.asarray(buf.counts[lo:hi], dtype=np.int64)
    owner = pa.array(np.repeat(np.arange(hi - lo, dtype=np.int32), counts))

    def per_request(values: list[str]) -> Any:  # dictionary-encoded: each string once per request
        return pa.DictionaryArray.from_arrays(owner, pa.array(values, type=pa.string()))

    rows = row_hi - row_lo
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    ts_ms = (np.asarray(buf.ts[lo:hi]) * 1000).astype(np.int64)
    names, _, width = buf.layout
    columns = {
        "ts": pa.array(np.repeat(ts_ms, counts), type=pa.timestamp("ms", tz="UTC")),
        "request_id": per_request(buf.ids[lo:hi]),
        "model_version": per_request(buf.versions[lo:hi]),
        "variant": per_request([variant] * (hi - lo)),
        "source": per_request(buf.sources[lo:hi]),
        "row": pa.array((np.arange(rows) - np.repeat(starts, counts)).astype(np.int32)),
    }
    by_feature = np.ascontiguousarray(
        buf.inputs[row_lo:row_hi].T
    )  # one transposing copy, off the request path
    for j, name in enumerate(names):
        columns[name] = pa.array(by_feature[j])
    offsets = np.arange(0, rows * width + 1, width, dtype=np.int32)
    columns["outputs"] = pa.ListArray.from_arrays(
        pa.array(offsets), pa.array(buf.outputs[row_lo:row_hi].ravel())
    )
    return pa.RecordBatch.from_pydict(columns)
