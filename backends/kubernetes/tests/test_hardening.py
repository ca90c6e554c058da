"""Pod Security Standards "restricted", resources, probes, scheduling and HPA ownership of replicas,
checked on every pod template (Deployments, the Argo Rollout, the CronJob) of every variant."""

from __future__ import annotations

import pytest
from k8s_testlib import VARIANTS


def pod_templates(objects):
    for obj in objects:
        if obj["kind"] in ("Deployment", "Rollout"):
            yield obj, obj["spec"]["template"]["spec"]
        elif obj["kind"] == "CronJob":
            yield obj, obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("name", VARIANTS)
def test_pods_are_restricted(built, name):
    _, _, objects = built[name]
    templates = list(pod_templates(objects))
    assert len(templates) >= 2
    for _, spec in templates:
        assert spec["automountServiceAccountToken"] is False
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] >= 10000
        assert psc["seccompProfile"]["type"] == "RuntimeDefault"
        mounts = set()
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"]
            assert sc["readOnlyRootFilesystem"] is True and sc["runAsUser"] >= 10000
            assert sc["seccompProfile"]["type"] == "RuntimeDefault"
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind])
            image = c["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
            mounts |= {m["mountPath"] for m in c["volumeMounts"]}
        assert "/tmp" in mounts
        assert not any(k in spec for k in ("hostNetwork", "hostPID", "hostIPC"))


@pytest.mark.parametrize("name", VARIANTS)
def test_servers_probe_health_and_spread(built, name):
    ir, _, objects = built[name]
    servers = [
        (o, s)
        for o, s in pod_templates(objects)
        if o["metadata"]["labels"]["app.kubernetes.io/component"] == "server"
    ]
    assert servers
    for _, spec in servers:
        (c,) = spec["containers"]
        assert c["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
        assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
        assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
        # Startup leaves at least five minutes for model download and load before liveness counts.
        assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] >= 300
        assert c["ports"] == [{"containerPort": ir.serving.port, "name": "http", "protocol": "TCP"}]
        assert c["command"] == ["mlspec"] and c["args"][:2] == ["serve", "/etc/mlspec/ir.json"]
        keys = {t["topologyKey"] for t in spec["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


@pytest.mark.parametrize("name", VARIANTS)
def test_hpa_owns_replicas(built, name):
    ir, _, objects = built[name]
    hpas = {o["spec"]["scaleTargetRef"]["name"]: o for o in objects if o["kind"] == "HorizontalPodAutoscaler"}
    assert (ir.serving.replicas_max > ir.serving.replicas_min) == bool(hpas)
    for obj in objects:
        if obj["metadata"]["name"] in hpas and obj["kind"] in ("Deployment", "Rollout"):
            assert "replicas" not in obj["spec"]
            hpa = hpas[obj["metadata"]["name"]]
            assert hpa["spec"]["scaleTargetRef"]["kind"] == obj["kind"]
            assert hpa["spec"]["maxReplicas"] == ir.serving.replicas_max
            metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
            assert (
                metrics["Resource"]["resource"]["target"]["averageUtilization"]
                == ir.serving.target_cpu_percent
            )
            assert metrics["Pods"]["pods"]["metric"]["name"] == "mlspec_requests_per_second"
            assert (
                float(metrics["Pods"]["pods"]["target"]["averageValue"]) == ir.serving.target_rps_per_replica
            )


def test_staging_env_has_its_own_scale(built):
    ir, _, objects = built["env-staging"]
    assert (ir.serving.replicas_min, ir.serving.replicas_max) == (1, 3)
    hpas = {o["metadata"]["name"]: o for o in objects if o["kind"] == "HorizontalPodAutoscaler"}
    assert (hpas[ir.serving.id]["spec"]["minReplicas"], hpas[ir.serving.id]["spec"]["maxReplicas"]) == (1, 3)
    # the canary's challenger scales with the same ceiling, from one replica
    canary = hpas[f"{ir.serving.id}-canary"]["spec"]
    assert (canary["minReplicas"], canary["maxReplicas"]) == (1, 3)


def test_namespace_enforces_restricted(built):
    _, _, objects = built["canary"]
    (ns,) = [o for o in objects if o["kind"] == "Namespace"]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_network_policies_default_deny_and_allow_needed_flows(built):
    ir, _, objects = built["canary"]
    policies = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "NetworkPolicy"}
    deny = policies["default-deny"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    server = policies[ir.serving.id]
    assert server["ingress"][0]["ports"] == [{"port": ir.serving.port, "protocol": "TCP"}]
    assert any(p["port"] == 6379 for rule in server["egress"] for p in rule["ports"])
    cache = policies[ir.serving.cache.service]
    assert (
        cache["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        == ir.serving.id
    )
