"""What it costs the loader to refuse hostile input: time and peak memory, in-process and as `mlspec lint`.

Cases: a 1.5 GiB sparse file (over the size limit), /dev/zero, a FIFO with no writer, a billion-laughs alias
bomb and the issue's 839 KB merge-key bomb (every line `- <<: *base`). For the bombs the table also shows the
same load with the text pre-scan switched off, i.e. the parser's exact node count alone, side by side in one
run. churn.yaml is the clean baseline. In-process figures are the median of REPEATS loads and tracemalloc's
peak of one more; the CLI columns are one fresh `mlspec lint` per case (interpreter start included) and the
child's peak RSS (wait4).

    .venv/bin/python bench/loader_bounds.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from mlspec import loader  # noqa: E402
from mlspec.diagnostics import MlspecError  # noqa: E402


def billion_laughs() -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]\n"
    return text


def merge_bomb() -> str:
    return "base: &base {cpu: 1, memory: 2Gi}\nitems:\n" + "  - <<: *base\n" * 60_000  # 840 KB


def refuse(path: Path) -> str:
    try:
        loader.load_file(path)
    except MlspecError as exc:
        return exc.diagnostics[0].code
    return "loaded"


def _no_check(text: str, path: str) -> None:
    return None


def measure(fn: Callable[[], str], repeats: int) -> tuple[float, float, str]:
    """Median seconds of `repeats` calls, then the peak traced MiB of one more (tracemalloc slows it)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    tracemalloc.start()
    try:
        outcome = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return statistics.median(times), peak / 2**20, outcome


def cli(path: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one `mlspec lint PATH` in a fresh interpreter."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlspec", "lint", str(path)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="loader-bounds-") as tmp:
        folder = Path(tmp)
        huge = folder / "huge.yaml"
        with huge.open("wb") as fh:
            fh.truncate(1536 * 2**20)
        fifo = folder / "pipe.yaml"
        os.mkfifo(fifo)
        laughs = folder / "laughs.yaml"
        laughs.write_text(billion_laughs())
        merge = folder / "merge.yaml"
        merge.write_text(merge_bomb())
        cases = [
            ("specs/churn.yaml (baseline)", ROOT / "specs" / "churn.yaml", False),
            ("1.5 GiB sparse file", huge, False),
            ("/dev/zero", Path("/dev/zero"), False),
            ("FIFO, no writer", fifo, False),
            ("billion laughs (9 levels)", laughs, True),
            (f"merge-key bomb ({merge.stat().st_size // 1024} KB)", merge, True),
        ]
        print(f"{'case':<32} {'outcome':>7} {'median s':>9} {'peak MiB':>9} {'cli s':>7} {'cli RSS MiB':>12}")
        for label, path, bomb in cases:
            seconds, peak, outcome = measure(functools.partial(refuse, path), opts.repeats)
            wall, rss = cli(path)
            print(f"{label:<32} {outcome:>7} {seconds:9.4f} {peak:9.1f} {wall:7.2f} {rss:12.1f}")
            if bomb:  # the same input with only the parser's exact count, as before the pre-scan
                check = loader._check_expansion
                loader._check_expansion = _no_check
                try:
                    seconds, peak, outcome = measure(functools.partial(refuse, path), 1)
                finally:
                    loader._check_expansion = check
                print(f"{'  ... parser count only':<32} {outcome:>7} {seconds:9.4f} {peak:9.1f}")


if __name__ == "__main__":
    main()
