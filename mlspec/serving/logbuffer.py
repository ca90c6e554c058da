"""The prediction log's shared buffers: how the server and its log writer process lay out one buffer.

A buffer is BUFFER_BYTES of shared memory (a memfd, or an unlinked temporary file where there is none). For a
layout (feature names, input dtype, output width) it holds up to `rows` input rows, row-major as the server
received them, and their outputs as float32; and, column by column, up to `requests` requests (each one's
row count, traffic source code and request id, the ids as UTF-8 with Arrow's int32 end offsets) and as many
batches (each one's time, model version code and number of requests). The server copies batches in; the
writer process maps the same memory and reads them out, so neither rows nor ids cross a pipe and the server
keeps no object per logged request.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

BUFFER_BYTES = 8 * 2**20
BUFFERS = 6  # being filled, waiting for the writer, being written, spare: the log's whole memory is fixed
MAX_REQUESTS = 8192  # request slots per buffer, when its rows allow as many
ID_BYTES = 64  # request id bytes per request slot: a batch whose ids do not fit starts the next buffer
# per request slot: end offset, rows, source code, id bytes; and a batch slot (time, requests, version code)
REQUEST_BYTES = 4 + 4 + 2 + ID_BYTES + 8 + 4 + 2
ALIGN = 8

Layout = tuple[tuple[str, ...], str, int]  # feature names, input dtype (numpy str), output width
LogEntry = tuple[str, str]  # a request to log: its id and traffic source


class LoggedBatch(NamedTuple):
    """An answered inference batch for the log: its input rows and outputs, and per logged request (in row
    order) its id, traffic source and number of rows. Plain lists and arrays: a few objects per batch, none
    per request, so that holding many batches does not wake the garbage collector."""

    model_version: str
    features: list[str] | None
    inputs: np.ndarray
    outputs: list[np.ndarray]
    ids: list[str]
    sources: list[str]
    rows: list[int]


@dataclass(frozen=True)
class Capacity:
    rows: int
    requests: int  # also the batch slots: a batch has at least one request


def capacity(layout: Layout, size: int = BUFFER_BYTES) -> Capacity:
    names, dtype, width = layout
    row_bytes = len(names) * np.dtype(dtype).itemsize + width * 4
    usable = size - 10 * ALIGN  # each region's start is aligned
    rows = max(usable // (row_bytes + REQUEST_BYTES), 0)
    if rows <= MAX_REQUESTS:
        return Capacity(rows, rows)
    return Capacity((usable - MAX_REQUESTS * REQUEST_BYTES) // row_bytes, MAX_REQUESTS)


@dataclass
class Views:
    """One buffer's columns as arrays over the shared memory (no copy)."""

    inputs: np.ndarray  # rows x features, the model's input dtype
    outputs: np.ndarray  # rows x output width, float32
    batch_ts: np.ndarray  # float64 seconds
    request_ends: np.ndarray  # int32, requests + 1: request i's id is ids[ends[i]:ends[i + 1]]; ends[0] is 0
    request_rows: np.ndarray  # int32
    batch_requests: np.ndarray  # int32
    request_sources: np.ndarray  # int16 code: an index into the shipment's sources
    batch_versions: np.ndarray  # int16 code: an index into the shipment's model versions
    ids: np.ndarray  # uint8, UTF-8


def views(memory: mmap.mmap, layout: Layout, size: int = BUFFER_BYTES) -> Views:
    names, dtype, width = layout
    cap = capacity(layout, size)
    offset = 0

    def take(shape: tuple[int, ...], kind: str) -> np.ndarray:
        nonlocal offset
        array = np.ndarray(shape, dtype=np.dtype(kind), buffer=memory, offset=offset)
        offset = -(-(offset + array.nbytes) // ALIGN) * ALIGN
        return array

    return Views(
        inputs=take((cap.rows, len(names)), dtype),
        outputs=take((cap.rows, width), "float32"),
        batch_ts=take((cap.requests,), "float64"),
        request_ends=take((cap.requests + 1,), "int32"),
        request_rows=take((cap.requests,), "int32"),
        batch_requests=take((cap.requests,), "int32"),
        request_sources=take((cap.requests,), "int16"),
        batch_versions=take((cap.requests,), "int16"),
        ids=take((cap.requests * ID_BYTES,), "uint8"),
    )


def create(size: int = BUFFER_BYTES) -> tuple[int, mmap.mmap]:
    """A new shared buffer: its file descriptor (for the writer process) and its mapping here."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("mlspec-prediction-log")
    else:  # no memfd (macOS): an unlinked temporary file
        fd, path = tempfile.mkstemp(prefix="mlspec-prediction-log-")
        os.unlink(path)
    os.ftruncate(fd, size)
    return fd, mmap.mmap(fd, size)
