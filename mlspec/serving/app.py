"""The ASGI application: a minimal router over the Open Inference Protocol, /predict and /metrics.

Written against raw ASGI rather than a framework: per request it costs a few dict lookups, which keeps the
HTTP overhead far below a millisecond.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlspec import contracts
from mlspec.serving import jsonio
from mlspec.serving.batcher import MicroBatcher, Overloaded
from mlspec.serving.config import ServerConfig
from mlspec.serving.logbuffer import LogEntry
from mlspec.serving.metrics import CONTENT_TYPE, Metrics
from mlspec.serving.model import LoadedModel, download_version, load_onnx, parse_models_uri, resolve_version
from mlspec.serving.protocol import BINARY_HEADER, BadRequest, V2Request, decode_predict

if TYPE_CHECKING:
    from mlspec.serving.cache import RedisCache
    from mlspec.serving.predlog import PredictionLogger

log = logging.getLogger("mlspec.serving")
Send = Callable[[dict[str, Any]], Awaitable[None]]
JSON = [(b"content-type", b"application/json")]
_SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class ServingApp:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.metrics = Metrics(config.latency_buckets, config.max_batch_size)
        self.model: LoadedModel | None = None  # swapped atomically by a hot reload
        self.load_error: str | None = None
        self.batcher: MicroBatcher | None = None
        self.cache: RedisCache | None = None
        self.predlog: PredictionLogger | None = None
        self._background: list[asyncio.Task] = []
        self._latency = {r: self.metrics.latency.labels(route=r) for r in ("predict", "infer")}
        self._counters: dict[tuple[str, int], Any] = {}

    # --- lifecycle ---------------------------------------------------------------------------------------

    async def startup(self) -> None:
        c = self.config
        self.batcher = MicroBatcher(
            c.max_batch_size, c.max_batch_delay_ms / 1000.0, self.metrics, max_pending_rows=c.max_pending_rows
        )
        self.batcher.start()
        if c.cache_url:
            from mlspec.serving.cache import RedisCache

            self.cache = RedisCache(c.cache_url, c.cache_ttl_seconds, self.metrics)
        if c.prediction_log and c.sample_rate > 0:
            from mlspec.serving.predlog import PredictionLogger

            self.predlog = PredictionLogger(
                c.prediction_log,
                c.sample_rate,
                self.metrics,
                variant=c.variant,
                rotate_s=c.log_flush_interval_s,
                clock=_log_clock(),
            )
            self.predlog.attach(asyncio.get_running_loop())
            self.batcher.on_batches = self.predlog.submit_batches
        # Load in the background: the server is live at once and ready only after load and warm-up.
        self._background.append(asyncio.get_running_loop().create_task(self._load_and_watch()))

    async def shutdown(self) -> None:
        for task in self._background:
            task.cancel()
        if self.batcher is not None:
            await self.batcher.stop()
        if self.cache is not None:
            await self.cache.close()
        if self.predlog is not None:
            self.predlog.detach()
            await asyncio.get_running_loop().run_in_executor(None, self.predlog.close)

    def _load(self, version: str | None) -> LoadedModel:
        c = self.config
        if c.model_uri.startswith("models:/"):
            version = version or resolve_version(c.model_uri, c.tracking_uri)
            path = download_version(parse_models_uri(c.model_uri)[0], version, c.tracking_uri)
        else:
            path, version = Path(c.model_uri), version or _file_version(c.model_uri)
        return load_onnx(
            path,
            name=c.model_name,
            version=version,
            accelerator=c.accelerator,
            threads=c.threads,
            fallback_features=c.features,
        )

    def _activate(self, model: LoadedModel) -> None:
        self.model = model
        self.metrics.set_model(model.name, model.version)
        log.info("serving %s version %s on %s", model.name, model.version, model.providers)

    async def _load_and_watch(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            model = await loop.run_in_executor(None, self._load, None)
        except Exception as exc:
            self.load_error = str(exc)
            log.error("cannot serve: %s", exc)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        # What is loaded by now lives as long as the server: the cyclic GC's full collections need not walk it
        # again. Without this they cost about 8 us per request with the prediction log on (perf, 64-row requests).
        gc.collect()
        gc.freeze()
        self._activate(model)
        if self.config.model_uri.startswith("models:/") and "@" in self.config.model_uri:
            await self._watch_alias(loop)

    async def _watch_alias(self, loop: asyncio.AbstractEventLoop) -> None:
        """Poll the registry; when the alias moves, load and warm the new version, then swap."""
        c = self.config
        while True:
            await asyncio.sleep(c.reload_interval_s)
            try:
                version = await loop.run_in_executor(None, resolve_version, c.model_uri, c.tracking_uri)
                if self.model is not None and version == self.model.version:
                    continue
                model = await loop.run_in_executor(None, self._load, version)
            except Exception as exc:  # registry and download errors come in many types
                self.metrics.reloads.labels(outcome="failed").inc()
                log.warning(
                    "hot reload failed, keeping version %s: %s",
                    self.model.version if self.model else None,
                    exc,
                )
                continue
            self._activate(model)
            self.metrics.reloads.labels(outcome="succeeded").inc()

    # --- ASGI --------------------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] == "http":
            with self.metrics.in_flight.track_inprogress():
                await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Any, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if method == "POST":
            if path == "/predict":
                await self._infer(scope, receive, send, "predict")
            elif path.startswith("/v2/models/") and path.endswith("/infer"):
                await self._infer(scope, receive, send, "infer")
            else:
                await _respond(send, 404 if not _known_get(path) else 405, {"error": f"no route POST {path}"})
            return
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, {"error": f"method {method} not allowed"})
            return
        if path == "/metrics":
            await _respond_raw(send, 200, self.metrics.render(), [(b"content-type", CONTENT_TYPE.encode())])
        elif path == "/v2/health/live":
            await _respond(send, 200, {"live": True})
        elif path == "/v2/health/ready":
            await _respond(send, 200 if self.model else 503, {"ready": self.model is not None})
        elif path == "/v2":
            await _respond(
                send, 200, {"name": "mlspec", "version": "1", "extensions": ["binary_tensor_data"]}
            )
        elif path.startswith("/v2/models/"):
            await self._model_route(path, send)
        else:
            await _respond(send, 404, {"error": f"no route GET {path}"})

    async def _model_route(self, path: str, send: Send) -> None:
        parts = path[len("/v2/models/") :].split("/")
        name, rest = parts[0], parts[1:]
        if len(rest) >= 2 and rest[0] == "versions":
            rest = rest[2:]
        if name != self.config.model_name:
            await _respond(send, 404, {"error": f"unknown model {name!r}"})
        elif rest == ["ready"]:
            await _respond(send, 200 if self.model else 503, {"name": name, "ready": self.model is not None})
        elif rest == []:
            if self.model is None:
                await _respond(send, 503, {"error": f"model {name} is loading"})
            else:
                await _respond(send, 200, self.model.metadata())
        else:
            await _respond(send, 404, {"error": f"no route GET {path}"})

    async def _infer(self, scope: dict[str, Any], receive: Any, send: Send, route: str) -> None:
        start = time.perf_counter()
        status = 200
        try:
            status = await self._infer_inner(scope, receive, send, route)
        except BadRequest as exc:
            status = exc.status
            await _respond(send, status, {"error": exc.message})
        except TimeoutError:
            status = 504
            await _respond(send, status, {"error": f"inference exceeded {self.config.request_timeout_s}s"})
        except Exception as exc:
            log.exception("inference failed")
            status = 500
            await _respond(send, status, {"error": f"inference failed: {exc}"})
        self._latency[route].observe(time.perf_counter() - start)
        counter = self._counters.get((route, status))
        if counter is None:
            counter = self._counters[(route, status)] = self.metrics.requests.labels(
                route=route, code=str(status)
            )
        counter.inc()

    async def _infer_inner(self, scope: dict[str, Any], receive: Any, send: Send, route: str) -> int:
        model = self.model
        if model is None:
            raise BadRequest("model is not loaded yet", 503)
        headers = dict(scope["headers"])
        deadline = asyncio.get_running_loop().time() + self.config.request_timeout_s
        try:
            async with asyncio.timeout_at(deadline):
                body = await self._read_body(headers, receive)
        except TimeoutError:
            raise BadRequest(
                f"request body not received within {self.config.request_timeout_s}s", 408
            ) from None
        if route == "infer":
            name = scope["path"][len("/v2/models/") :].split("/", 1)[0]
            if name != model.name:
                raise BadRequest(f"unknown model {name!r}", 404)
            header_length = headers.get(BINARY_HEADER.encode())
            request = V2Request(
                body, header_length.decode("latin-1") if header_length else None, model, self.config.max_rows
            )
            x = request.x
        else:
            x = decode_predict(body, model, self.config.max_rows)
        rid = headers.get(contracts.REQUEST_ID_HEADER.encode())
        request_id = rid.decode(errors="replace") if rid else uuid.uuid4().hex
        log = None
        if self.predlog is not None and self.predlog.sampled():
            log = (request_id, _traffic_source(headers.get(contracts.SOURCE_HEADER.encode())))
        outputs = await self._predict(model, x, deadline, log)
        if route == "infer":
            payload, json_length = request.encode(model, request_id, outputs)
            extra = [] if json_length is None else [(BINARY_HEADER.encode(), str(json_length).encode())]
            ctype = b"application/octet-stream" if json_length is not None else b"application/json"
            await _respond_raw(send, 200, payload, [(b"content-type", ctype), *extra])
        else:
            from mlspec.serving.protocol import encode_predict

            await _respond_raw(send, 200, encode_predict(model, request_id, outputs), JSON)
        return 200

    async def _read_body(self, headers: dict[bytes, bytes], receive: Any) -> bytes:
        limit = self.config.max_body_bytes
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise BadRequest(f"request body of {int(length)} bytes exceeds the limit of {limit} bytes", 413)
        message = await receive()
        body = message.get("body", b"")
        if not message.get("more_body"):
            return body
        chunks = [body]
        size = len(body)
        assert self.batcher is not None
        self.batcher.arriving += 1
        try:
            while message.get("more_body"):
                message = await receive()
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise BadRequest(f"request body exceeds the limit of {limit} bytes", 413)
                chunks.append(chunk)
        finally:
            self.batcher.arriving -= 1
        return b"".join(chunks)

    async def _predict(
        self, model: LoadedModel, x: np.ndarray, deadline: float, log: LogEntry | None
    ) -> list[np.ndarray]:
        """The model's outputs for X, from the cache or a batch; `log` puts the prediction in the log."""
        key = None
        if self.cache is not None:
            from mlspec.serving.cache import cache_key

            key = cache_key(model.name, model.version, x)
            hit = await self.cache.get(key)
            if hit is not None:
                try:
                    outputs = [np.asarray(o, dtype=np.float32) for o in jsonio.loads(hit)]
                except (ValueError, TypeError):
                    self.metrics.cache_errors.inc()
                else:
                    if log is not None and self.predlog is not None:
                        self.predlog.submit(log[0], model.version, model.features, x, outputs, source=log[1])
                    return outputs
        assert self.batcher is not None
        try:
            future = self.batcher.submit(model, x, log)
        except Overloaded as exc:
            raise BadRequest(f"server overloaded, retry later: {exc}", 503) from None
        async with asyncio.timeout_at(deadline):  # the whole request shares one budget
            outputs = await future
        if key is not None and self.cache is not None:
            self.cache.put(key, jsonio.dumps([o for o in outputs]))
        return outputs


def _file_version(path: str) -> str:
    """A version for a bare file: its content hash, so a cache never mixes two different files."""
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()[:12]


def _traffic_source(value: bytes | None) -> str:
    """The prediction log's `source`: the x-mlspec-source header (e.g. loadtest) when it is a plain name."""
    if value is None:
        return contracts.LIVE_SOURCE
    text = value.decode("latin-1")
    return text if _SOURCE.fullmatch(text) else "other"


def _log_clock() -> Callable[[], float]:
    """The prediction log's timestamps: mlspec's one clock, so that a pinned MLSPEC_NOW pins them too."""
    from mlspec import clock

    if os.environ.get(clock.ENV_VAR):
        pinned = clock.now().timestamp()
        return lambda: pinned
    return time.time


def _known_get(path: str) -> bool:
    return path in ("/metrics", "/v2", "/v2/health/live", "/v2/health/ready") or path.startswith(
        "/v2/models/"
    )


async def _respond(send: Send, status: int, obj: Any) -> None:
    await _respond_raw(send, status, jsonio.dumps(obj), JSON)


async def _respond_raw(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
