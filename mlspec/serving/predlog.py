"""Sampled prediction logging for monitoring: the server's side. Rows go to shared buffers; a writer process
(mlspec.serving.logwriter) turns them into Parquet.

The micro-batcher hands over its answered inference batches many at a time (mlspec.serving.batcher): per
batch its input matrix and outputs, and each request's id, traffic source and row count. They are copied into
the current shared buffer, column by column (mlspec.serving.logbuffer): two numpy copies per batch, the ids
as one UTF-8 block, the rest a few typed-memoryview writes; nothing per request outlives the hand-over, so the
server keeps no Python object per logged request. A filled buffer's bookkeeping (a few numbers and the
distinct model versions and sources) goes to the writer process over a pipe (non-blocking, from the server's
event loop: no thread of the server takes the GIL for the log); the writer answers when the buffer is written
and it is reused. Every `rotate_s` the partly filled buffer is shipped too and the writer closes its files,
which the monitor then reads (docs/serving.md has the layout and columns). Callers without an event loop
(tests, tools) ship synchronously and call `tick()` for the rotation.

The log's memory is fixed (`buffers` x `buffer_bytes` of shared memory): when every buffer is full or being
written, records are dropped and counted (mlspec_prediction_log_dropped_total), never blocking a request. If
the writer process dies, its buffers' rows are counted as dropped and a new one is started.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import pickle
import random
import struct
import subprocess
import sys
import time
from array import array
from itertools import accumulate
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from mlspec import contracts
from mlspec.serving import logbuffer
from mlspec.serving.logbuffer import LoggedBatch
from mlspec.serving.logwriter import Shipment
from mlspec.serving.metrics import Metrics

log = logging.getLogger("mlspec.serving")
WAKE_S = 0.5
RESTART_AFTER_S = 5.0  # a writer that keeps dying is not restarted in a tight loop
PIPE_BYTES = 2**20  # a shipment's bookkeeping in a few writes (Linux's default pipe holds 64 KiB)
RESERVED = ("ts", "request_id", "model_version", "variant", "source", "row", "outputs")
DEFAULT_VARIANT = contracts.CHAMPION
DEFAULT_SOURCE = contracts.LIVE_SOURCE


class _Buffer:
    """One shared buffer: consecutive batches of one layout, and who asked when."""

    def __init__(self, index: int, fd: int, memory: Any, size: int) -> None:
        self.index, self.fd, self.memory, self.size = index, fd, memory, size
        self.layout: logbuffer.Layout | None = None
        self.capacity = logbuffer.Capacity(0, 0)
        self.start(None)

    def start(self, layout: logbuffer.Layout | None) -> _Buffer:
        if layout is not None and layout != self.layout:
            self.layout, self.capacity = layout, logbuffer.capacity(layout, self.size)
            v = logbuffer.views(self.memory, layout, self.size)
            self.inputs, self.outputs = v.inputs, v.outputs
            # memoryviews: a few elements from Python cost far less through them than through numpy
            self.batch_ts = v.batch_ts  # a float: typed memoryviews take ints only
            self.batch_requests, self.batch_versions = v.batch_requests.data, v.batch_versions.data
            self.request_ends, self.request_rows, self.request_sources = (
                v.request_ends.data,
                v.request_rows.data,
                v.request_sources.data,
            )
            self.ids = v.ids.data
            self.request_ends[0] = 0
        self.rows = self.requests = self.batches = 0
        self.versions: dict[str, int] = {}
        self.sources: dict[str, int] = {}
        return self

    def fits(self, layout: logbuffer.Layout, rows: int, requests: int, id_bytes: int) -> bool:
        return (
            layout == self.layout
            and self.rows + rows <= self.capacity.rows
            and self.requests + requests <= self.capacity.requests
            and self.request_ends[self.requests] + id_bytes <= len(self.ids)
        )

    def add(
        self,
        ts: float,
        version: str,
        x: np.ndarray,
        out: np.ndarray,
        ids: list[bytes],
        sources: list[str],
        rows: list[int],
    ) -> None:
        start, self.rows = self.rows, self.rows + len(x)
        self.inputs[start : self.rows] = x
        self.outputs[start : self.rows] = out
        b, self.batches = self.batches, self.batches + 1
        self.batch_ts[b] = ts
        self.batch_requests[b] = len(ids)
        self.batch_versions[b] = self.versions.setdefault(version, len(self.versions))
        first, self.requests = self.requests, self.requests + len(ids)
        end = self.request_ends[first]
        codes = self.sources
        if len(ids) == 1:  # a lightly loaded server's batches, and every request of max_batch_size rows
            # (building arrays for one value costs more than the rest of the copy)
            self.ids[end : end + len(ids[0])] = ids[0]
            self.request_ends[first + 1] = end + len(ids[0])
            self.request_rows[first] = rows[0]
            self.request_sources[first] = codes.setdefault(sources[0], len(codes))
            return
        blob = b"".join(ids)
        self.ids[end : end + len(blob)] = blob
        ends = accumulate(map(len, ids), initial=end)
        next(ends)  # the first request's start, already there
        self.request_ends[first + 1 : self.requests + 1] = array("i", ends)
        self.request_rows[first : self.requests] = array("i", rows)
        self.request_sources[first : self.requests] = array(
            "h", [codes.setdefault(s, len(codes)) for s in sources]
        )

    def shipment(self) -> Shipment:
        assert self.layout is not None
        return Shipment(
            self.index,
            self.layout,
            self.rows,
            self.requests,
            self.batches,
            list(self.versions),
            list(self.sources),
        )


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
        buffers: int = logbuffer.BUFFERS,
        buffer_bytes: int = logbuffer.BUFFER_BYTES,
        clock: Any = time.time,
    ) -> None:
        self.base = base.rstrip("/")
        self.sample_rate = sample_rate
        self.metrics = metrics
        self.variant = variant
        self.rotate_s = rotate_s
        self.max_file_bytes = max_file_bytes
        self.buffer_bytes = buffer_bytes
        self.clock = clock  # the records' timestamps (tests pin it)
        self._buffers = [_Buffer(i, *logbuffer.create(buffer_bytes), buffer_bytes) for i in range(buffers)]
        self._free = list(reversed(self._buffers))
        self._current: _Buffer | None = None
        self._in_flight: dict[int, _Buffer] = {}
        self._refused: set[tuple[str, ...]] = set()
        self._too_big = False
        # the model's feature list (or, unnamed, its width) last seen, and its columns
        self._seen: tuple[list[str] | None, int] | None = None
        self._columns: tuple[str, ...] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._outbox = bytearray()  # framed messages the pipe has not taken yet (attached only)
        self._rotated = time.monotonic()
        self._process: subprocess.Popen | None = None
        self._shipments: int | None = None  # the pipe's write end
        self._answers: Connection | None = None
        self._restart_at = 0.0
        self._start_writer()

    def sampled(self) -> bool:
        return self.sample_rate >= 1.0 or random.random() < self.sample_rate

    # --- on the event loop ----------------------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Ship, read the writer's answers and rotate on `loop`, never blocking it."""
        self._loop = loop
        self._watch()
        self._timer = loop.call_later(WAKE_S, self._on_timer)

    def detach(self) -> None:
        """Back to shipping synchronously (on the loop, before `close` runs elsewhere)."""
        if self._loop is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._unwatch()
        self._loop = None
        if self._shipments is not None:
            os.set_blocking(self._shipments, True)
            self._flush()

    def _on_timer(self) -> None:
        self.tick()
        if self._loop is not None:
            self._timer = self._loop.call_later(WAKE_S, self._on_timer)

    def _watch(self) -> None:
        if self._loop is not None and self._answers is not None and self._shipments is not None:
            self._loop.add_reader(self._answers.fileno(), self._read_answers)
            os.set_blocking(self._shipments, False)

    def _unwatch(self) -> None:
        if self._loop is not None:
            if self._answers is not None:
                self._loop.remove_reader(self._answers.fileno())
            if self._shipments is not None:
                self._loop.remove_writer(self._shipments)

    # --- the request path -----------------------------------------------------------------------------

    def submit(
        self,
        request_id: str,
        model_version: str,
        features: list[str] | None,
        inputs: np.ndarray,
        outputs: list[np.ndarray],
        source: str = DEFAULT_SOURCE,
    ) -> None:
        """One request's rows (a cache hit, or a caller without a batcher)."""
        self.submit_batches(
            [LoggedBatch(model_version, features, inputs, outputs, [request_id], [source], [len(inputs)])]
        )

    def submit_batches(self, batches: list[LoggedBatch]) -> None:
        """Answered inference batches: two copies each into a shared buffer, and their requests' ids, sources
        and row counts; a filled buffer is shipped without waiting for the writer."""
        for batch in batches:
            self._add(batch)

    def _add(self, batch: LoggedBatch) -> None:
        inputs, outputs = batch.inputs, batch.outputs
        rows = len(inputs)
        names = self._names(batch.features, inputs.shape[1])
        if names is None:
            self.metrics.log_dropped.inc(rows)
            return
        out = (
            outputs[0].reshape(rows, -1)
            if len(outputs) == 1
            else np.hstack([o.reshape(rows, -1) for o in outputs])
        )
        layout = (names, inputs.dtype.str, out.shape[1])
        ids = [i.encode() for i in batch.ids]
        id_bytes = sum(map(len, ids))
        requests = len(ids)
        buf = self._current
        if buf is None or not buf.fits(layout, rows, requests, id_bytes):
            buf = self._next_buffer(layout, rows, requests, id_bytes)
            if buf is None:
                self.metrics.log_dropped.inc(rows)
                return
        buf.add(self.clock(), batch.model_version, inputs, out, ids, batch.sources, batch.rows)

    def _next_buffer(
        self, layout: logbuffer.Layout, rows: int, requests: int, id_bytes: int
    ) -> _Buffer | None:
        """Ship the current buffer and start a free one; None: drop the batch."""
        if self._current is not None:
            if self._current.rows:
                self._ship(self._current)
            else:
                self._free.append(self._current)
            self._current = None
        if not self._free:
            return None
        buf = self._free.pop().start(layout)
        if not buf.fits(layout, rows, requests, id_bytes):
            if not self._too_big:
                self._too_big = True
                log.error(
                    "prediction log: a batch of %d rows, %d requests and %d bytes of request ids exceeds a "
                    "buffer (%d rows, %d requests, %d bytes of this model); not logged",
                    rows,
                    requests,
                    id_bytes,
                    buf.capacity.rows,
                    buf.capacity.requests,
                    len(buf.ids),
                )
            self._free.append(buf)
            return None
        self._current = buf
        return buf

    def _names(self, features: list[str] | None, width: int) -> tuple[str, ...] | None:
        """The feature columns, None when a name is reserved; worked out once per model (its list object)."""
        seen = self._seen
        if seen is not None and seen[0] is features and seen[1] == width:
            return self._columns
        names = tuple(features) if features else tuple(f"f{i}" for i in range(width))
        clash = sorted(set(names) & set(RESERVED))
        if clash and names not in self._refused:
            self._refused.add(names)
            log.error("prediction log: feature names %s are reserved columns; not logging", clash)
        self._seen, self._columns = (features, width), None if clash else names
        return self._columns

    # --- rotation and shutdown ------------------------------------------------------------------------

    def tick(self) -> None:
        """Take the writer's answers, replace a dead writer, and every `rotate_s` ship the partly filled buffer
        and have the writer close its files (the event loop's timer calls this; other callers do)."""
        self._read_answers()
        if self._answers is None and time.monotonic() >= self._restart_at:
            self._start_writer()
            self._watch()
        if time.monotonic() - self._rotated >= self.rotate_s:
            if self._current is not None and self._current.rows:
                self._ship(self._current)
                self._current = None
            self._send(("rotate",))
            self._rotated = time.monotonic()

    def close(self, timeout: float = 30.0) -> None:
        """Ship what is buffered, let the writer close its files, and wait for it (detached: any thread)."""
        self.detach()
        if self._current is not None and self._current.rows:
            self._ship(self._current)
            self._current = None
        if self._shipments is not None:
            os.close(self._shipments)
            self._shipments = None
        answers = self._answers
        try:
            while answers is not None and answers.poll(timeout):
                self._answer(answers.recv())
        except (EOFError, OSError):
            pass
        if answers is not None:
            answers.close()
        self._answers = None
        if self._process is not None:
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("prediction log writer did not finish in %.0f s; stopping it", timeout)
                self._process.kill()
        for buf in self._buffers:
            with contextlib.suppress(OSError):
                os.close(buf.fd)

    # --- the writer process ---------------------------------------------------------------------------

    def _start_writer(self) -> None:
        shipments_r, shipments_w = os.pipe()
        answers_r, answers_w = os.pipe()
        # Linux only; a smaller pipe only means more writes
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(shipments_w, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        fds = [b.fd for b in self._buffers]
        config = {
            "shipments_fd": shipments_r,
            "answers_fd": answers_w,
            "buffer_fds": fds,
            "buffer_bytes": self.buffer_bytes,
            "base": self.base,
            "variant": self.variant,
            "max_file_bytes": self.max_file_bytes,
        }
        # the server's own mlspec, last on the path: found even when it was not installed, shadowing nothing
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        bootstrap = f"import sys; sys.path.append({package_root!r}); from mlspec.serving.logwriter import main; main()"
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", bootstrap, json.dumps(config)],
                pass_fds=(shipments_r, answers_w, *fds),
                stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(shipments_r)
            os.close(answers_w)
        self._shipments = shipments_w
        self._answers = Connection(answers_r, writable=False)

    def _writer_died(self) -> None:
        """Count the rows it held as dropped, take its buffers back, and start another one a little later."""
        code = self._process.poll() if self._process is not None else None
        lost = sum(b.rows for b in self._in_flight.values())
        log.error("prediction log writer exited (%s); %d rows dropped", code, lost)
        self.metrics.log_dropped.inc(lost)
        self._free += self._in_flight.values()
        self._in_flight.clear()
        self._outbox.clear()
        self._unwatch()
        if self._shipments is not None:
            with contextlib.suppress(OSError):
                os.close(self._shipments)
        if self._answers is not None:
            self._answers.close()
        self._shipments, self._answers = None, None
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(5)
        self._process = None
        self._restart_at = time.monotonic() + RESTART_AFTER_S

    def _ship(self, buf: _Buffer) -> None:
        if self._shipments is None:  # no writer until it is restarted: the rows are lost
            self.metrics.log_dropped.inc(buf.rows)
            self._free.append(buf)
            return
        self._in_flight[buf.index] = buf
        self._send(buf.shipment())  # if the writer is gone, _writer_died counts this buffer with the others

    def _send(self, message: Any) -> None:
        """Frame a message as multiprocessing's Connection does and write it: queued and written when the pipe
        has room when attached to a loop, else at once."""
        if self._shipments is None:
            return
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self._outbox += struct.pack("!i", len(data)) + data
        self._flush()

    def _flush(self) -> None:
        fd = self._shipments
        while self._outbox and fd is not None:
            try:
                written = os.write(fd, self._outbox)
            except BlockingIOError:  # attached: the rest goes when the writer has read some
                assert self._loop is not None
                self._loop.add_writer(fd, self._flush)
                return
            except OSError:
                self._writer_died()
                return
            del self._outbox[:written]
        if self._loop is not None and fd is not None:
            self._loop.remove_writer(fd)

    def _read_answers(self) -> None:
        try:
            while self._answers is not None and self._answers.poll():
                self._answer(self._answers.recv())
        except (EOFError, OSError):
            self._writer_died()

    def _answer(self, message: tuple) -> None:
        if message[0] == "done":
            _, index, written, dropped = message
            self.metrics.log_written.inc(written)
            self.metrics.log_dropped.inc(dropped)
            self._free.append(self._in_flight.pop(index))
        elif message[0] == "lost":
            self.metrics.log_dropped.inc(message[1])
