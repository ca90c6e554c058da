"""A small JSON document that several processes update without losing an update: the trigger state.

    update(uri, change) -> whatever `change` returns

`change(state)` gets the current document (a dict, empty when there is none), edits it in place and returns a
value; the edit is written only if nobody wrote the document in between, else `change` runs again on the newer
document. So every monitor and every training run sees, and builds on, every earlier decision.

- A local path: the read, the change and the write happen under an exclusive `flock` of `<path>.lock`, and the
  write replaces the file atomically (write a temporary file, then rename).
- `s3://bucket/key`: S3 conditional writes. The document is read with its ETag and written with `If-Match`
  (or `If-None-Match: *` when it did not exist); S3 refuses the write with 412 Precondition Failed (or 409
  ConditionalRequestConflict for a concurrent one) when another writer came first, and we retry.
Other schemes are refused: without a conditional write two monitors would overwrite each other.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mlspec.runtime import StepError

T = TypeVar("T")
ATTEMPTS = 50  # a conflict means another writer made progress, so this bounds contention, not failure
MAX_BACKOFF_S = 0.5


class StateError(StepError):
    """The state cannot be read or written (the message names the location and the cause)."""


def read(uri: str) -> dict[str, Any]:
    """The current document ({} when there is none), without taking part in the update protocol."""
    if _is_s3(uri):
        return _S3(uri).get()[0]
    path = Path(uri)
    return _parse(path.read_bytes(), uri) if path.exists() else {}


def update(uri: str, change: Callable[[dict[str, Any]], T]) -> T:
    """Apply `change` to the document at `uri` atomically with respect to every other update."""
    if _is_s3(uri):
        return _S3(uri).update(change)
    if "://" in uri and not uri.startswith("file://"):
        raise StateError(
            f"the trigger state {uri} needs conditional writes, which mlspec implements for local paths and "
            "s3:// only"
        )
    return _update_local(Path(uri.removeprefix("file://")), change)


def _parse(raw: bytes, uri: str) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StateError(f"the trigger state {uri} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise StateError(f"the trigger state {uri} is not a JSON object")
    return value


def _dump(state: dict[str, Any]) -> bytes:
    return (json.dumps(state, indent=2, sort_keys=True) + "\n").encode()


def _is_s3(uri: str) -> bool:
    return uri.startswith(("s3://", "s3a://"))


# ----------------------------------------------------------------------------------------------- local files


def _update_local(path: Path, change: Callable[[dict[str, Any]], T]) -> T:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            state = _parse(path.read_bytes(), str(path)) if path.exists() else {}
            before = _dump(state)
            outcome = change(state)
            if _dump(state) != before:
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                tmp.write_bytes(_dump(state))
                os.replace(tmp, path)
            return outcome
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# ----------------------------------------------------------------------------------------------- S3


class _S3:
    def __init__(self, uri: str) -> None:
        import boto3  # AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL point it at an S3-compatible endpoint

        self.uri = uri
        self.bucket, _, self.key = uri.split("://", 1)[1].partition("/")
        self.client = boto3.client("s3")

    def get(self) -> tuple[dict[str, Any], str | None]:
        """The document and its ETag (None when it does not exist)."""
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except self.client.exceptions.NoSuchKey:
            return {}, None
        except Exception as exc:
            raise StateError(f"cannot read the trigger state {self.uri}: {_describe(exc)}") from exc
        return _parse(obj["Body"].read(), self.uri), obj["ETag"]

    def update(self, change: Callable[[dict[str, Any]], T]) -> T:
        from botocore.exceptions import ClientError

        for attempt in range(ATTEMPTS):
            state, etag = self.get()
            before = _dump(state)
            outcome = change(state)
            body = _dump(state)
            if body == before:
                return outcome
            condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
            try:
                self.client.put_object(
                    Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json", **condition
                )
                return outcome
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if code not in ("PreconditionFailed", "ConditionalRequestConflict") and status not in (
                    409,
                    412,
                ):
                    raise StateError(f"cannot write the trigger state {self.uri}: {_describe(exc)}") from exc
            except Exception as exc:
                raise StateError(f"cannot write the trigger state {self.uri}: {_describe(exc)}") from exc
            time.sleep(random.uniform(0, min(MAX_BACKOFF_S, 0.01 * 2**attempt)))
        raise StateError(f"the trigger state {self.uri} kept changing under {ATTEMPTS} attempts to update it")


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"
