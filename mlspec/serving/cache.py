"""Redis response cache keyed by model version and a canonical hash of the input tensor.

The cache is an optimization: every failure is counted and the request is served uncached. After a failure
the cache is bypassed for a short cool-down so a dead Redis costs nothing per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time

import numpy as np

from mlspec.serving.metrics import Metrics

log = logging.getLogger("mlspec.serving")


def cache_key(model_name: str, version: str, batch: np.ndarray) -> str:
    """Same tensor, same key, however the JSON spelled it (1 vs 1.0, records vs rows)."""
    data = np.ascontiguousarray(batch)
    digest = hashlib.sha256(f"{data.dtype.str}{data.shape}".encode() + data.tobytes()).hexdigest()
    return f"mlspec:{model_name}:{version}:{digest}"


class RedisCache:
    def __init__(
        self,
        url: str,
        ttl_seconds: int,
        metrics: Metrics,
        *,
        timeout_s: float = 0.05,
        cooldown_s: float = 1.0,
    ) -> None:
        import redis.asyncio as aioredis

        self._client = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry_on_timeout=False
        )
        self.url = url
        self.ttl = max(1, int(ttl_seconds))
        self.metrics = metrics
        self.cooldown_s = cooldown_s
        self._down_until = 0.0
        self._pending: set[asyncio.Task] = set()

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: BaseException) -> None:
        self.metrics.cache_errors.inc()
        if self._available():
            log.warning("cache %s unavailable, serving uncached: %s", self.url, exc)
        self._down_until = time.monotonic() + self.cooldown_s

    async def get(self, key: str) -> bytes | None:
        if not self._available():
            return None
        try:
            value = await self._client.get(key)
        except Exception as exc:  # redis raises ConnectionError, TimeoutError, OSError...
            self._failed(exc)
            return None
        if value is None:
            self.metrics.cache_misses.inc()
            return None
        self.metrics.cache_hits.inc()
        return value.encode() if isinstance(value, str) else value

    def put(self, key: str, value: bytes) -> None:
        """Store in the background: the response never waits for Redis."""
        if not self._available():
            return
        task = asyncio.get_running_loop().create_task(self._set(key, value))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _set(self, key: str, value: bytes) -> None:
        try:
            await self._client.set(key, value, ex=self.ttl)
        except Exception as exc:
            self._failed(exc)

    async def close(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._client.aclose()
