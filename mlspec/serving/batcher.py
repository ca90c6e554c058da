"""Dynamic micro-batching: concurrent requests are coalesced into one ONNX Runtime call.

One worker coroutine takes the first queued request, adds every request already queued (up to max_batch_size
rows) and, while more requests are being received, waits for them up to max_batch_delay. The session runs on a
single dedicated thread (or inline, when a call takes microseconds); while it runs, new requests queue up
and form the next batch. A lone request never waits, so batching adds no latency at concurrency 1.
The answered batches' logged requests go to the prediction log (`on_batch`, one call per batch, with the
batch's own input matrix and outputs) together, once the queue is drained and the answers have been sent:
one pass over the log's code and memory for many batches costs the event loop less than one pass each
(bench/serving.py, 64-row requests at concurrency 32: the log's cost fell from about 13% to 5-9%).

Inline or on the thread is decided by the calling thread's CPU time per batch, not the wall clock: on the
thread, the wall clock also counts the wait for the GIL after the session returns, which on a busy event loop
keeps a 100 us model looking slow and the server on the thread, at half the throughput (measured with the
mode forced, bench/serving.py's model at 64 rows).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlspec.serving.logbuffer import LogEntry
from mlspec.serving.metrics import Metrics
from mlspec.serving.model import LoadedModel

INLINE_BELOW_S = 0.0002
LOG_EVERY_BATCHES = 64  # answered batches held for the log at most, when the queue never drains


class Overloaded(Exception):
    """Too many rows are waiting: the request is refused at once rather than queued past its deadline."""


# the prediction log's entry point: model version, features, the batch's inputs, outputs, its logged requests
BatchLog = Callable[[str, list[str] | None, np.ndarray, list[np.ndarray], list[LogEntry]], None]


@dataclass(slots=True)
class _Item:
    model: LoadedModel
    x: np.ndarray
    future: asyncio.Future
    log: LogEntry | None


# an answered batch: its requests, input matrix, outputs and each request's share of them
_Answered = tuple[list[_Item], np.ndarray, list[np.ndarray], list[list[np.ndarray]]]


class MicroBatcher:
    def __init__(
        self, max_batch_size: int, max_batch_delay_s: float, metrics: Metrics, max_pending_rows: int = 8192
    ) -> None:
        self.max_batch_size = max(1, max_batch_size)
        self.max_batch_delay_s = max(0.0, max_batch_delay_s)
        self.metrics = metrics
        self.max_pending_rows = max_pending_rows
        self.pending_rows = 0
        self.arriving = 0  # requests whose body is being received: worth a short wait
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="onnxruntime"
        )
        self._held: _Item | None = None
        self._task: asyncio.Task | None = None
        self._run_ewma_s = 0.0  # smoothed inference CPU time: decides inline versus the inference thread
        self.on_batch: BatchLog | None = None
        self._unlogged: list[_Answered] = []

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._worker())

    async def stop(self) -> None:
        """Finish every queued request, then stop."""
        self._queue.put_nowait(None)
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    def submit(self, model: LoadedModel, x: np.ndarray, log: LogEntry | None = None) -> asyncio.Future:
        """Queue X, and with `log` its prediction for the log; raises Overloaded when the rows waiting would
        exceed the bound (shed load, keep p99)."""
        rows = len(x)
        if self.pending_rows + rows > self.max_pending_rows:
            raise Overloaded(f"{self.pending_rows} rows are already waiting for inference")
        future = asyncio.get_running_loop().create_future()
        self.pending_rows += rows
        future.add_done_callback(lambda _: self._release(rows))
        self._queue.put_nowait(_Item(model, x, future, log))
        return future

    def _release(self, rows: int) -> None:
        self.pending_rows -= rows

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping or self._held is not None:
            if self._unlogged and (self._queue.empty() or len(self._unlogged) >= LOG_EVERY_BATCHES):
                # once the queue is drained: after the requests just answered have been sent
                loop.call_soon(self._log, self._unlogged)
                self._unlogged = []
            first = self._held or await self._queue.get()
            self._held = None
            if first is None:
                break
            batch, rows = [first], len(first.x)
            deadline = loop.time() + self.max_batch_delay_s
            while rows < self.max_batch_size:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    if self.arriving > 0 and loop.time() < deadline:
                        await asyncio.sleep(0)
                        continue
                    break
                if item is None:
                    stopping = True
                    break
                if item.model is not first.model or rows + len(item.x) > self.max_batch_size:
                    self._held = item
                    break
                batch.append(item)
                rows += len(item.x)
            batch = [i for i in batch if not i.future.done()]  # timed-out requests are not computed
            if batch:
                await self._run(loop, batch)
        if self._unlogged:
            self._log(self._unlogged)
            self._unlogged = []
        self._fail_rest()

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        try:
            if self._run_ewma_s < INLINE_BELOW_S:
                # Microsecond-scale batches cost less inline than the hop to the inference thread.
                start = time.thread_time()
                x, full, outputs = _infer(batch)
                elapsed = time.thread_time() - start
            else:
                x, full, outputs, elapsed = await loop.run_in_executor(self._executor, _timed_infer, batch)
            self._run_ewma_s = 0.9 * self._run_ewma_s + 0.1 * elapsed
        except Exception as exc:
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        self.metrics.batch_size.observe(len(x))
        for item, result in zip(batch, outputs, strict=True):
            if not item.future.done():
                item.future.set_result(result)
        if self.on_batch is not None:
            self._unlogged.append((batch, x, full, outputs))

    def _log(self, answered: list[_Answered]) -> None:
        assert self.on_batch is not None
        for batch, x, full, outputs in answered:
            model = batch[0].model
            logged = [i.log for i in batch if i.log is not None]
            if len(logged) == len(batch):
                self.on_batch(model.version, model.features, x, full, logged)
                continue
            for item, result in zip(batch, outputs, strict=True):  # sampled: only some of the batch is logged
                if item.log is not None:
                    self.on_batch(model.version, model.features, item.x, result, [item.log])

    def _fail_rest(self) -> None:
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None and not item.future.done():
                item.future.set_exception(RuntimeError("server is shutting down"))


def _timed_infer(batch: list[_Item]) -> tuple[np.ndarray, list[np.ndarray], list[list[np.ndarray]], float]:
    start = time.thread_time()
    x, outputs, results = _infer(batch)
    return x, outputs, results, time.thread_time() - start


def _infer(batch: list[_Item]) -> tuple[np.ndarray, list[np.ndarray], list[list[np.ndarray]]]:
    """The batch's input matrix, its outputs, and each request's share of them."""
    model = batch[0].model
    if len(batch) == 1:
        outputs = model.run(batch[0].x)
        return batch[0].x, outputs, [outputs]
    x = np.concatenate([i.x for i in batch])
    outputs = model.run(x)
    results: list[list[np.ndarray]] = []
    start = 0
    for item in batch:
        end = start + len(item.x)
        results.append([o[start:end] for o in outputs])
        start = end
    return x, outputs, results
