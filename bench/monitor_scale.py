"""Benchmark: the monitor over 1M, 10M and 100M logged rows x 25 features: time and peak memory.

    .venv/bin/python bench/monitor_scale.py [--rows 1,10,100] [--keep]

The log is written as the model server writes it (Parquet, date=/hour= partitions, one float32 column per
feature, categories as the model's value index, row groups of 65,536 rows), 1M rows per hour partition. To keep
the disk use near 1 GB, only the first 10 partitions are real files; the 90 more hours of the 100M log are hard
links to them, so the monitor reads 100M rows from 100 partitions while the disk holds 10M. Everything is
deleted at the end (unless --keep).

Each size runs `mlspec.runtime.monitor.run_monitor` (drift on every feature, correlation, data quality, the
data_quality trigger, HTML report; no labels, no MLflow) in a fresh subprocess, which reports its wall time,
CPU time and peak RSS (getrusage). The memory should stay flat as rows grow: the window is streamed one row
group at a time into a mergeable summary.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_NUM, CATEGORIES = 20, (50, 40, 30, 20, 10)
ROWS_PER_PARTITION = 1_000_000
REAL_PARTITIONS = 10
START = np.datetime64("2025-07-01T00:00:00")

SPEC = """\
apiVersion: mlspec/v1
kind: MLSystem
metadata: {{name: scale}}
images: {{runtime: ghcr.io/acme/scale:1.0.0}}
data:
  sources: {{train: {{uri: train.parquet}}}}
  schema:
    target: label
    columns:
{columns}
      label: {{type: int, values: [0, 1]}}
serving: {{prediction_log: log}}
monitoring:
  window: 5d
  min_samples: 1000
  drift: {{method: psi, threshold: 0.2, correlation_change: 0.2}}
retraining:
  triggers:
    - {{on: drift}}
    - {{on: data_quality, max_null_rate: 0.05, max_out_of_range_rate: 0.01, max_unseen_rate: 0.01}}
targets: [kubeflow]
"""

CHILD = r"""
import json, resource, sys, time
import pandas as pd
import mlspec
from mlspec.runtime import monitor
ir = mlspec.lower(mlspec.load(sys.argv[1]))
wall, cpu = time.perf_counter(), time.process_time()
result = monitor.run_monitor(ir, sys.argv[2], reference=sys.argv[3], log=sys.argv[4],
                             now=pd.Timestamp(sys.argv[5]), state=sys.argv[6], mlflow=False)
print(json.dumps({"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows": result["rows"], "drifted": result["drifted_features"],
                  "violations": len(result["data_quality_violations"])}))
"""


def _column_names() -> tuple[list[str], list[str]]:
    return [f"n{j}" for j in range(N_NUM)], [f"c{j}" for j in range(len(CATEGORIES))]


def _numeric(rng: np.random.Generator, j: int, n: int) -> np.ndarray:
    shape = j % 4
    if shape == 0:
        return rng.normal(10 + j, 1 + j % 3, n)
    if shape == 1:
        return rng.gamma(2 + j % 4, 1.5, n)
    if shape == 2:
        return rng.lognormal(1.0, 0.4 + 0.05 * j, n)
    return np.where(rng.random(n) < 0.35, rng.normal(-2.0, 0.6, n), rng.normal(3.0, 1.2, n))


def write_spec_and_reference(root: Path) -> tuple[Path, Path]:
    """The spec (25 features) and the reference profile, as the export step would save them."""
    import pandas as pd

    import mlspec
    from mlspec.runtime import drift

    nums, cats = _column_names()
    lines = [f"      {n}: {{type: float}}" for n in nums]
    lines += [
        f"      {c}: {{type: category, values: [{', '.join(f'v{i}' for i in range(k))}]}}"
        for c, k in zip(cats, CATEGORIES, strict=True)
    ]
    spec = root / "scale.yaml"
    spec.write_text(SPEC.format(columns="\n".join(lines)))
    ir = mlspec.lower(mlspec.load(spec))
    rng = np.random.default_rng(0)
    n = 200_000
    frame = {name: _numeric(rng, j, n) for j, name in enumerate(nums)}
    for c, k in zip(cats, CATEGORIES, strict=True):
        weights = 1.0 / np.arange(1, k + 1)
        frame[c] = np.array([f"v{i}" for i in range(k)], dtype=object)[
            rng.choice(k, n, p=weights / weights.sum())
        ]
    profile = drift.reference_profile(pd.DataFrame(frame), list(ir.data.features), list(ir.data.columns))
    path = root / "reference_profile.json"
    path.write_text(json.dumps(profile))
    return spec, path


def write_partition(path: Path, hour: int, seed: int) -> None:
    """One hour of the server's Parquet log: ROWS_PER_PARTITION rows, written in row groups of 65,536."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    nums, cats = _column_names()
    n = ROWS_PER_PARTITION
    ts = START + np.timedelta64(hour, "h") + np.sort(rng.integers(0, 3_600_000, n)).astype("timedelta64[ms]")
    owner = pa.array((np.arange(n) // 8).astype(np.int32))  # 8 rows per request
    ids = pa.array([f"{seed:04d}-{i:08d}" for i in range((n + 7) // 8)])
    columns = {
        "ts": pa.array(ts.astype("datetime64[ms]"), type=pa.timestamp("ms", tz="UTC")),
        "request_id": pa.DictionaryArray.from_arrays(owner, ids),
        "model_version": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array(["3"])),
        "variant": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array(["champion"])),
        "source": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array(["live"])),
        "row": pa.array((np.arange(n) % 8).astype(np.int32)),
    }
    for j, name in enumerate(nums):
        values = _numeric(rng, j, n).astype(np.float32)
        if j < 3:
            values += np.float32(0.3 * values.std())  # a little drift
        columns[name] = pa.array(values)
    for c, k in zip(cats, CATEGORIES, strict=True):
        weights = 1.0 / np.arange(1, k + 1)
        codes = rng.choice(k, n, p=weights / weights.sum()).astype(np.float32)
        codes[rng.random(n) < 0.002] = -1  # a value the model does not know
        columns[c] = pa.array(codes)
    columns["outputs"] = pa.ListArray.from_arrays(
        pa.array(np.arange(n + 1, dtype=np.int32)), pa.array(rng.random(n).astype(np.float32))
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path, row_group_size=65_536, compression="snappy")


def partition_path(log: Path, hour: int) -> Path:
    day = (START + np.timedelta64(hour, "h")).astype("datetime64[D]")
    return log / f"date={day}" / f"hour={hour % 24:02d}" / "part-0.parquet"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1,10,100", help="Millions of logged rows per run.")
    parser.add_argument("--keep", action="store_true", help="Keep the generated log (for profiling).")
    args = parser.parse_args()
    sizes = [int(s) for s in args.rows.split(",")]
    root = Path(tempfile.mkdtemp(prefix="mlspec-bench-monitor-"))
    try:
        t = time.perf_counter()
        spec, reference = write_spec_and_reference(root)
        real = root / "real"
        for hour in range(min(REAL_PARTITIONS, max(sizes))):
            write_partition(partition_path(real, hour), hour, seed=hour)
        disk = sum(p.stat().st_size for p in real.rglob("*.parquet"))
        print(
            f"log written in {time.perf_counter() - t:.0f}s: {min(REAL_PARTITIONS, max(sizes))} partitions of "
            f"{ROWS_PER_PARTITION:,} rows x 25 features, {disk / 2**20:.0f} MiB on disk ({disk / min(REAL_PARTITIONS, max(sizes)) / ROWS_PER_PARTITION:.0f} B/row)"
        )
        print(
            f"\n{'rows':>12} {'partitions':>10} {'wall s':>8} {'CPU s':>8} {'rows/s':>12} {'peak RSS MB':>12}"
        )
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
            ),
        }
        results = []
        for millions in sizes:
            log = root / f"log-{millions}"
            for hour in range(millions):
                target = partition_path(log, hour)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(partition_path(real, hour % REAL_PARTITIONS), target)  # no new disk for repeats
            now = str(START + np.timedelta64(millions, "h")) + "Z"
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(spec), str(root / f"run-{millions}"), str(reference), str(log),
                 now, str(root / f"state-{millions}.json")],
                capture_output=True, text=True, env=env, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(f"monitor failed on {millions}M rows:\n{done.stderr[-3000:]}")
            r = json.loads(done.stdout.strip().splitlines()[-1])
            results.append(r)
            print(
                f"{r['rows']:>12,} {millions:>10} {r['wall_s']:>8.1f} {r['cpu_s']:>8.1f} "
                f"{r['rows'] / r['wall_s']:>12,.0f} {r['peak_rss_mb']:>12.0f}"
            )
            shutil.rmtree(log)
        if len(results) > 1:
            first, last = results[0], results[-1]
            print(
                f"\n{last['rows'] / first['rows']:.0f}x the rows: {last['wall_s'] / first['wall_s']:.1f}x the time, "
                f"{last['peak_rss_mb'] / first['peak_rss_mb']:.2f}x the peak memory "
                f"(drifted: {','.join(last['drifted'])}; data-quality violations: {last['violations']})"
            )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
