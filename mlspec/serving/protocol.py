"""Request decoding and response encoding: the /predict shape and the Open Inference Protocol (V2) shape.

Everything a client can get wrong raises BadRequest (a 4xx with a message), never a server error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlspec.serving import jsonio
from mlspec.serving.model import LoadedModel

V2_DTYPES = {
    "FP32": "<f4",
    "FP64": "<f8",
    "FP16": "<f2",
    "INT64": "<i8",
    "INT32": "<i4",
    "INT16": "<i2",
    "INT8": "i1",
    "UINT8": "u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
}
BINARY_HEADER = "inference-header-content-length"


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_json(body: bytes) -> Any:
    try:
        return jsonio.loads(body)
    except ValueError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None


def to_matrix(data: Any, model: LoadedModel, max_rows: int, *, shape: list[int] | None = None) -> np.ndarray:
    """Validate numbers and shape and return a C-contiguous [N, F] array of the model's input dtype."""
    try:
        arr = data if isinstance(data, np.ndarray) else np.asarray(data)
    except ValueError:
        raise BadRequest("inputs must be a rectangular array of numbers (rows of equal length)") from None
    if arr.dtype.kind not in "iuf" and not (arr.dtype.kind == "b" and arr.size == 0):
        raise BadRequest(f"inputs must be numbers, got {_kind_name(arr)}")
    n_features = model.n_features
    if shape is not None:
        if len(shape) != 2 or any(type(d) is not int or d < 0 for d in shape) or shape[1] != n_features:
            raise BadRequest(f"shape must be [rows, {n_features}], got {jsonio.dumps(shape).decode()}")
        if shape[0] > max_rows:
            raise BadRequest(f"{shape[0]} rows exceed the limit of {max_rows} rows per request", 413)
        if arr.size != shape[0] * shape[1]:
            raise BadRequest(f"data has {arr.size} values but shape {shape} needs {shape[0] * shape[1]}")
        arr = arr.reshape(shape)
    if arr.ndim == 1 and arr.size == n_features:
        arr = arr.reshape(1, n_features)
    if arr.ndim != 2 or arr.shape[1] != n_features:
        raise BadRequest(f"inputs must have shape [rows, {n_features}], got {list(arr.shape)}")
    if arr.shape[0] == 0:
        raise BadRequest("inputs have no rows")
    if arr.shape[0] > max_rows:
        raise BadRequest(f"{arr.shape[0]} rows exceed the limit of {max_rows} rows per request", 413)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf is reported just below
        out = np.ascontiguousarray(arr, dtype=model.input_dtype)
    if out.dtype.kind == "f" and not np.isfinite(out).all():
        bad = np.argwhere(~np.isfinite(out))[0]
        raise BadRequest(
            f"inputs must be finite numbers: row {bad[0]}, column {_feature(model, bad[1])} "
            f"is {arr[bad[0], bad[1]]}"
        )
    return out


def _kind_name(arr: np.ndarray) -> str:
    return {"U": "strings", "S": "bytes", "b": "booleans", "O": "mixed or null values"}.get(
        arr.dtype.kind, str(arr.dtype)
    )


def _feature(model: LoadedModel, index: int) -> str:
    return repr(model.features[index]) if model.features else str(index)


def records_to_rows(records: Any, model: LoadedModel) -> list[list[Any]]:
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise BadRequest('"records" must be a list of objects {feature: value}')
    if not model.features:
        raise BadRequest('this model declares no feature names; send "inputs" as rows of numbers')
    if model.transforms:
        records = _transformed(records, model)
    features = model.features
    # Records name categories by value; the model takes the value's index, -1 for an unseen value.
    index = {f: {v: i for i, v in enumerate(vals)} for f, vals in model.categories.items()}
    rows = []
    for i, record in enumerate(records):
        try:
            row = [record[f] for f in features]
        except KeyError as exc:
            raise BadRequest(f"record {i} is missing feature {exc.args[0]!r}") from None
        for j, f in enumerate(features):
            if f in index and not (isinstance(row[j], int | float) and not isinstance(row[j], bool)):
                if not isinstance(row[j], str):
                    raise BadRequest(f"record {i}: feature {f!r} takes one of {list(index[f])}")
                row[j] = index[f].get(row[j], -1)
        rows.append(row)
    return rows


def _transformed(records: list[dict[str, Any]], model: LoadedModel) -> list[dict[str, Any]]:
    """Records with the columns the preparation steps' transforms add, as training's data had them."""
    import pandas as pd

    from mlspec.runtime.preprocessing import apply_transforms

    try:
        frame = apply_transforms(pd.DataFrame.from_records(records), {"transforms": model.transforms})
    except Exception as exc:  # the user's transform on the client's records: the client's 400
        raise BadRequest(f"the model's feature transforms failed on these records: {exc}") from None
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def decode_predict(body: bytes, model: LoadedModel, max_rows: int) -> np.ndarray:
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise BadRequest('body must be {"inputs": [[...], ...]} or {"records": [{feature: value}, ...]}')
    if "inputs" in payload:
        return to_matrix(payload["inputs"], model, max_rows)
    if "records" in payload:
        records = payload["records"]
        if isinstance(records, list) and len(records) > max_rows:
            raise BadRequest(f"{len(records)} rows exceed the limit of {max_rows} rows per request", 413)
        return to_matrix(records_to_rows(records, model), model, max_rows)
    raise BadRequest('body must carry "inputs" (rows of numbers) or "records" (objects by feature name)')


def encode_predict(model: LoadedModel, request_id: str, outputs: list[np.ndarray]) -> bytes:
    body: dict[str, Any] = {
        "model_name": model.name,
        "model_version": model.version,
        "id": request_id,
        "predictions": outputs[0],
    }
    if len(outputs) > 1:
        body["outputs"] = {info.name: out for info, out in zip(model.outputs, outputs, strict=True)}
    return jsonio.dumps(body)


class V2Request:
    """A decoded POST /v2/models/<name>/infer: the input matrix plus what the client asked back."""

    def __init__(self, body: bytes, header_length: str | None, model: LoadedModel, max_rows: int) -> None:
        binary = b""
        if header_length is not None:
            try:
                n = int(header_length)
            except ValueError:
                raise BadRequest(f"{BINARY_HEADER} is not an integer") from None
            if not 0 <= n <= len(body):
                raise BadRequest(f"{BINARY_HEADER} {n} is outside the body of {len(body)} bytes")
            body, binary = body[:n], body[n:]
        payload = parse_json(body)
        if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list):
            raise BadRequest('body must be {"inputs": [{"name", "shape", "datatype", "data"}]}')
        inputs = payload["inputs"]
        if len(inputs) != 1 or not isinstance(inputs[0], dict):
            raise BadRequest(f"model {model.name} takes exactly one input tensor '{model.input.name}'")
        tensor = inputs[0]
        if tensor.get("name") != model.input.name:
            raise BadRequest(
                f"unknown input {_shown(tensor.get('name'))}; model {model.name} takes '{model.input.name}'"
            )
        datatype = tensor.get("datatype")
        if not isinstance(datatype, str) or datatype not in V2_DTYPES:
            raise BadRequest(f"unsupported datatype {_shown(datatype)}; use FP32 (or another numeric type)")
        shape = tensor.get("shape")
        if not isinstance(shape, list):
            raise BadRequest("input shape must be a list [rows, features]")
        size = _parameters(tensor, "input").get("binary_data_size")
        if size is not None:
            if type(size) is not int or size < 0 or size > len(binary):
                raise BadRequest(
                    f"binary_data_size {size} does not match the {len(binary)} binary bytes sent"
                )
            try:
                data: Any = np.frombuffer(binary[:size], dtype=V2_DTYPES[datatype])
            except ValueError as exc:
                raise BadRequest(f"binary data does not match datatype {datatype}: {exc}") from None
        elif "data" in tensor:
            data = tensor["data"]
            if isinstance(data, list):
                data = np.asarray(_flat(data)) if data and isinstance(data[0], list) else data
        else:
            raise BadRequest("input carries neither data nor binary_data_size")
        self.x = to_matrix(data, model, max_rows, shape=shape)
        self.id = payload.get("id")
        self.outputs = self._requested(payload, model)

    @staticmethod
    def _requested(payload: dict[str, Any], model: LoadedModel) -> list[tuple[int, bool]]:
        default_binary = _flag(_parameters(payload, "request"), "binary_data_output", False)
        requested = payload.get("outputs")
        names = [o.name for o in model.outputs]
        if requested is None or requested == []:
            return [(i, default_binary) for i in range(len(names))]
        if not isinstance(requested, list):
            raise BadRequest('"outputs" must be a list of {"name": ...} objects')
        result = []
        for out in requested:
            name = out.get("name") if isinstance(out, dict) else out
            if not isinstance(name, str) or name not in names:
                raise BadRequest(f"unknown output {_shown(name)}; model outputs are {names}")
            binary = _flag(_parameters(out, f"output {name!r}"), "binary_data", default_binary)
            result.append((names.index(name), binary))
        return result

    def encode(
        self, model: LoadedModel, request_id: str, outputs: list[np.ndarray]
    ) -> tuple[bytes, int | None]:
        """The response body, and the JSON header length when binary outputs follow it."""
        tensors, blobs = [], []
        for index, binary in self.outputs:
            info, value = model.outputs[index], outputs[index]
            tensor: dict[str, Any] = {
                "name": info.name,
                "datatype": info.datatype,
                "shape": list(value.shape),
            }
            if binary:
                blob = np.ascontiguousarray(value).tobytes()
                tensor["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            else:
                tensor["data"] = value.reshape(-1)
            tensors.append(tensor)
        header = jsonio.dumps(
            {
                "model_name": model.name,
                "model_version": model.version,
                "id": self.id if self.id is not None else request_id,
                "outputs": tensors,
            }
        )
        if not blobs:
            return header, None
        return header + b"".join(blobs), len(header)


def _parameters(obj: dict[str, Any], what: str) -> dict[str, Any]:
    params = obj.get("parameters")
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise BadRequest(f'{what} "parameters" must be an object')
    return params


def _flag(params: dict[str, Any], key: str, default: bool) -> bool:
    value = params.get(key, default)
    if not isinstance(value, bool):
        raise BadRequest(f'parameter "{key}" must be true or false, got {_shown(value)}')
    return value


def _shown(value: Any, limit: int = 60) -> str:
    """A client's value in an error message: its JSON, cut short."""
    try:
        text = jsonio.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _flat(data: list[Any]) -> list[Any]:
    out: list[Any] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            out.append(item)
    return out
