"""The Parquet prediction log: partitions by hour, columns, rotation, the traffic source, and the monitor reading it."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlspec.runtime.monitoring import window
from mlspec.serving import logbuffer
from mlspec.serving.logbuffer import LoggedBatch
from mlspec.serving.metrics import Metrics
from mlspec.serving.predlog import PredictionLogger

FEATURES = ["a", "b", "c"]
BEFORE_NOON = pd.Timestamp("2025-07-01T11:59:59.250Z").timestamp()


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _logger(base: Path, clock: Clock, **kwargs) -> tuple[PredictionLogger, Metrics]:
    metrics = Metrics([0.1], 64)
    return PredictionLogger(str(base), 1.0, metrics, clock=clock, **kwargs), metrics


def _rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, len(FEATURES))).astype(np.float32)


def test_records_land_in_hour_partitions_with_one_column_per_feature(tmp_path: Path) -> None:
    clock = Clock(BEFORE_NOON)
    logger, metrics = _logger(tmp_path, clock)
    x1, x2 = _rows(2, 1), _rows(3, 2)
    logger.submit("r1", "7", FEATURES, x1, [x1[:, :1] * 2], source="loadtest")
    clock.t += 1.5  # 12:00:00.75: the next hour's partition
    logger.submit("r2", "7", FEATURES, x2, [x2[:, :1] * 2, x2[:, 1:2]])
    logger.close()
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet"))
    assert [f.rsplit("/", 1)[0] for f in files] == ["date=2025-07-01/hour=11", "date=2025-07-01/hour=12"]
    assert not list(tmp_path.rglob(".*.tmp"))  # complete files only
    first = pq.read_table(tmp_path / files[0]).to_pandas()
    assert list(first.columns) == [
        "ts",
        "request_id",
        "model_version",
        "variant",
        "source",
        "row",
        *FEATURES,
        "outputs",
    ]
    assert first["request_id"].tolist() == ["r1", "r1"] and first["row"].tolist() == [0, 1]
    assert first["source"].tolist() == ["loadtest"] * 2 and first["variant"].tolist() == ["champion"] * 2
    np.testing.assert_array_equal(first[FEATURES].to_numpy(), x1)
    assert first["ts"].iloc[0] == pd.Timestamp("2025-07-01T11:59:59.250Z")
    second = pq.read_table(tmp_path / files[1]).to_pandas()
    assert second["source"].tolist() == ["live"] * 3  # no header: live traffic
    np.testing.assert_allclose(
        np.stack(second["outputs"].to_numpy()), np.column_stack([x2[:, 0] * 2, x2[:, 1]])
    )
    assert metrics.log_written._value.get() == 5 and metrics.log_dropped._value.get() == 0


def test_files_rotate_and_the_monitor_reads_parquet_and_jsonl_side_by_side(tmp_path: Path) -> None:
    clock = Clock(BEFORE_NOON - 600)
    logger, _ = _logger(tmp_path, clock, rotate_s=0.05)
    logger.submit("p1", "1", FEATURES, _rows(4, 3), [_rows(4, 3)[:, :1]])
    time.sleep(0.05)
    logger.tick()  # rotate_s has passed: the rows are shipped and the writer closes the file
    for _ in range(200):
        if list(tmp_path.rglob("*.parquet")):
            break
        time.sleep(0.05)
    logger.submit("p2", "1", FEATURES, _rows(1, 4), [_rows(1, 4)[:, :1]])
    logger.close()
    assert len(list(tmp_path.rglob("*.parquet"))) == 2
    old = tmp_path / "date=2025-07-01" / "old.jsonl"  # a log written by an older server
    old.write_text(
        '{"ts": "2025-07-01T11:00:00Z", "request_id": "j1", "inputs": {"a": 0.5, "b": 0.1, "c": 0.2}}\n'
    )
    parts, skipped = window.partitions(
        str(tmp_path), pd.Timestamp("2025-07-01T10:00:00Z"), pd.Timestamp("2025-07-01T12:00:00Z")
    )
    assert skipped == 0 and [p.key for p in parts] == ["date=2025-07-01", "date=2025-07-01/hour=11"]
    early = window.partitions(
        str(tmp_path), pd.Timestamp("2025-07-01T12:00:00Z"), pd.Timestamp("2025-07-01T13:00:00Z")
    )
    assert [p.key for p in early[0]] == ["date=2025-07-01"] and early[1] == 2  # hour=11 skipped unread


def test_reserved_feature_names_are_refused_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    logger, metrics = _logger(tmp_path, Clock(BEFORE_NOON))
    logger.submit("r", "1", ["ts", "b", "c"], _rows(2, 5), [_rows(2, 5)[:, :1]])
    logger.close()
    assert not list(tmp_path.rglob("*.parquet")) and metrics.log_dropped._value.get() == 2
    assert "reserved" in caplog.text


def test_full_buffers_drop_instead_of_blocking(tmp_path: Path) -> None:
    # one shared buffer of three rows: the second request finds it full and nothing free, and is dropped
    layout = (tuple(FEATURES), "<f4", 1)
    three_rows = next(size for size in range(64, 4096) if logbuffer.capacity(layout, size).rows == 3)
    logger, metrics = _logger(tmp_path, Clock(BEFORE_NOON), buffers=1, buffer_bytes=three_rows)
    logger.submit("a", "1", FEATURES, _rows(2, 6), [_rows(2, 6)[:, :1]])
    logger.submit("b", "1", FEATURES, _rows(2, 7), [_rows(2, 7)[:, :1]])
    assert metrics.log_dropped._value.get() == 2
    logger.close()
    (written,) = tmp_path.rglob("*.parquet")
    assert pq.read_table(written)["request_id"].to_pylist() == ["a", "a"]
    assert metrics.log_written._value.get() == 2


def test_a_writer_process_that_dies_loses_only_its_rows_and_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlspec.serving import predlog

    monkeypatch.setattr(predlog, "RESTART_AFTER_S", 0.0)
    logger, metrics = _logger(tmp_path, Clock(BEFORE_NOON), rotate_s=0.05)
    first = logger._process
    assert first is not None
    first.kill()
    first.wait()
    logger.tick()  # notices the closed pipe and starts another writer
    assert logger._process is not None and logger._process is not first
    logger.submit("after", "1", FEATURES, _rows(3, 8), [_rows(3, 8)[:, :1]])
    time.sleep(0.05)
    logger.tick()  # the rotation ships the rows to the new writer, which publishes its file
    for _ in range(400):
        if list(tmp_path.rglob("*.parquet")):
            break
        time.sleep(0.05)
    logger.close()
    (written,) = tmp_path.rglob("*.parquet")
    assert pq.read_table(written)["request_id"].to_pylist() == ["after"] * 3
    assert metrics.log_written._value.get() == 3


def test_a_batch_keeps_each_requests_id_source_rows_and_model_version(tmp_path: Path) -> None:
    logger, metrics = _logger(tmp_path, Clock(BEFORE_NOON))
    ids = ["a", "zürich-ß", "x" * 50]  # lengths differ, and UTF-8 is not ASCII
    x1, x2 = _rows(6, 10), _rows(1, 11)
    logger.submit_batches(
        [
            LoggedBatch("7", FEATURES, x1, [x1[:, :1]], ids, ["live", "loadtest", "live"], [2, 1, 3]),
            LoggedBatch("8", FEATURES, x2, [x2[:, :1]], ["b"], ["canary"], [1]),
        ]
    )
    logger.close()
    (path,) = tmp_path.rglob("*.parquet")
    strings = pa.dictionary(pa.int32(), pa.string())  # as older servers wrote them: one schema across files
    schema = pq.read_schema(path)
    assert [schema.field(c).type for c in ("request_id", "model_version", "variant", "source")] == [
        strings
    ] * 4
    table = pq.read_table(path).to_pandas()
    assert table["request_id"].tolist() == ["a", "a", "zürich-ß", "x" * 50, "x" * 50, "x" * 50, "b"]
    assert table["source"].tolist() == ["live", "live", "loadtest", "live", "live", "live", "canary"]
    assert table["row"].tolist() == [0, 1, 0, 0, 1, 2, 0]
    assert table["model_version"].tolist() == ["7"] * 6 + ["8"]
    np.testing.assert_array_equal(table[FEATURES].to_numpy(), np.vstack([x1, x2]))
    assert metrics.log_written._value.get() == 7


def test_request_ids_that_fill_a_buffer_continue_in_the_next_and_one_too_long_is_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    layout = (tuple(FEATURES), "<f4", 1)
    ten_rows = next(size for size in range(64, 4096) if logbuffer.capacity(layout, size).rows == 10)
    logger, metrics = _logger(tmp_path, Clock(BEFORE_NOON), buffer_bytes=ten_rows)
    # ten rows leave room for ten 64-byte ids: three of 200 bytes fill a buffer, and nine take three
    long_ids = [f"{i}".ljust(200, "-") for i in range(9)]
    for request_id in long_ids:
        logger.submit(request_id, "1", FEATURES, _rows(1, 12), [_rows(1, 12)[:, :1]])
    logger.submit("y" * 700, "1", FEATURES, _rows(1, 13), [_rows(1, 13)[:, :1]])  # more than a whole buffer's
    logger.submit("after", "1", FEATURES, _rows(1, 14), [_rows(1, 14)[:, :1]])
    logger.close()
    logged = sorted(
        i for p in tmp_path.rglob("*.parquet") for i in pq.read_table(p)["request_id"].to_pylist()
    )
    assert logged == sorted([*long_ids, "after"])
    assert metrics.log_written._value.get() == 10 and metrics.log_dropped._value.get() == 1
    assert "700 bytes of request ids exceeds a buffer" in caplog.text
