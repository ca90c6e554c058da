"""Connection limits uvicorn lacks: a deadline for request headers and a cap on open connections.

uvicorn arms no timer on a new connection, so a client that opens sockets and never finishes its headers
holds a file descriptor forever; some thousands of them and nobody else is served. Every connection of one
server therefore shares a ConnectionGuard:

- a new connection must complete its request headers within `header_timeout_s`, and so must the next request
  on a kept-alive connection once its first byte arrives (idle keep-alive stays uvicorn's own timer);
- at `max_connections` open, a new connection closes the one that has waited longest without a request in
  progress (half-open or idle keep-alive); when every connection is busy, the new one is closed instead.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from typing import Any


class ConnectionGuard:
    def __init__(
        self,
        max_connections: int,
        header_timeout_s: float,
        closed: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self.closed = closed  # told why the guard closed a connection: header_timeout, evicted, refused
        self.open = 0
        self.waiting: OrderedDict[Any, None] = OrderedDict()  # no request in progress, longest waiting first

    def make_room(self) -> bool:
        """Close the connection that has waited longest; False when every other connection is busy."""
        while self.waiting:
            connection, _ = self.waiting.popitem(last=False)
            if not connection.transport.is_closing():
                connection.transport.close()
                self.closed("evicted")
                return True
        return False


def guarded(protocol: type, guard: ConnectionGuard) -> type:
    """A subclass of uvicorn's HTTP protocol class (httptools or h11) that obeys `guard`."""

    class GuardedProtocol(protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            guard.open += 1
            if guard.open > guard.max_connections and not guard.make_room():
                guard.closed("refused")
                transport.close()
                return
            guard.waiting[self] = None
            self._await_headers()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._in_request():
                self._busy()
            elif self._deadline is None and not self.transport.is_closing():
                self._await_headers()  # the next request on a kept-alive connection has begun

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self._in_request() and not self.transport.is_closing():
                guard.waiting[self] = None  # idle keep-alive: uvicorn's keep-alive timer applies

        def connection_lost(self, exc: Exception | None) -> None:
            guard.open -= 1
            self._busy()
            super().connection_lost(exc)

        def _in_request(self) -> bool:
            return self.cycle is not None and not self.cycle.response_complete

        def _await_headers(self) -> None:
            self._deadline = self.loop.call_later(guard.header_timeout_s, self._headers_late)

        def _headers_late(self) -> None:
            self._deadline = None
            if not self._in_request() and not self.transport.is_closing():
                guard.closed("header_timeout")
                self.transport.close()

        def _busy(self) -> None:
            guard.waiting.pop(self, None)
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

    return GuardedProtocol
