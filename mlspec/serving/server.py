"""Run the app under uvicorn (uvloop + httptools when installed) with a graceful SIGTERM drain, header
deadlines and a connection cap."""

from __future__ import annotations

import importlib.util
import logging

from mlspec.serving.app import ServingApp
from mlspec.serving.config import ServerConfig
from mlspec.serving.guard import ConnectionGuard, guarded

log = logging.getLogger("mlspec.serving")


def uvicorn_config(app: ServingApp, config: ServerConfig):
    """uvicorn's settings, its HTTP protocol wrapped in the connection guard (see mlspec.serving.guard)."""
    import uvicorn

    protocol: type
    if importlib.util.find_spec("httptools"):
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        protocol = HttpToolsProtocol
    else:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        protocol = H11Protocol
    guard = ConnectionGuard(
        connection_cap(config.max_connections),
        config.header_timeout_s,
        closed=lambda reason: app.metrics.connections_closed.labels(reason=reason).inc(),
    )
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        lifespan="on",
        access_log=False,
        log_level="warning",
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http=guarded(protocol, guard),
        timeout_graceful_shutdown=int(config.graceful_timeout_s),
        backlog=2048,
        timeout_keep_alive=max(1, round(config.keep_alive_s)),
    )


def connection_cap(wanted: int) -> int:
    """`wanted`, lowered to leave file descriptors for the model, logs and the registry under RLIMIT_NOFILE."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(16, min(wanted, soft - 128))


def run_server(config: ServerConfig) -> int:
    """Serve until SIGTERM/SIGINT; in-flight requests finish first. Returns the exit code."""
    import signal

    import uvicorn

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            super().handle_exit(sig, frame)
            if sig == signal.SIGTERM:  # a drained SIGTERM is a clean exit (0), not death by signal
                self._captured_signals = [s for s in self._captured_signals if s != signal.SIGTERM]

    app = ServingApp(config)
    server = DrainingServer(uvicorn_config(app, config))
    log.info(
        "listening on http://%s:%d (model %s from %s)",
        config.host,
        config.port,
        config.model_name,
        config.model_uri,
    )
    server.run()
    if app.load_error:
        log.error("exited because the model could not be served: %s", app.load_error)
        return 1
    return 0
