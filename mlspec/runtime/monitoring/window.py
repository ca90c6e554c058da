"""The prediction log on disk: its partitions, and each partition streamed into a Summary in bounded memory.

Layout (mlspec.serving.predlog writes it): BASE/date=YYYY-MM-DD/hour=HH/<time>-<id>.parquet. Older logs with
JSONL files (records with an "inputs" object) or date=-only partitions, and Parquet files with one column per
feature and "ts" from elsewhere, are read the same way. Labels live under BASE/labels/ by default.

    partitions(base, start, end) -> [Partition]       skips partitions entirely outside the window unread
    summarize(partition, plan, labels) -> Summary     one partition, batch by batch (BATCH_ROWS rows at a time)
    summarize_window(parts, plan, labels) -> Summary  the merge of every partition's summary

A fan-out runs summarize() per partition on as many workers as it likes and merges the results: the merge is
exact, so the scores equal those of summarize_window() in one process.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from functools import reduce
from typing import Any

import pandas as pd

from mlspec.runtime import StepError, data
from mlspec.runtime.monitoring import MonitorError
from mlspec.runtime.monitoring.plan import Plan
from mlspec.runtime.monitoring.summary import Summary, empty, merge, summarize_batch

LOG_SUFFIXES = (".parquet", ".pq", ".jsonl", ".json")
LABEL_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet", ".pq")
BATCH_ROWS = 65_536
RECORD_COLUMNS = ("ts", "request_id", "row", "model_version", "variant", "source", "outputs")
LABEL_JOIN_COLUMNS = ("request_id", "row", "outputs")


class LogError(MonitorError):
    """The log or the labels cannot be listed or read; the message names the location."""


@dataclass(frozen=True)
class Partition:
    key: str  # "date=2025-07-01/hour=12", "date=2025-07-01", or "" for files outside any partition
    files: tuple[str, ...]


def list_files(base: str, suffixes: tuple[str, ...], exclude: str | None = None) -> list[str]:
    try:
        fs, path = data.filesystem(base)
        if not fs.exists(path):
            return []
        if not fs.isdir(path):
            return [base]
        listed = fs.find(path)
    except Exception as exc:  # credentials, network, permissions: name the location, not a traceback
        raise LogError(f"cannot list {base}: {type(exc).__name__}: {exc}") from exc
    proto = base.split("://", 1)[0] + "://" if "://" in base else ""
    found = sorted(p for p in listed if p.lower().endswith(suffixes) and not _hidden(p))
    if exclude:
        found = [p for p in found if f"/{exclude}/" not in p]
    return [proto + p if proto and not p.startswith(proto) else p for p in found]


def exists(uri: str) -> bool:
    try:
        fs, path = data.filesystem(uri)
        return bool(fs.exists(path))
    except Exception as exc:  # credentials, network, permissions: name the location, not a traceback
        raise LogError(f"cannot reach {uri}: {type(exc).__name__}: {exc}") from exc


def _hidden(path: str) -> bool:
    """Files being written (the server writes .name.tmp, then renames) and hidden files are not the log."""
    return path.rsplit("/", 1)[-1].startswith((".", "_"))


def _partition_key(path: str) -> str:
    parts = [p for p in path.split("/") if p.startswith(("date=", "hour="))]
    return "/".join(parts)


def _span(key: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The time a partition key covers, [from, to), or None when it names no date."""
    fields = dict(p.split("=", 1) for p in key.split("/") if "=" in p)
    try:
        day = pd.Timestamp(fields["date"], tz="UTC")
    except (KeyError, ValueError):
        return None
    if "hour" in fields and fields["hour"].isdigit():
        begin = day + pd.Timedelta(hours=int(fields["hour"]))
        return begin, begin + pd.Timedelta(hours=1)
    return day, day + pd.Timedelta(days=1)


def partitions(base: str, start: pd.Timestamp, end: pd.Timestamp) -> tuple[list[Partition], int]:
    """The partitions under `base` that may hold rows with start < ts <= end, and how many files were skipped."""
    files = list_files(base, LOG_SUFFIXES, exclude="labels")
    grouped: dict[str, list[str]] = {}
    skipped = 0
    for path in files:
        key = _partition_key(path)
        span = _span(key)
        if span is not None and (span[1] <= start or span[0] > end):
            skipped += 1
            continue
        grouped.setdefault(key, []).append(path)
    return [Partition(k, tuple(v)) for k, v in sorted(grouped.items())], skipped


# ----------------------------------------------------------------------------------------------- reading


def _wanted(plan: Plan, labels: bool) -> list[str]:
    """The columns to decode: request ids, rows and outputs only when there are labels to join."""
    record = RECORD_COLUMNS if labels else tuple(c for c in RECORD_COLUMNS if c not in LABEL_JOIN_COLUMNS)
    return [*record, *(f.name for f in plan.features)]


def iter_batches(uri: str, columns: list[str]) -> Iterator[Any]:
    """Batches of at most BATCH_ROWS rows: pyarrow RecordBatches from Parquet, DataFrames from JSONL."""
    low = uri.lower()
    try:
        if low.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            with data.open_file(uri, "rb") as handle:
                parquet = pq.ParquetFile(handle)
                present = [c for c in columns if c in parquet.schema_arrow.names]
                yield from parquet.iter_batches(batch_size=BATCH_ROWS, columns=present)
            return
        with data.open_file(uri, "rb") as handle:
            raw = handle.read()
        if not raw.strip():
            return
        reader = pd.read_json(io.BytesIO(raw), lines=True, dtype=False, chunksize=BATCH_ROWS)
        for chunk in reader:
            yield _flatten(chunk)
    except StepError:
        raise
    except Exception as exc:
        raise LogError(f"cannot read the prediction log file {uri}: {type(exc).__name__}: {exc}") from exc


def _flatten(frame: pd.DataFrame) -> pd.DataFrame:
    """Spread the "inputs" objects of JSONL records into one column per feature."""
    if "inputs" not in frame.columns:
        return frame
    inputs = pd.DataFrame(frame["inputs"].tolist(), index=frame.index)
    rest = frame.drop(columns=["inputs"])
    return pd.concat([rest, inputs.drop(columns=[c for c in inputs.columns if c in rest.columns])], axis=1)


def summarize(partition: Partition, plan: Plan, labels: pd.DataFrame | None = None) -> Summary:
    """One partition's Summary, reading at most BATCH_ROWS rows at a time."""
    total = empty(plan)
    columns = _wanted(plan, labels is not None and len(labels) > 0)
    for uri in partition.files:
        for batch in iter_batches(uri, columns):
            try:
                total = merge(total, summarize_batch(batch, plan, labels))
            except ValueError as exc:
                raise LogError(f"{uri}: {exc}") from exc
    return total


def summarize_window(parts: list[Partition], plan: Plan, labels: pd.DataFrame | None = None) -> Summary:
    return reduce(merge, (summarize(p, plan, labels) for p in parts), empty(plan))


# ----------------------------------------------------------------------------------------------- labels


def _read_table(uri: str) -> pd.DataFrame:
    low = uri.lower()
    if low.endswith((".parquet", ".pq")):
        return data.read_source(uri, "parquet")
    if low.endswith(".csv"):
        return data.read_source(uri, "csv")
    with data.open_file(uri, "rb") as handle:
        raw = handle.read()
    return pd.read_json(io.BytesIO(raw), lines=True, dtype=False) if raw.strip() else pd.DataFrame()


def read_labels(base: str, target: str) -> pd.DataFrame:
    """request_id (text), row when present, and __label__ (the target column, or "label")."""
    frames = [f for f in (_read_table(u) for u in list_files(base, LABEL_SUFFIXES)) if len(f)]
    if not frames:
        return pd.DataFrame()
    labels = pd.concat(frames, ignore_index=True)
    if "request_id" not in labels.columns:
        raise LogError(f"the labels under {base} have no request_id column to join on")
    column = target if target in labels.columns else "label" if "label" in labels.columns else None
    if column is None:
        raise LogError(f"the labels under {base} have neither a '{target}' nor a 'label' column")
    keep = ["request_id", *(["row"] if "row" in labels.columns else []), column]
    out = labels[keep].rename(columns={column: "__label__"})
    out["request_id"] = out["request_id"].astype(str)
    return out.drop_duplicates(subset=[k for k in keep if k != column], keep="last").reset_index(drop=True)
