"""Every object is schema-valid: core kinds with kubernetes-validate --strict at the cluster's version,
custom resources with jsonschema against their upstream CRDs, made strict (unknown fields fail)."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from k8s_testlib import VARIANTS

CRDS = Path(__file__).parent / "data" / "crds"
CRD_FILES = {
    ("argoproj.io/v1alpha1", "Rollout"): "argo-rollouts_rollout-crd.yaml",
    ("argoproj.io/v1alpha1", "AnalysisTemplate"): "argo-rollouts_analysis-template-crd.yaml",
    (
        "monitoring.coreos.com/v1",
        "PrometheusRule",
    ): "prometheus-operator_monitoring.coreos.com_prometheusrules.yaml",
    (
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
    ): "prometheus-operator_monitoring.coreos.com_servicemonitors.yaml",
    ("monitoring.coreos.com/v1", "Prometheus"): "prometheus-operator_monitoring.coreos.com_prometheuses.yaml",
    (
        "monitoring.coreos.com/v1",
        "Alertmanager",
    ): "prometheus-operator_monitoring.coreos.com_alertmanagers.yaml",
}
# No CRD for Istio is vendored (see docs/backends/kubernetes.md); its objects are checked in test_delivery.py.
NOT_SCHEMA_CHECKED = {("networking.istio.io/v1", "VirtualService")}


def strict(schema):
    """Structural CRD schemas prune unknown fields; make them fail instead, like kubectl --validate=strict."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
                node.setdefault("additionalProperties", False)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


@cache
def crd_schema(api_version: str, kind: str):
    crd = yaml.safe_load((CRDS / CRD_FILES[(api_version, kind)]).read_text("utf-8"))
    version = api_version.split("/")[1]
    entry = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    return strict(entry["schema"]["openAPIV3Schema"])


def crd_validate(obj, key) -> None:
    # No check_schema(): upstream CRDs carry Go regexes (e.g. a mid-pattern `(?i)`) that Python's
    # metaschema format check rejects; patterns on fields we set are still applied.
    jsonschema.Draft7Validator(crd_schema(*key)).validate(obj)


UNMANAGED_CLUSTER_VERSION = "1.31"  # a spec without infrastructure names no cluster: check at a recent one


def cluster_version(ir) -> str:
    return ir.infrastructure.cluster_version if ir.infrastructure else UNMANAGED_CLUSTER_VERSION


def test_cluster_version_is_shipped_by_kubernetes_validate(built):
    for ir, _, _ in built.values():
        shipped = {kubernetes_validate.utils.major_minor(v) for v in kubernetes_validate.utils.all_versions()}
        assert kubernetes_validate.utils.major_minor(cluster_version(ir)) in shipped


@pytest.mark.parametrize("name", VARIANTS)
def test_every_object_is_schema_valid(built, name):
    ir, _, objects = built[name]
    kinds = set()
    for obj in objects:
        key = (obj["apiVersion"], obj["kind"])
        kinds.add(key)
        if key in CRD_FILES:
            crd_validate(obj, key)
        elif key in NOT_SCHEMA_CHECKED:
            continue
        else:
            kubernetes_validate.validate(obj, cluster_version(ir), strict=True)
    assert ("apps/v1", "Deployment") in kinds or ("argoproj.io/v1alpha1", "Rollout") in kinds


def test_strict_validation_rejects_unknown_fields(built):
    _, _, objects = built["canary"]
    rollout = copy.deepcopy(next(o for o in objects if o["kind"] == "Rollout"))
    rollout["spec"]["strategy"]["canary"]["stepz"] = []
    with pytest.raises(jsonschema.ValidationError):
        crd_validate(rollout, ("argoproj.io/v1alpha1", "Rollout"))
    service = copy.deepcopy(next(o for o in objects if o["kind"] == "Service"))
    service["spec"]["portz"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, "1.31", strict=True)
