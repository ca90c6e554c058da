"""`mlspec doctor`: the toolchain, and a cluster's API discovery against IR.platform, read through the real
kubectl from an API server stand-in on 127.0.0.1 that serves discovery documents (no cluster runs here).

The documents are APIResourceLists in the shape `kubectl get --raw /apis/<group>/<version>` returns; the
custom resources' entries (group, version, kind, plural) are taken from the upstream CRDs vendored under
backends/kubernetes/tests/data/crds."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

import mlspec

SPECS = Path(__file__).resolve().parents[1] / "specs"

ROOT = Path(__file__).resolve().parents[1]
CRDS = ROOT / "backends" / "kubernetes" / "tests" / "data" / "crds"


def resource_lists(without_groups: tuple[str, ...] = ()) -> dict[str, dict]:
    """discovery path -> APIResourceList for every kind and API churn's platform table names."""
    ir = mlspec.lower(mlspec.load(SPECS / "churn.yaml"))
    lists: dict[str, dict] = {}

    def add(group_version: str, kind: str, plural: str) -> None:
        path = "api/v1" if group_version == "v1" else f"apis/{group_version}"
        doc = lists.setdefault(
            path, {"kind": "APIResourceList", "groupVersion": group_version, "resources": []}
        )
        doc["resources"].append({"name": plural, "kind": kind, "namespaced": True, "verbs": ["get", "list"]})

    plurals = {}
    for crd_file in CRDS.glob("*.yaml"):
        crd = yaml.safe_load(crd_file.read_text("utf-8"))
        for version in crd["spec"]["versions"]:
            key = f"{crd['spec']['group']}/{version['name']}/{crd['spec']['names']['kind']}"
            plurals[key] = crd["spec"]["names"]["plural"]
    for component in ir.platform:
        for kind_path in component.kinds:
            group_version, kind = kind_path.rsplit("/", 1)
            add(group_version, kind, plurals.get(kind_path, kind.lower() + "s"))
        for api in component.apis:
            add(api, "PodMetrics" if api.startswith("metrics") else "MetricValueList", "pods")
    return {p: d for p, d in lists.items() if not any(p.startswith(f"apis/{g}/") for g in without_groups)}


class Discovery(http.server.BaseHTTPRequestHandler):
    documents: dict[str, dict] = {}

    def do_GET(self):
        doc = self.documents.get(self.path.strip("/"))
        body = json.dumps(doc or {"kind": "Status", "code": 404}).encode()
        self.send_response(200 if doc else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


@pytest.fixture()
def api_server(tmp_path):
    def start(documents: dict[str, dict]) -> Path:
        handler = type("Handler", (Discovery,), {"documents": documents})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {"name": "rec", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}
                    ],
                    "users": [{"name": "rec", "user": {}}],
                    "contexts": [{"name": "recorded", "context": {"cluster": "rec", "user": "rec"}}],
                    "current-context": "recorded",
                }
            )
        )
        return kubeconfig

    servers: list = []
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def doctor(*args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/usr/local/bin:" + str(Path(sys.executable).parent)}
    import os

    env.update({k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "MLSPEC_NOW", "HOME")})
    if kubeconfig:
        env["KUBECONFIG"] = str(kubeconfig)
    return subprocess.run(
        [sys.executable, "-m", "mlspec", "doctor", str(SPECS / "churn.yaml"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_every_prerequisite_served_is_clean(api_server):
    out = doctor("--context", "recorded", kubeconfig=api_server(resource_lists()))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok       argo-rollouts: argoproj.io/v1alpha1/Rollout: served" in out.stdout
    assert "ok       prometheus-adapter: API custom.metrics.k8s.io/v1beta1" in out.stdout
    assert "n/a      nvidia-device-plugin: resource nvidia.com/gpu" in out.stdout


def test_a_missing_controller_fails_naming_what_to_install(api_server):
    out = doctor(
        "--context", "recorded", kubeconfig=api_server(resource_lists(without_groups=("argoproj.io",)))
    )
    assert out.returncode == 1
    assert (
        "MISSING  argo-rollouts: argoproj.io/v1alpha1/Rollout: not served: install argoproj/argo-rollouts"
        in out.stdout
    )


def test_recorded_documents_from_files(tmp_path):
    for path, doc in resource_lists(without_groups=("monitoring.coreos.com",)).items():
        file = tmp_path / f"{path}.json"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(doc))
    out = doctor("--discovery", str(tmp_path))
    assert (
        out.returncode == 1
        and "MISSING  prometheus-operator: monitoring.coreos.com/v1/ServiceMonitor" in out.stdout
    )


def test_without_a_context_only_the_toolchain():
    out = doctor()
    assert out.returncode == 0 and "python:" in out.stdout and "were not checked" in out.stdout
