"""Dynamic micro-batching: concurrent requests are coalesced into one ONNX Runtime call.

One worker coroutine takes the first queued request, adds every request already queued (up to max_batch_size
rows) and, while more requests are being received, waits for them up to max_batch_delay. The session runs on a
single dedicated thread (or inline, when a call takes microseconds); while it runs, new requests queue up
and form the next batch. A lone request never waits, so batching adds no latency at concurrency 1.
The answered batches' logged requests are held, as a few lists and arrays per batch (`LoggedBatch`), and
handed to the prediction log together (`on_batches`): every LOG_EVERY_BATCHES batches, after their answers
have been sent, or LOG_WITHIN_S after the first of them when traffic is light. One pass over the log's code
for many batches costs the event loop far less than one pass each, whose code and data are cold every time
(bench/serving.py, 1-row requests at concurrency 8, batches of 3.6 requests: copied one batch at a time, the
log's copy cost 4.3 us of the server's CPU per request, 1.1 us in a loop); and holding no object per request
keeps the garbage collector asleep (holding the batches' requests and futures made 14x as many collections as
with the log off).

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

from mlspec.serving.logbuffer import LogEntry, LoggedBatch
from mlspec.serving.metrics import Metrics
from mlspec.serving.model import LoadedModel

INLINE_BELOW_S = 0.0002
LOG_EVERY_BATCHES = 64  # answered batches handed to the prediction log together...
LOG_WITHIN_S = 0.05  # ...or this long after the first of them was answered


class Overloaded(Exception):
    """Too many rows are waiting: the request is refused at once rather than queued past its deadline."""


BatchLog = Callable[[list[LoggedBatch]], None]  # the prediction log's entry point


@dataclass(slots=True)
class _Item:
    model: LoadedModel
    x: np.ndarray
    future: asyncio.Future
    log: LogEntry | None


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
        self.on_batches: BatchLog | None = None
        self._unlogged: list[LoggedBatch] = []
        self._log_handle: asyncio.Handle | None = None
        self._log_soon = False

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
        if self._log_handle is not None:
            self._log_handle.cancel()
            self._hand_to_log()
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
        if self.on_batches is not None:
            self._hold_for_log(loop, batch, x, full, outputs)

    def _hold_for_log(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[_Item],
        x: np.ndarray,
        full: list[np.ndarray],
        outputs: list[list[np.ndarray]],
    ) -> None:
        model = batch[0].model
        if all(i.log is not None for i in batch):
            self._unlogged.append(
                LoggedBatch(
                    model.version,
                    model.features,
                    x,
                    full,
                    [i.log[0] for i in batch],  # type: ignore[index]
                    [i.log[1] for i in batch],  # type: ignore[index]
                    [len(i.x) for i in batch],
                )
            )
        else:  # sampled: only some of the batch is logged
            for item, result in zip(batch, outputs, strict=True):
                if item.log is not None:
                    request_id, source = item.log
                    self._unlogged.append(
                        LoggedBatch(
                            model.version,
                            model.features,
                            item.x,
                            result,
                            [request_id],
                            [source],
                            [len(item.x)],
                        )
                    )
        if not self._unlogged:
            return
        if self._log_handle is None:
            self._log_handle, self._log_soon = loop.call_later(LOG_WITHIN_S, self._hand_to_log), False
        elif len(self._unlogged) >= LOG_EVERY_BATCHES and not self._log_soon:
            self._log_handle.cancel()
            # after the answers just set have been sent
            self._log_handle, self._log_soon = loop.call_soon(self._hand_to_log), True

    def _hand_to_log(self) -> None:
        assert self.on_batches is not None
        self._log_handle = None
        answered, self._unlogged = self._unlogged, []
        self.on_batches(answered)

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
