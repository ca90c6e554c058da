"""The prediction log's shared buffers: how the server and its log writer process lay out one buffer's rows.

A buffer is BUFFER_BYTES of shared memory (a memfd, or an unlinked temporary file where there is none). For a
layout (feature names, input dtype, output width) it holds `capacity` rows: the input rows first, row-major as
the server received them, then the outputs as float32. The server copies batches in; the writer process maps
the same memory and reads them out, so no row crosses a pipe.
"""

from __future__ import annotations

import mmap
import os
import tempfile

import numpy as np

BUFFER_BYTES = 8 * 2**20
BUFFERS = 6  # being filled, waiting for the writer, being written, spare: the log's whole memory is fixed

Layout = tuple[tuple[str, ...], str, int]  # feature names, input dtype (numpy str), output width
LogEntry = tuple[str, str, int]  # a logged request: its id, traffic source and number of rows


def capacity(layout: Layout, size: int = BUFFER_BYTES) -> int:
    names, dtype, width = layout
    return size // (len(names) * np.dtype(dtype).itemsize + width * 4 + 8)  # + 8: alignment slack


def views(memory: mmap.mmap, layout: Layout, size: int = BUFFER_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """The buffer's input rows and outputs as arrays over the shared memory (no copy)."""
    names, dtype, width = layout
    rows = capacity(layout, size)
    inputs = np.ndarray((rows, len(names)), dtype=np.dtype(dtype), buffer=memory)
    offset = -(-inputs.nbytes // 8) * 8
    outputs = np.ndarray((rows, width), dtype=np.float32, buffer=memory, offset=offset)
    return inputs, outputs


def create(size: int = BUFFER_BYTES) -> tuple[int, mmap.mmap]:
    """A new shared buffer: its file descriptor (for the writer process) and its mapping here."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("mlspec-prediction-log")
    else:  # no memfd (macOS): an unlinked temporary file
        fd, path = tempfile.mkstemp(prefix="mlspec-prediction-log-")
        os.unlink(path)
    os.ftruncate(fd, size)
    return fd, mmap.mmap(fd, size)
