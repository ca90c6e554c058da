"""Reading data sources: CSV and Parquet from a local path (relative to the CWD) or any fsspec URI (s3://).

S3 endpoints follow AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, so the same code reads from AWS, MinIO or moto.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Any

from mlspec.runtime import StepError

if TYPE_CHECKING:
    import pandas as pd


class DataError(StepError):
    """A data source is missing, unreadable or malformed; the message names the URI and the cause."""


def storage_options(uri: str) -> dict[str, Any]:
    """fsspec options for a URI: the S3 endpoint from the environment (botocore ignores it in some versions)."""
    if not uri.startswith(("s3://", "s3a://")):
        return {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}


def open_file(uri: str, mode: str = "rb"):
    """An fsspec file object for a local path or URI."""
    import fsspec

    return fsspec.open(uri, mode, **storage_options(uri))


def filesystem(uri: str):
    """(filesystem, path) for a local path or URI."""
    from fsspec.core import url_to_fs

    return url_to_fs(uri, **storage_options(uri))


def infer_format(uri: str) -> str:
    """The format of a URI given on the command line (--data); spec sources carry theirs in the IR."""
    from mlspec.ir.policy import infer_format as policy_format

    fmt = policy_format(uri)
    if fmt is None:
        raise DataError(f"cannot infer the format of {uri!r}: name it .csv, .csv.gz or .parquet")
    return fmt


def read_source(uri: str, fmt: str | None = None) -> pd.DataFrame:
    """Read one data source into a DataFrame; any failure becomes a DataError naming the URI."""
    import pandas as pd

    fmt = fmt or infer_format(uri)
    if fmt not in ("csv", "parquet"):
        raise DataError(f"unsupported format {fmt!r} for {uri!r}: use csv or parquet")
    try:
        fs, path = filesystem(uri)
        if not fs.exists(path):
            raise DataError(f"data source {uri!r} does not exist")
        if fmt == "csv":
            with fs.open(path, "rb") as handle:
                df = pd.read_csv(handle)
        else:
            df = pd.read_parquet(path, filesystem=fs)
    except DataError:
        raise
    except FileNotFoundError as exc:
        raise DataError(f"data source {uri!r} does not exist ({exc})") from exc
    except PermissionError as exc:
        raise DataError(f"data source {uri!r} is not readable: permission denied ({exc})") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"data source {uri!r} is empty") from exc
    except Exception as exc:  # parser, arrow and network errors all end up here
        raise DataError(f"cannot read {fmt} data source {uri!r}: {type(exc).__name__}: {exc}") from exc
    if len(df.columns) == 0:
        raise DataError(f"data source {uri!r} has no columns")
    return df


def write_frame(df: pd.DataFrame, uri: str, fmt: str | None = None) -> None:
    """Write a DataFrame as CSV or Parquet to a local path or URI (parents created for local paths)."""
    fmt = fmt or infer_format(uri)
    fs, path = filesystem(uri)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        fs.makedirs(parent, exist_ok=True)
    with fs.open(path, "wb") as handle:
        if fmt == "csv":
            handle.write(df.to_csv(index=False).encode())
        else:
            df.to_parquet(handle, index=False)


def content_hash(uri: str) -> str:
    """sha256 of a source's bytes (all files, in sorted order, for a Parquet directory), for lineage tags."""
    digest = hashlib.sha256()
    try:
        fs, path = filesystem(uri)
        files = sorted(fs.find(path)) if fs.isdir(path) else [path]
        if not files:
            raise DataError(f"data source {uri!r} is an empty directory")
        for name in files:
            with fs.open(name, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
    except DataError:
        raise
    except FileNotFoundError as exc:
        raise DataError(f"data source {uri!r} does not exist") from exc
    except Exception as exc:
        raise DataError(f"cannot hash data source {uri!r}: {type(exc).__name__}: {exc}") from exc
    return digest.hexdigest()


def sources_of(ir, overrides: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """{name: (uri, format)} for the IR's data sources with --data NAME=URI overrides applied.

    An override's format follows its suffix when it has a known one, else the IR source's format.
    """
    overrides = overrides or {}
    out = {s.name: (s.uri, s.format) for s in ir.data.sources}
    for name, uri in overrides.items():
        try:
            fmt = infer_format(uri)
        except DataError:
            if name not in out:
                raise
            fmt = out[name][1]
        out[name] = (uri, fmt)
    return out
