"""Drive bounded load at a model server on this machine and judge the result against the spec's SLO."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import random
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlspec import contracts
from mlspec.serving.httpclient import Connection, split_url

if TYPE_CHECKING:
    from mlspec.ir.model import SloPolicy

MAX_IN_FLIGHT = 1024
# The server logs this as the record's `source`, so monitoring can tell synthetic traffic from live traffic.
SOURCE_HEADER = {contracts.SOURCE_HEADER: contracts.LOADTEST_SOURCE}


@dataclass
class LoadResult:
    """Each request's latency and answer. Which answers are errors is the SLO policy's call (5xx and no
    answer at all); a 4xx is the client's mistake, exactly as the PrometheusRule counts it."""

    latencies_s: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def total(self) -> int:
        return len(self.latencies_s)

    @property
    def throughput(self) -> float:
        return self.total / self.elapsed_s if self.elapsed_s else 0.0

    def errors(self, error_classes: Iterable[int]) -> int:
        classes = {str(c) for c in error_classes}
        return sum(n for status, n in self.statuses.items() if not status.isdigit() or status[0] in classes)

    def availability_percent(self, error_classes: Iterable[int]) -> float:
        return 100.0 * (self.total - self.errors(error_classes)) / self.total if self.total else 0.0

    def slower_than(self, seconds: float) -> float:
        """The fraction of requests slower than `seconds`: how the alerts and the analysis read a bucket."""
        return sum(1 for t in self.latencies_s if t > seconds) / self.total if self.total else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        index = min(len(ordered) - 1, max(0, math.ceil(q / 100.0 * len(ordered)) - 1))  # nearest rank
        return ordered[index] * 1000.0

    def record(self, latency: float, status: str) -> None:
        self.latencies_s.append(latency)
        self.statuses[status] = self.statuses.get(status, 0) + 1


def require_loopback(host: str) -> None:
    """Load is only ever driven at this machine."""
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise ValueError(f"cannot resolve {host!r}: {exc}") from None
    addresses = {str(info[4][0]) for info in infos}
    if not addresses or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise ValueError(
            f"refusing to load-test {host!r} ({', '.join(sorted(addresses))}): loopback hosts only"
        )


async def _one(conn: Connection, path: str, body: bytes, result: LoadResult) -> None:
    start = time.perf_counter()
    try:
        status, _ = await conn.request("POST", path, body, headers=SOURCE_HEADER)
        result.record(time.perf_counter() - start, str(status))
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        result.record(time.perf_counter() - start, type(exc).__name__)


async def run_load(
    url: str,
    path: str,
    bodies: list[bytes],
    *,
    duration_s: float,
    concurrency: int | None = None,
    rps: float | None = None,
    max_requests: int = 1_000_000,
) -> LoadResult:
    """Closed loop with CONCURRENCY workers, or open loop at RPS; stops at DURATION_S or MAX_REQUESTS."""
    host, port, _ = split_url(url)
    require_loopback(host)
    result = LoadResult()
    start = time.perf_counter()
    deadline = start + duration_s
    sent = 0

    if rps is None:

        async def worker(offset: int) -> None:
            nonlocal sent
            conn = Connection(host, port)
            i = offset
            while time.perf_counter() < deadline and sent < max_requests:
                sent += 1
                await _one(conn, path, bodies[i % len(bodies)], result)
                i += 1
            conn.close()

        await asyncio.gather(*(worker(i) for i in range(max(1, concurrency or 1))))
    else:
        idle: list[Connection] = []
        in_flight: set[asyncio.Task] = set()

        async def fire(i: int) -> None:
            conn = idle.pop() if idle else Connection(host, port)
            await _one(conn, path, bodies[i % len(bodies)], result)
            idle.append(conn)

        interval = 1.0 / rps
        next_at = start
        while next_at < deadline and sent < max_requests:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            if len(in_flight) >= MAX_IN_FLIGHT:  # the server is not keeping up: count a shed request
                result.record(0.0, "client-overload")
            else:
                task = asyncio.get_running_loop().create_task(fire(sent))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            sent += 1
            next_at += interval
        if in_flight:
            await asyncio.gather(*in_flight)
        for conn in idle:
            conn.close()
    result.elapsed_s = time.perf_counter() - start
    return result


async def model_bodies(url: str, model_name: str, rows: int, count: int = 256, seed: int = 0) -> list[bytes]:
    """Distinct /predict bodies (so a cache cannot answer them all) shaped from the model's metadata."""
    host, port, _ = split_url(url)
    require_loopback(host)
    conn = Connection(host, port)
    try:
        status, body = await conn.request("GET", f"/v2/models/{model_name}")
    finally:
        conn.close()
    if status != 200:
        raise ValueError(f"GET /v2/models/{model_name} answered {status}: {body[:200]!r}")
    n_features = json.loads(body)["inputs"][0]["shape"][1]
    rng = random.Random(seed)
    return [
        json.dumps(
            {"inputs": [[round(rng.uniform(-2, 2), 4) for _ in range(n_features)] for _ in range(rows)]}
        ).encode()
        for _ in range(count)
    ]


def report(result: LoadResult, policy: SloPolicy, percentiles: Iterable[float] = (50, 95, 99)) -> str:
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result.statuses.items()))
    latency = "   ".join(f"p{q:g} {result.percentile_ms(q):.2f} ms" for q in percentiles)
    classes = policy.error_status_classes
    errors = result.errors(classes)
    kinds = ", ".join(f"{c}xx" for c in classes)
    return (
        f"requests     {result.total} in {result.elapsed_s:.2f}s ({statuses})\n"
        f"throughput   {result.throughput:.1f} req/s\n"
        f"latency      {latency}\n"
        f"errors       {errors} ({kinds} or no answer; availability {result.availability_percent(classes):.3f}%)"
    )


def slo_violations(result: LoadResult, policy: SloPolicy) -> list[str]:
    """The SLO judged as the PrometheusRule judges it: the share of requests slower than the objective's
    bucket against 1 - quantile, and the share of errors (the policy's status classes) against the budget."""
    objective = policy.objective
    if objective is None:
        return []
    if result.total == 0:
        return ["no request completed"]
    problems = []
    slow = result.slower_than(objective.latency_bucket_seconds)
    allowed = 1 - policy.latency_quantile
    if slow > allowed + 1e-12:
        problems.append(
            f"{slow:.2%} of requests took longer than {objective.latency_p99_ms:g} ms; the p"
            f"{policy.latency_quantile * 100:g} objective allows {allowed:.2%}"
        )
    availability = result.availability_percent(policy.error_status_classes)
    if availability < objective.availability_percent:
        problems.append(
            f"availability {availability:.3f}% is below the SLO of {objective.availability_percent:g}%"
        )
    return problems
