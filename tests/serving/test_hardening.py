"""The server against hostile clients: every malformed request is a 4xx (hypothesis over the whole V2 and
/predict request schema, sent to a real server process), slow headers are cut off, and idle half-open
connections past the cap cannot keep a normal client out."""

from __future__ import annotations

import http.client
import json
import resource
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlspec.serving.protocol import BINARY_HEADER, V2_DTYPES

pytestmark = pytest.mark.engine

N_FEATURES = 20


@pytest.fixture(scope="module")
def server(h, mlp, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hardening")
    server = h.launch(tmp, "--model", str(mlp.path), "--name", "mlp", "--max-rows", "64")
    yield server
    h.stop(server.proc)


@pytest.fixture(scope="module")
def client(server):
    client = Client(server.url)
    yield client
    if client.conn is not None:
        client.conn.close()


class Client:
    """One kept-alive connection, reopened when the server closes it (as it may after an error)."""

    def __init__(self, url: str) -> None:
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.conn.request("POST", path, body=body, headers=headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


# ----------------------------------------------------------------------------------------- the request schema

JSON_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=10,
)


def field(plausible: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly a value of the right kind, sometimes any JSON at all."""
    return st.one_of(plausible, plausible, JSON_VALUE)


NUMBER = (
    st.integers(-5, 5)
    | st.floats(-1e6, 1e6, allow_nan=False)
    | st.sampled_from([2**63, -(2**63) - 1, 2**64, 1e308, -1e308, 0.5, True, False])
)
ROWS = st.lists(st.lists(NUMBER, min_size=N_FEATURES, max_size=N_FEATURES), max_size=3)
DATA = field(
    st.lists(NUMBER, max_size=2 * N_FEATURES + 1) | ROWS | st.lists(st.lists(NUMBER, max_size=21), max_size=3)
)
SHAPE = field(
    st.lists(st.integers(-2, 2**40) | st.booleans() | st.floats(0, 30), max_size=3)
    | st.sampled_from([[1, N_FEATURES], [2, N_FEATURES], [0, N_FEATURES], [2**62, 0], [True, N_FEATURES]])
)
DATATYPE = field(
    st.sampled_from([*V2_DTYPES, "BOOL", "BYTES", "fp32", ""]) | st.lists(st.just("FP32"), max_size=1)
)
PARAMETERS = field(st.fixed_dictionaries({}, optional={"binary_data_size": field(st.integers(-1, 400))}))
TENSOR = field(
    st.fixed_dictionaries(
        {},
        optional={
            "name": field(st.sampled_from(["input", "other", ""])),
            "shape": SHAPE,
            "datatype": DATATYPE,
            "data": DATA,
            "parameters": PARAMETERS,
        },
    )
)
OUTPUT = field(
    st.fixed_dictionaries(
        {},
        optional={
            "name": field(st.sampled_from(["probability", "nope"])),
            "parameters": field(st.fixed_dictionaries({}, optional={"binary_data": JSON_VALUE})),
        },
    )
)
V2_REQUEST = field(
    st.fixed_dictionaries(
        {},
        optional={
            "id": JSON_VALUE,
            "inputs": field(st.lists(TENSOR, max_size=2)),
            "outputs": field(st.lists(OUTPUT, max_size=3)),
            "parameters": field(st.fixed_dictionaries({}, optional={"binary_data_output": JSON_VALUE})),
        },
    )
)
RECORD = field(
    st.dictionaries(st.sampled_from([f"x{i}" for i in range(N_FEATURES)]), field(NUMBER), max_size=N_FEATURES)
)
PREDICT_REQUEST = field(
    st.fixed_dictionaries({}, optional={"inputs": DATA, "records": field(st.lists(RECORD, max_size=3))})
)


def encode(payload: object) -> bytes:
    return json.dumps(payload, allow_nan=False).encode()


def assert_client_error(status: int, body: bytes, request: bytes) -> None:
    assert status < 500, f"{status} for {request[:300]!r}: {body[:300]!r}"
    if status >= 400 and not body.startswith(b"Invalid HTTP request"):  # uvicorn's own, for a bad header
        assert json.loads(body)["error"], body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=V2_REQUEST,
    binary=st.binary(max_size=96),
    header=st.none()
    | st.integers(-5, 3000)
    | st.text(st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=4),
)
def test_v2_infer_never_answers_5xx(client, payload, binary, header) -> None:
    body = encode(payload)
    headers = {"Content-Type": "application/json"}
    if header is not None:  # the binary tensor extension: JSON header, then raw bytes
        headers[BINARY_HEADER] = str(len(body) if header == 0 else header)
        body += binary
    status, answer = client.post("/v2/models/mlp/infer", body, headers)
    assert_client_error(status, answer, body)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=PREDICT_REQUEST)
def test_predict_never_answers_5xx(client, payload) -> None:
    body = encode(payload)
    status, answer = client.post("/predict", body, {"Content-Type": "application/json"})
    assert_client_error(status, answer, body)


def tensor(**overrides) -> dict:
    return {
        "name": "input",
        "shape": [1, N_FEATURES],
        "datatype": "FP32",
        "data": [0.5] * N_FEATURES,
    } | overrides


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({"inputs": [tensor(shape=[True, N_FEATURES])]}, "shape must be [rows, 20]"),
        ({"inputs": [tensor()], "outputs": 5}, '"outputs" must be a list'),
        ({"inputs": [tensor(datatype=["FP32"])]}, 'unsupported datatype ["FP32"]'),
        ({"inputs": [tensor(shape=[2**62, 0], data=[])]}, "shape must be [rows, 20]"),
        (
            {"inputs": [tensor()], "outputs": [{"name": "probability", "parameters": 3}]},
            '"parameters" must be',
        ),
        ({"inputs": [tensor()], "outputs": [{"name": {"a": 1}}]}, "unknown output"),
        ({"inputs": [tensor(parameters=[1])]}, '"parameters" must be an object'),
        ({"inputs": [tensor(parameters={"binary_data_size": True})]}, "binary_data_size"),
        ({"inputs": [tensor()], "parameters": {"binary_data_output": "yes"}}, "must be true or false"),
    ],
    ids=[
        "bool-shape",
        "outputs-int",
        "datatype-list",
        "huge-shape",
        "output-params",
        "output-name",
        "params",
        "size-bool",
        "flag",
    ],
)
def test_the_requests_that_answered_500_now_get_400(server, h, request_body, message) -> None:
    status, body = h.http("POST", f"{server.url}/v2/models/mlp/infer", request_body)
    assert status == 400 and message in body["error"], body


# ----------------------------------------------------------------------------------------- slow and idle clients


def metric(h, server, reason: str) -> float:
    return h.metric(server.url, "mlspec_connections_closed_total", f'reason="{reason}"')


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes `sock` within `within` seconds (reads until EOF)."""
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


def test_slow_headers_are_cut_off_even_while_bytes_trickle_in(h, mlp, start_server) -> None:
    server = start_server("--model", str(mlp.path), "--name", "mlp", "--header-timeout", "1")
    port = int(server.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port))
    try:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: t\r\n")
        closed = False
        for i in range(40):  # a slowloris: one header byte every 0.25 s, for up to 10 s
            try:
                sock.sendall(b"X-a: b\r\n"[i % 8 : i % 8 + 1])
            except OSError:
                closed = True
                break
            if closed_by_server(sock, 0.25):
                closed = True
                break
        assert closed, "the server kept a connection whose headers never ended"
    finally:
        sock.close()
    assert metric(h, server, "header_timeout") >= 1
    assert h.http("GET", f"{server.url}/v2/health/ready")[0] == 200


def test_a_kept_alive_connection_that_starts_a_request_and_stalls_is_closed(h, mlp, start_server) -> None:
    server = start_server("--model", str(mlp.path), "--name", "mlp", "--header-timeout", "1")
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHo")  # the next request never finishes its headers
        assert closed_by_server(sock, 10)


def test_idle_half_open_connections_past_the_cap_do_not_keep_a_client_out(h, mlp, start_server) -> None:
    """With 512 file descriptors, uvicorn alone stops accepting after ~500 idle sockets; the guard evicts."""
    limit = 512

    def low_fd_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    server = start_server(
        "--model", str(mlp.path), "--name", "mlp", "--header-timeout", "60", preexec_fn=low_fd_limit
    )
    port = int(server.url.rsplit(":", 1)[1])
    idle: list[socket.socket] = []
    try:
        for _ in range(3 * limit):  # far more than the server has descriptors for
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: t\r\n")  # and never another byte
            idle.append(sock)
        status, body = h.http("POST", f"{server.url}/predict", {"inputs": [[0.5] * N_FEATURES]}, timeout=10)
        assert status == 200 and len(body["predictions"]) == 1
        assert metric(h, server, "evicted") >= 2 * limit
    finally:
        for sock in idle:
            sock.close()
    assert server.proc.poll() is None


def test_a_registry_that_does_not_exist_is_named_not_created(start_server, tmp_path) -> None:
    absent = tmp_path / "nowhere" / "mlflow.db"
    uri = f"sqlite:///{absent}"
    server = start_server("--model", "models:/churn@champion", "--tracking-uri", uri, ready=False)
    assert server.proc.wait(timeout=60) == 1
    assert f"the MLflow registry {uri} does not exist" in server.output()
    assert not absent.parent.exists()
