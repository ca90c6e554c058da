"""Model server benchmark: mlspec serve (prediction log off and on) vs `mlflow models serve` vs bare
InferenceSession.run (the floor).

The same ONNX MLP (20 float features, hidden 64-32), 1-row and 64-row requests at concurrency 1, 8 and 32,
each cell bounded in time. The load generator is a keep-alive asyncio client in this process (every server
gets the same one). Prints throughput, p50, p99, errors, memory (PSS, with children) and cold start, and the cost of the prediction log
(sample rate 1.0, Parquet under a temporary directory) as the logging-on / logging-off throughput ratio per
cell. The two mlspec servers run side by side and each cell drives them in turn, `--rounds` times in alternating order, so
that machine noise falls on both alike.

    .venv/bin/python bench/serving.py [--seconds 3] [--rounds 2] [--concurrency 1,8,32] [--rows 1,64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil

from mlspec.ir.policy import ERROR_STATUS_CLASSES
from mlspec.serving.demo import write_mlp
from mlspec.serving.loadtest import LoadResult, run_load

N_FEATURES = 20
VENV_BIN = str(Path(sys.executable).parent)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Memory of a server and its children (the prediction log's writer): proportional set size, so that the
    shared buffers both map count once."""
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        return sum(_pss(p) for p in procs) / 2**20
    except psutil.NoSuchProcess:
        return float("nan")


def _pss(proc: psutil.Process) -> int:
    try:
        return proc.memory_full_info().pss
    except (AttributeError, psutil.AccessDenied):  # no PSS outside Linux
        return proc.memory_info().rss


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by a server and its children."""
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        times = p.cpu_times()
        total += times.user + times.system
    return total


def bodies(rows: int, count: int = 64) -> list[bytes]:
    rng = np.random.default_rng(rows)
    return [
        json.dumps({"inputs": np.round(rng.uniform(-2, 2, (rows, N_FEATURES)), 4).tolist()}).encode()
        for _ in range(count)
    ]


def start(argv: list[str], url: str, path: str, body: bytes, cwd: str) -> tuple[subprocess.Popen, float]:
    """Start a server and return it with its cold start: spawn until the first successful prediction."""
    t0 = time.perf_counter()
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = t0 + 120
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{argv[:3]} exited with {proc.returncode}")
        try:
            req = urllib.request.Request(url + path, data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=2) as response:
                if response.status == 200:
                    return proc, time.perf_counter() - t0
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{argv[:3]} not serving after 120 s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, 15)  # its own session: the server and any workers it forked, nothing else
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=15)


def drive(url: str, path: str, payloads: list[bytes], seconds: float, concurrency: int) -> LoadResult:
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(run_load(url, path, payloads, duration_s=seconds, concurrency=concurrency))
    except ImportError:
        return asyncio.run(run_load(url, path, payloads, duration_s=seconds, concurrency=concurrency))


def floor(model_path: Path, rows: int, concurrency: int, seconds: float) -> LoadResult:
    """Bare InferenceSession.run in this process, same session options as the server, C threads."""
    import onnxruntime as ort

    from mlspec.serving.model import session_options

    session = ort.InferenceSession(str(model_path), session_options(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(-2, 2, (rows, N_FEATURES)).astype(np.float32)
    session.run(None, {"input": x})
    result = LoadResult()
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        local = []
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            session.run(None, {"input": x})
            local.append(time.perf_counter() - t)
        with lock:
            result.latencies_s.extend(local)

    start_t = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.elapsed_s = time.perf_counter() - start_t
    result.statuses = {"ok": len(result.latencies_s)}
    return result


def combine(parts: list[LoadResult]) -> LoadResult:
    """Several runs of one cell as one: all requests over the summed time."""
    out = LoadResult()
    for part in parts:
        out.latencies_s += part.latencies_s
        out.elapsed_s += part.elapsed_s
        for key, n in part.statuses.items():
            out.statuses[key] = out.statuses.get(key, 0) + n
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="Duration of each cell.")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--rows", default="1,64")
    parser.add_argument("--rounds", type=int, default=2, help="Alternations of logging off/on per cell.")
    parser.add_argument("--skip-mlflow", action="store_true")
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    row_counts = [int(r) for r in args.rows.split(",")]

    tmp = Path(tempfile.mkdtemp(prefix="mlspec-bench-serving-"))
    try:
        run(args, tmp, concurrencies, row_counts)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the model, and the prediction log the bench wrote


def run(args: argparse.Namespace, tmp: Path, concurrencies: list[int], row_counts: list[int]) -> None:
    model_path = tmp / "model.onnx"
    write_mlp(model_path, N_FEATURES, hidden=(64, 32), seed=0)
    mlflow_dir = tmp / "mlflow_model"
    subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import sys, numpy as np, onnx, mlflow.onnx\n"
                "from mlflow.models import infer_signature\n"
                "x = np.zeros((2, 20), np.float32)\n"
                "mlflow.onnx.save_model(onnx.load(sys.argv[1]), sys.argv[2], "
                "signature=infer_signature(x, np.zeros((2, 1), np.float32)))\n"
            ),
            str(model_path),
            str(mlflow_dir),
        ],
        check=True,
        capture_output=True,
    )

    rows_out: list[tuple] = []
    info: dict[str, dict[str, float]] = {}
    for rows in row_counts:
        for c in concurrencies:
            rows_out.append(
                ("floor (InferenceSession.run)", rows, c, floor(model_path, rows, c, args.seconds))
            )

    port_ours, port_logged, port_mlflow = free_port(), free_port(), free_port()

    def ours(port: int, *extra: str) -> list[str]:
        return [
            sys.executable, "-m", "mlspec", "serve", "--model", str(model_path), "--name", "mlp",
            "--port", str(port), "--log-level", "warning", *extra,
        ]  # fmt: skip

    log_dir = tmp / "predictions"
    payloads = {rows: bodies(rows) for rows in row_counts}
    paired = [
        ("mlspec serve", ours(port_ours), f"http://127.0.0.1:{port_ours}", "/predict"),
        (
            "mlspec serve + prediction log",
            ours(port_logged, "--prediction-log", str(log_dir), "--sample-rate", "1.0"),
            f"http://127.0.0.1:{port_logged}",
            "/predict",
        ),
    ]
    procs = []
    server_cpu: dict[tuple[str, int, int], float] = {}
    try:
        for name, argv, url, path in paired:
            proc, cold = start(argv, url, path, payloads[row_counts[0]][0], str(tmp))
            procs.append(proc)
            info[name] = {"cold_start_s": cold, "rss_idle_mb": rss_mb(proc.pid), "rss_peak_mb": 0.0}
        for rows in row_counts:
            for c in concurrencies:
                results: dict[str, list[LoadResult]] = {name: [] for name, *_ in paired}
                for k in range(args.rounds):
                    order = list(zip(paired, procs, strict=True))
                    for (name, _, url, path), proc in order if k % 2 == 0 else order[::-1]:
                        before = cpu_s(proc.pid)
                        results[name].append(drive(url, path, payloads[rows], args.seconds, c))
                        server_cpu[(name, rows, c)] = (
                            server_cpu.get((name, rows, c), 0.0) + cpu_s(proc.pid) - before
                        )
                        info[name]["rss_peak_mb"] = max(info[name]["rss_peak_mb"], rss_mb(proc.pid))
                for name, parts in results.items():
                    rows_out.append((name, rows, c, combine(parts)))
    finally:
        for proc in procs:
            stop(proc)
    n_files = sum(1 for _ in log_dir.rglob("*.parquet"))

    systems = []
    if not args.skip_mlflow:
        systems.append(
            (
                "mlflow models serve",
                [
                    f"{VENV_BIN}/mlflow",
                    "models",
                    "serve",
                    "-m",
                    str(mlflow_dir),
                    "--env-manager",
                    "local",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port_mlflow),
                ],
                f"http://127.0.0.1:{port_mlflow}",
                "/invocations",
            )
        )
    for name, argv, url, path in systems:
        proc, cold = start(argv, url, path, payloads[row_counts[0]][0], str(tmp))
        try:
            info[name] = {"cold_start_s": cold, "rss_idle_mb": rss_mb(proc.pid)}
            peak = 0.0
            for rows in row_counts:
                for c in concurrencies:
                    result = drive(url, path, payloads[rows], args.seconds, c)
                    peak = max(peak, rss_mb(proc.pid))
                    rows_out.append((name, rows, c, result))
            info[name]["rss_peak_mb"] = peak
        finally:
            stop(proc)

    print(
        f"\nONNX MLP 20-64-32-1, {args.seconds:g} s per cell, {os.cpu_count()} CPUs (shared), "
        f"client in-process (keep-alive asyncio)\n"
    )
    print(
        f"{'system':<30} {'rows':>4} {'conc':>4} {'req/s':>9} {'rows/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>6}"
    )
    for name, rows, c, r in rows_out:
        print(
            f"{name:<30} {rows:>4} {c:>4} {r.throughput:>9.0f} {r.throughput * rows:>10.0f} "
            f"{r.percentile_ms(50):>8.3f} {r.percentile_ms(99):>8.3f} {r.errors(ERROR_STATUS_CLASSES):>6}"
        )
    print(f"\n{'system':<30} {'cold start s':>12} {'mem idle MB':>12} {'mem peak MB':>12}")
    for name, values in info.items():
        print(
            f"{name:<30} {values['cold_start_s']:>12.2f} {values['rss_idle_mb']:>12.0f} "
            f"{values['rss_peak_mb']:>12.0f}"
        )

    by_key = {(name, rows, c): r for name, rows, c, r in rows_out}
    print(
        f"\nprediction log cost (sample rate 1.0, {n_files} Parquet files written): throughput with the log on / off,"
        " server CPU per request on / off, p99 on vs off"
    )
    for rows in row_counts:
        for c in concurrencies:
            off, on = by_key[("mlspec serve", rows, c)], by_key[("mlspec serve + prediction log", rows, c)]
            ratio = on.throughput / off.throughput if off.throughput else float("nan")
            cpu_on = server_cpu[("mlspec serve + prediction log", rows, c)] / max(on.total, 1) * 1e6
            cpu_off = server_cpu[("mlspec serve", rows, c)] / max(off.total, 1) * 1e6
            print(
                f"  rows {rows:>2} conc {c:>2}: throughput {ratio:6.3f} ({on.throughput:7.0f} vs {off.throughput:7.0f}"
                f" req/s)   CPU {cpu_on / cpu_off:6.3f} ({cpu_on:5.0f} vs {cpu_off:5.0f} us/req)   "
                f"p99 {on.percentile_ms(99):6.2f} vs {off.percentile_ms(99):6.2f} ms"
            )
    print("\nmlspec vs mlflow (throughput ratio, p99 ms) and HTTP overhead over the floor (p50 difference):")
    for rows in row_counts:
        for c in concurrencies:
            ours, floor_r = (
                by_key[("mlspec serve", rows, c)],
                by_key[("floor (InferenceSession.run)", rows, c)],
            )
            line = f"  rows {rows:>2} conc {c:>2}: overhead {ours.percentile_ms(50) - floor_r.percentile_ms(50):6.3f} ms"
            theirs = by_key.get(("mlflow models serve", rows, c))
            if theirs is not None and theirs.throughput:
                line += (
                    f"   throughput x{ours.throughput / theirs.throughput:5.1f}   p99 {ours.percentile_ms(99):7.2f}"
                    f" vs {theirs.percentile_ms(99):7.2f}"
                )
            print(line)


if __name__ == "__main__":
    main()
