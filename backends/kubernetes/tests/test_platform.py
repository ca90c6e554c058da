"""The platform prerequisites: every generated kind has a provider in IR.platform, and the platform
kustomization builds with `kubectl kustomize` from the pinned upstream files (served from a local copy)."""

from __future__ import annotations

import functools
import http.server
import re
import subprocess
import threading
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from k8s_testlib import KUBECTL, churn_text, emit, ir_for, write
from test_schemas import crd_validate

from mlspec.ir import platform as pf

ROOT = Path(__file__).resolve().parents[3]
UPSTREAM = Path(__file__).parent / "data" / "upstream"
RAW = "https://raw.githubusercontent.com/"


def provided(ir) -> set[str]:
    return {kind for c in ir.platform for kind in c.kinds}


def generated_kinds(folder: Path) -> set[tuple[str, str]]:
    """apiVersion/kind of every object in every YAML file of an output folder (patches included)."""
    found = set()
    for path in folder.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text("utf-8")):
            if isinstance(doc, dict) and "kind" in doc and doc.get("kind") != "Kustomization":
                found.add((str(path.relative_to(folder)), f"{doc['apiVersion']}/{doc['kind']}"))
    return found


def test_every_generated_kind_has_a_provider_in_the_table(built):
    """Each apiVersion/kind in each variant's output (system manifests and platform/) is a row's kind."""
    for name, (ir, folder, _objects) in built.items():
        missing = sorted((path, kind) for path, kind in generated_kinds(folder) if kind not in provided(ir))
        assert not missing, f"{name}: kinds no platform row provides: {missing}"


def test_every_committed_manifest_kind_has_a_provider():
    """The committed generated/ output too, for every spec and environment."""
    import mlspec

    for manifest_dir in sorted(ROOT.glob("generated/**/kubernetes")):
        parts = manifest_dir.relative_to(ROOT / "generated").parts
        spec = ROOT / "specs" / f"{parts[0]}.yaml"
        ir = mlspec.lower(mlspec.load(spec), parts[1] if len(parts) == 3 else None)
        missing = sorted(kind for _, kind in generated_kinds(manifest_dir) if kind not in provided(ir))
        assert not missing, f"{manifest_dir}: {missing}"


def test_the_table_follows_what_the_spec_uses(built):
    ids = {name: {c.id for c in ir.platform} for name, (ir, _, _) in built.items()}
    assert {"argo-rollouts", "prometheus-operator", "cluster-autoscaler", "nvidia-device-plugin"} <= ids[
        "canary"
    ]
    assert "argo-rollouts" in ids["blue-green"] and "istio" not in ids["blue-green"]
    assert "istio" in ids["shadow"] and "istio" in ids["a-b"] and "argo-rollouts" not in ids["shadow"]
    assert "argo-rollouts" not in ids["rolling"] and "istio" not in ids["rolling"]
    assert "neuron-device-plugin" in ids["neuron"]
    # A cluster mlspec does not manage: no autoscaler, metrics-server from the platform kustomization.
    unmanaged = {c.id: c for c in built["gpu-unmanaged"][0].platform}
    assert "cluster-autoscaler" not in unmanaged and unmanaged["metrics-server"].installed_by == "kubernetes"
    assert unmanaged["kubernetes"].installed_by == "you"


def test_readme_prints_the_table(built):
    ir, folder, _ = built["canary"]
    text = (folder / "README.md").read_text("utf-8")
    for c in ir.platform:
        assert f"| {c.id} |" in text
    assert "kubectl apply --server-side -k platform/" in text


def test_pins_are_immutable(built):
    """Upstream files by commit SHA, images by release tag, never latest."""
    for name, (_ir, folder, _) in built.items():
        kustomization = yaml.safe_load((folder / "platform" / "kustomization.yaml").read_text("utf-8"))
        for url in kustomization["resources"]:
            if url.startswith(RAW):
                assert re.search(r"/[0-9a-f]{40}/", url), (name, url)
            elif url.startswith("https://"):
                assert "/releases/download/v" in url, (name, url)
        assert all(i["newTag"] not in ("latest", "") for i in kustomization.get("images", []))


@pytest.fixture(scope="module")
def upstream_server():
    """The vendored upstream files on 127.0.0.1, at their raw.githubusercontent.com paths."""
    handler = functools.partial(QuietHandler, directory=str(UPSTREAM))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def local_build(folder: Path, server: str) -> list[dict]:
    """`kubectl kustomize` of platform/ with each vendored upstream URL served locally. The large CRD files
    and Argo Rollouts' install.yaml are not vendored (no patch targets them): they are left out here."""
    kustomization_path = folder / "platform" / "kustomization.yaml"
    doc = yaml.safe_load(kustomization_path.read_text("utf-8"))
    kept = []
    for url in doc["resources"]:
        if url.startswith(RAW):
            if not (UPSTREAM / url[len(RAW) :]).is_file():
                continue
            url = server + url[len(RAW) :]
        elif url.startswith("https://"):
            continue
        kept.append(url)
    doc["resources"] = kept
    kustomization_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = subprocess.run(
        [KUBECTL, "kustomize", str(folder / "platform")], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.mark.engine
def test_platform_kustomization_builds_from_the_pinned_files(tmp_path, upstream_server):
    """The patches apply to the upstream objects at the pinned commits, and the result is what the IR says."""
    ir = ir_for(churn_text())
    folder = write(emit(ir)[0], tmp_path)
    objects = local_build(folder, upstream_server)
    by = {(o["kind"], o["metadata"]["name"]): o for o in objects}

    ca = by[("Deployment", "cluster-autoscaler")]["spec"]["template"]["spec"]["containers"][0]
    assert ca["image"] == "registry.k8s.io/autoscaling/cluster-autoscaler:v1.31.5"
    assert (
        "--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/ml-prod"
        in ca["command"]
    )
    sa = by[("ServiceAccount", "cluster-autoscaler")]
    assert (
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        == ir.component("cluster-autoscaler").role_arn
    )

    plugin = by[("DaemonSet", "nvidia-device-plugin-daemonset")]["spec"]["template"]["spec"]
    gpu_pool = ir.node_pool("gpu")
    for taint in gpu_pool.taints:
        assert any(t["key"] == taint.key and t["effect"] == taint.effect for t in plugin["tolerations"])
    terms = plugin["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert terms[0]["matchExpressions"][0]["values"] == [gpu_pool.gpu.product]

    adapter = by[("Deployment", "prometheus-adapter")]["spec"]["template"]["spec"]["containers"][0]
    assert f"--prometheus-url={pf.PROMETHEUS_URL}/" in adapter["args"]
    config = yaml.safe_load(by[("ConfigMap", "adapter-config")]["data"]["config.yaml"])
    assert config["rules"][0]["name"]["as"] == "mlspec_requests_per_second"
    assert ("APIService", "v1beta1.custom.metrics.k8s.io") in by and (
        "APIService",
        "v1beta1.metrics.k8s.io",
    ) not in by

    for obj in objects:
        api = obj["apiVersion"]
        if api.startswith(pf.MONITORING_API.split("/")[0]):
            crd_validate(obj, (api, obj["kind"]))
        else:
            kubernetes_validate.validate(obj, "1.31", strict=True)
