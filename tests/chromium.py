"""Open a local HTML file in headless Chromium over the DevTools protocol, offline, and record what it did.

Every host name resolves to nothing (--host-resolver-rules), background networking is off, and the page's
own requests, console messages and exceptions are collected from the protocol's events, so a test can assert
that a report needs no network and logs no error.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class PageVisit:
    requests: list[str] = field(default_factory=list)  # every URL the page asked for, its own included
    console: list[dict[str, Any]] = field(default_factory=list)  # console calls, log entries, exceptions
    values: Any = None  # what the evaluated expression returned
    screenshot: bytes = b""


def executable() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class _Session:
    def __init__(self, ws_url: str) -> None:
        import websocket  # websocket-client

        self.ws = websocket.create_connection(ws_url, timeout=30)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {timeout}s")
            self.events.append(json.loads(self.ws.recv()))


def visit(path: Path, expression: str, *, width: int = 1300, height: int = 900) -> PageVisit:
    """Load file://PATH, evaluate `expression` (JSON-serializable result) and take a full-page screenshot."""
    exe = executable()
    if exe is None:
        raise RuntimeError("chromium is not installed (scripts/setup.sh installs it from Debian's packages)")
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen(
            [
                exe,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--host-resolver-rules=MAP * ~NOTFOUND",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its renderer and helper processes share our group id: stop them all
        )
        try:
            ws_url = _devtools_url(proc, Path(profile))
            s = _Session(ws_url)
            target = s.call("Target.createTarget", url="about:blank")["targetId"]
            sid = s.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Network", "Runtime", "Log"):
                s.call(f"{domain}.enable", sid)
            s.call(
                "Emulation.setDeviceMetricsOverride",
                sid,
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            s.call("Page.navigate", sid, url=path.resolve().as_uri())
            s.wait_for("Page.loadEventFired")
            result = s.call("Runtime.evaluate", sid, expression=expression, returnByValue=True)
            layout = s.call("Page.getLayoutMetrics", sid)["cssContentSize"]
            shot = s.call(
                "Page.captureScreenshot",
                sid,
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": width, "height": layout["height"], "scale": 1},
            )
            page = PageVisit(values=result["result"].get("value"), screenshot=base64.b64decode(shot["data"]))
            for event in s.events:
                method, params = event.get("method"), event.get("params", {})
                if event.get("sessionId") != sid:
                    continue
                if method == "Network.requestWillBeSent":
                    page.requests.append(params["request"]["url"])
                elif method in ("Runtime.consoleAPICalled", "Log.entryAdded", "Runtime.exceptionThrown"):
                    page.console.append({"method": method, **params})
            s.ws.close()
            return page
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=10)
            break
        except subprocess.TimeoutExpired:
            continue
    for _ in range(100):  # the helpers exit shortly after the browser
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def _devtools_url(proc: subprocess.Popen, profile: Path) -> str:
    """Chromium writes its port and browser path to DevToolsActivePort in the profile once it listens."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode}")
        lines = marker.read_text().split() if marker.exists() else []
        if len(lines) == 2:
            return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        time.sleep(0.05)
    raise TimeoutError("chromium did not open its DevTools port")
