"""A JSON API on 127.0.0.1 that records every request and answers what a test decides: the stand-in for an
API server that does not run here (KFP, Kubernetes), driven by the real client libraries.

    with serve(answer) as (url, requests):   # answer(method, path, query, body) -> (status, reply)
        ...                                  # requests: [{"method", "path", "query", "body"}, ...]
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

Answer = Callable[[str, str, dict, Any], tuple[int, Any]]


@contextmanager
def serve(answer: Answer) -> Iterator[tuple[str, list[dict]]]:
    requests: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            url = urlparse(self.path)
            query = parse_qs(url.query)
            requests.append({"method": self.command, "path": url.path, "query": query, "body": body})
            status, reply = answer(self.command, url.path, query, body)
            raw = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = _handle

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
