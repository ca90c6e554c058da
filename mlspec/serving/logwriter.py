"""The prediction log's writer process: shared buffers in, Parquet files out.

The server (mlspec.serving.predlog) starts it with the shared buffers' file descriptors and two pipes. For
each filled buffer the server sends a `Shipment` (which buffer, its layout, how much it holds, and the few
model versions and traffic sources its codes stand for); the writer turns the buffer's columns
(mlspec.serving.logbuffer) into Arrow columns (one per feature, one row per input row), appends them to the
open file of the rows' hour, and answers `("done", buffer, rows written, rows dropped)`, after which the
server reuses the buffer:

    BASE/date=YYYY-MM-DD/hour=HH/<HHMMSS>-<id>.parquet      BASE a directory or any fsspec URL (s3://...)

`("rotate",)` closes every open file, which from then on the monitor reads; a file is also closed at
`max_file_bytes`, when the model's input layout changes, and when the server closes the pipe (or dies). A local
file is written under a hidden name and renamed when complete. A row group is one shipment's hour.

Encoding and writing Parquet here rather than on a thread of the server is what keeps the log's cost low:
on a busy two-core machine a background thread of the server that used 7% of a core cost its event loop 18%
(29% while holding the GIL), the same work in another process 3% (docs/serving.md, bench/serving.py).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import mmap
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from mlspec.serving import logbuffer

log = logging.getLogger("mlspec.serving")
TRANSPOSE_BLOCK = 1024  # rows transposed at a time: a block stays in cache (5x faster than one big transpose)


@dataclass
class Shipment:
    """A filled buffer's bookkeeping: which buffer, its layout, how many rows, requests and batches it holds,
    and the model versions and traffic sources its codes stand for."""

    buffer: int
    layout: logbuffer.Layout
    rows: int
    requests: int
    batches: int
    versions: list[str]
    sources: list[str]


@dataclass
class _OpenFile:
    path: str  # where it becomes visible
    temp: str  # where it is written
    handle: Any
    writer: Any
    schema: Any  # a file holds one schema: a new model layout starts a new file
    rows: int = 0


class LogFiles:
    """The open Parquet files, one per hour partition."""

    def __init__(self, base: str, variant: str, max_file_bytes: int) -> None:
        self.base = base.rstrip("/")
        self.variant = variant
        self.max_file_bytes = max_file_bytes
        self._files: dict[str, _OpenFile] = {}

    def write(self, shipment: Shipment, views: logbuffer.Views) -> tuple[int, int]:
        """Append a shipment's rows; returns (rows written, rows dropped)."""
        written = dropped = 0
        for partition, batch in _batches(shipment, views, self.variant):
            rows, lost = self._append(partition, batch)
            written, dropped = written + rows, dropped + lost
        for key, f in list(self._files.items()):
            if f.handle.tell() >= self.max_file_bytes:
                dropped += self.close(key)
        return written, dropped

    def close_all(self) -> int:
        """Close every file; returns the rows lost in files that could not be completed."""
        return sum(self.close(key) for key in list(self._files))

    def close(self, partition: str) -> int:
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
            return f.rows
        return 0

    def _append(self, partition: str, batch: Any) -> tuple[int, int]:
        f = self._files.get(partition)
        lost = 0
        if f is not None and not f.schema.equals(batch.schema):
            lost = self.close(partition)
            f = None
        try:
            if f is None:
                f = self._files[partition] = self._open(partition, batch)
            f.writer.write_batch(batch, row_group_size=batch.num_rows)
        except Exception as exc:  # a broken sink loses its rows, never the server
            earlier = f.rows if f else 0
            log.warning(
                "prediction log write under %s failed, %d rows dropped: %s",
                partition,
                batch.num_rows + earlier,
                exc,
            )
            self._discard(partition)
            return 0, lost + batch.num_rows + earlier
        f.rows += batch.num_rows
        return batch.num_rows, lost

    def _open(self, partition: str, batch: Any) -> _OpenFile:
        import fsspec
        import pyarrow.fs as pafs
        import pyarrow.parquet as pq
        from fsspec.implementations.local import LocalFileSystem

        first = (
            batch.column("ts")[0].value / 1000
        )  # the file is named after its first row, not the wall clock
        name = f"{time.strftime('%H%M%S', time.gmtime(first))}-{uuid.uuid4().hex[:12]}.parquet"
        fs, fs_path = fsspec.core.url_to_fs(f"{self.base}/{partition}/{name}")
        local = isinstance(fs, LocalFileSystem)
        # object stores publish a file only when it is complete; a local file is renamed when it is
        temp = f"{fs_path.rsplit('/', 1)[0]}/.{name}.tmp" if local else fs_path
        fs.makedirs(fs_path.rsplit("/", 1)[0], exist_ok=True)
        handle = pafs.LocalFileSystem().open_output_stream(temp) if local else fs.open(temp, "wb")
        # dictionary-encode the strings only (hashing random floats costs more than it saves); statistics for
        # ts only, which is what readers filter on
        writer = pq.ParquetWriter(
            handle,
            batch.schema,
            compression="snappy",  # random floats hardly compress; zstd would cost 2x the CPU for 10% less disk
            use_dictionary=["request_id", "model_version", "variant", "source"],
            write_statistics=["ts"],
        )
        return _OpenFile(fs_path, temp, handle, writer, batch.schema)

    def _discard(self, partition: str) -> None:
        f = self._files.pop(partition, None)
        if f is not None:
            with contextlib.suppress(Exception):  # already failing; the drop is counted
                f.handle.close()
            if f.temp != f.path and os.path.exists(f.temp):
                os.unlink(f.temp)


def _batches(shipment: Shipment, views: logbuffer.Views, variant: str) -> list[tuple[str, Any]]:
    """The shipment's rows as Arrow record batches, one per hour partition (requests arrive in time order)."""
    import pyarrow as pa

    n, per_batch = shipment.requests, views.batch_requests[: shipment.batches]
    ts = np.repeat(views.batch_ts[: shipment.batches], per_batch)  # per request, as are the others
    versions = np.repeat(views.batch_versions[: shipment.batches], per_batch)
    ends = views.request_ends[: n + 1]
    # over the shared buffer, as the rows are: Parquet has encoded them before the buffer is reused
    ids = pa.StringArray.from_buffers(n, pa.py_buffer(ends), pa.py_buffer(views.ids[: ends[-1]]))
    counts = views.request_rows[:n].astype(np.int64)
    hours = (ts // 3600).astype(np.int64)
    cuts = [0, *(np.flatnonzero(np.diff(hours)) + 1).tolist(), n]
    first_rows = np.concatenate(([0], np.cumsum(counts))).tolist()
    out = []
    for lo, hi in itertools.pairwise(cuts):
        stamp = time.gmtime(int(hours[lo]) * 3600)
        partition = f"date={time.strftime('%Y-%m-%d', stamp)}/hour={stamp.tm_hour:02d}"
        requests = _Requests(
            ts[lo:hi],
            ids.slice(lo, hi - lo),
            _Coded(versions[lo:hi], shipment.versions),
            _Coded(views.request_sources[lo:hi], shipment.sources),
        )
        rows = slice(first_rows[lo], first_rows[hi])
        batch = to_record_batch(
            requests, counts[lo:hi], shipment.layout, views.inputs[rows], views.outputs[rows], variant
        )
        out.append((partition, batch))
    return out


@dataclass
class _Coded:
    """A string per request as a code into a few distinct values."""

    codes: np.ndarray
    values: list[str]


@dataclass
class _Requests:
    ts: np.ndarray
    ids: Any  # pyarrow StringArray
    versions: _Coded
    sources: _Coded


def to_record_batch(
    requests: _Requests,
    counts: np.ndarray,
    layout: logbuffer.Layout,
    inputs: np.ndarray,
    outputs: np.ndarray,
    variant: str,
) -> Any:
    """Requests and their rows as a record batch: one row per input row, no Python loop per row or request."""
    import pyarrow as pa

    n = len(counts)
    owner = np.repeat(np.arange(n, dtype=np.int32), counts)

    def per_row(coded: _Coded) -> Any:
        # a dictionary of the distinct values: Parquet writes its indices as they are, instead of decoding
        # a per-request dictionary and hashing every row's string again (2.4x cheaper for these columns)
        indices = np.repeat(coded.codes.astype(np.int32), counts)  # int32, as dictionary_encode() gives
        return pa.DictionaryArray.from_arrays(pa.array(indices), pa.array(coded.values, type=pa.string()))

    rows = len(inputs)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    names, _, width = layout
    columns = {
        "ts": pa.array(
            np.repeat((requests.ts * 1000).astype(np.int64), counts), type=pa.timestamp("ms", tz="UTC")
        ),
        # dictionary-encoded: each id once per request
        "request_id": pa.DictionaryArray.from_arrays(pa.array(owner), requests.ids),
        "model_version": per_row(requests.versions),
        "variant": per_row(_Coded(np.zeros(n, dtype=np.int32), [variant])),
        "source": per_row(requests.sources),
        "row": pa.array((np.arange(rows) - np.repeat(starts, counts)).astype(np.int32)),
    }
    by_feature = np.empty((len(names), rows), dtype=inputs.dtype)
    for start in range(0, rows, TRANSPOSE_BLOCK):
        stop = min(start + TRANSPOSE_BLOCK, rows)
        by_feature[:, start:stop] = inputs[start:stop].T
    for j, name in enumerate(names):
        columns[name] = pa.array(by_feature[j])
    offsets = np.arange(0, rows * width + 1, width, dtype=np.int32)
    columns["outputs"] = pa.ListArray.from_arrays(pa.array(offsets), pa.array(outputs.ravel()))
    return pa.RecordBatch.from_pydict(columns)


def serve(
    shipments: Connection,
    answers: Connection,
    buffers: list[mmap.mmap],
    buffer_bytes: int,
    base: str,
    variant: str,
    max_file_bytes: int,
) -> None:
    """Write what arrives until the server closes the pipe; then close every file and answer what was lost."""
    files = LogFiles(base, variant, max_file_bytes)
    try:
        while True:
            try:
                message = shipments.recv()
            except EOFError:
                break
            if message == ("rotate",):
                answers.send(("lost", files.close_all()))
                continue
            views = logbuffer.views(buffers[message.buffer], message.layout, buffer_bytes)
            written, dropped = files.write(message, views)
            answers.send(("done", message.buffer, written, dropped))
    finally:
        with contextlib.suppress(OSError):
            answers.send(("lost", files.close_all()))
        answers.close()


def main() -> None:
    # The server's signals are not ours: a SIGTERM to the process group must not lose open files. The writer
    # finishes when the server closes the pipe, which it does on shutdown and which its death does too.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = json.loads(sys.argv[1])
    buffers = [mmap.mmap(fd, config["buffer_bytes"]) for fd in config["buffer_fds"]]
    serve(
        Connection(config["shipments_fd"], writable=False),
        Connection(config["answers_fd"], readable=False),
        buffers,
        config["buffer_bytes"],
        config["base"],
        config["variant"],
        config["max_file_bytes"],
    )


if __name__ == "__main__":
    main()
