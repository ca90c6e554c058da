"""Progressive delivery per strategy, kustomize composition, determinism and the unsupported() path."""

from __future__ import annotations

import os
import subprocess
import sys

from k8s_testlib import ROOT, churn_text, emit, ir_for, kustomize


def find(objects, kind, name=None):
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def test_canary_steps_and_analysis_follow_the_ir(built):
    ir, _, objects = built["canary"]
    r = ir.serving.rollout
    (rollout,) = find(objects, "Rollout")
    canary = rollout["spec"]["strategy"]["canary"]
    weights = [s["setWeight"] for s in canary["steps"] if "setWeight" in s]
    pauses = [s["pause"]["duration"] for s in canary["steps"] if "pause" in s]
    assert weights == r.steps
    assert pauses == [f"{r.step_duration_seconds}s"] * (len(r.steps) - 1)
    (template,) = find(objects, "AnalysisTemplate")
    assert canary["analysis"]["templates"] == [{"templateName": template["metadata"]["name"]}]
    assert_analysis_judges_like_the_slo(ir, template)
    assert not find(objects, "Deployment", ir.serving.id)


def assert_analysis_judges_like_the_slo(ir, template):
    """Errors are the SLO's status classes; latency is the share of requests above the rollback bucket
    (exact `le`), which may not exceed 1 - latency_quantile: the same reading as the burn-rate alerts."""
    slo = ir.serving.slo
    metrics = {m["name"]: m for m in template["spec"]["metrics"]}
    errors, slow = metrics["error-rate"], metrics["slow-request-rate"]
    assert errors["successCondition"].endswith(f"result[0] <= {slo.rollback.max_error_rate!r}")
    assert slow["successCondition"].endswith(f"result[0] <= {round(1 - slo.latency_quantile, 10)!r}")
    assert 'code=~"5.."' in errors["provider"]["prometheus"]["query"] and slo.error_status_classes == [5]
    query = slow["provider"]["prometheus"]["query"]
    assert f'le="{slo.rollback.max_latency_bucket_seconds!r}"' in query
    assert slo.rollback.max_latency_bucket_seconds in slo.histogram_buckets_seconds
    assert "histogram_quantile" not in query


def test_blue_green_analyses_after_promotion(built):
    ir, _, objects = built["blue-green"]
    (rollout,) = find(objects, "Rollout")
    bg = rollout["spec"]["strategy"]["blueGreen"]
    assert bg["activeService"] == ir.serving.id and find(objects, "Service", bg["previewService"])
    (template,) = find(objects, "AnalysisTemplate")
    assert all(m["count"] == 5 for m in template["spec"]["metrics"])  # 5m step_duration at 60s
    assert_analysis_judges_like_the_slo(ir, template)
    assert bg["postPromotionAnalysis"]["templates"][0]["templateName"] == template["metadata"]["name"]


def test_rolling_is_a_plain_deployment(built):
    ir, _, objects = built["rolling"]
    (dep,) = find(objects, "Deployment", ir.serving.id)
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert not find(objects, "Rollout") and not find(objects, "AnalysisTemplate")


def test_shadow_gets_mirrored_copies_and_serves_nobody(built):
    ir, _, objects = built["shadow"]
    shadow = f"{ir.serving.id}-shadow"
    (dep,) = find(objects, "Deployment", shadow)
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[-2:] == ["--model", f"models:/{ir.registry.model_name}@{ir.registry.challenger_alias}"]
    (vs,) = find(objects, "VirtualService")
    (http,) = vs["spec"]["http"]
    host = f"{ir.serving.id}.{ir.system.namespace}.svc.cluster.local"
    assert vs["spec"]["hosts"] == [host]
    assert [d["destination"]["host"] for d in http["route"]] == [host]  # users only reach the champion
    assert http["mirror"]["host"] == f"{shadow}.{ir.system.namespace}.svc.cluster.local"
    assert http["mirrorPercentage"]["value"] == ir.serving.rollout.shadow_percent
    assert find(objects, "Service", shadow)  # the mirror target exists
    (user_svc,) = find(objects, "Service", ir.serving.id)
    assert user_svc["spec"]["selector"]["app.kubernetes.io/name"] == ir.serving.id


def test_a_b_splits_traffic_with_labelled_variants(built):
    ir, _, objects = built["a-b"]
    (vs,) = find(objects, "VirtualService")
    routes = vs["spec"]["http"][0]["route"]
    assert [r["weight"] for r in routes] == [80, 20]
    assert [r["headers"]["response"]["set"]["x-mlspec-variant"] for r in routes] == ["champion", "challenger"]
    variants = {
        o["metadata"]["name"]: o["spec"]["template"]["metadata"]["labels"]["mlspec.io/variant"]
        for o in find(objects, "Deployment")
        if o["metadata"]["labels"]["app.kubernetes.io/component"] == "server"
    }
    assert variants == {ir.serving.id: "champion", f"{ir.serving.id}-challenger": "challenger"}
    (sm,) = find(objects, "ServiceMonitor")
    assert {"targetLabel": "variant"}.items() <= sm["spec"]["endpoints"][0]["relabelings"][1].items()


def test_a_b_experiment_duration_ends_with_the_analysis_verdict():
    """Expressed, not reported: the analysis CronJob judges the experiment once it has run its duration."""
    from mlspec_kubernetes import KubernetesBackend

    text = churn_text({"strategy": "a-b", "traffic_split": 20, "experiment_duration": "7d"})
    ir = ir_for(text)
    artifacts, ctx = emit(ir, allow_unsupported=False)
    assert ctx.diagnostics == [] and list(KubernetesBackend().check(ir, {})) == []
    analysis = ir.serving.rollout.analysis
    assert (analysis.kind, analysis.duration_seconds, analysis.challenger_variant) == (
        "experiment",
        7 * 86400,
        "challenger",
    )
    cron = next(a.content for a in artifacts if a.path == "cronjob-churn-rollout.yaml")
    assert "- analyze" in cron and "- --apply" in cron


def test_every_report_comes_from_the_capability_table():
    """Compile reports exactly what check() (and so lint) predicts, for every variant and environment."""
    from k8s_testlib import variants
    from mlspec_kubernetes import KubernetesBackend

    cases = [ir_for(text) for text in variants().values()]
    cases += [ir_for(churn_text(), env) for env in ("staging", "prod")]
    without_account = "\n".join(line for line in churn_text().splitlines() if "account_id" not in line)
    cases.append(ir_for(without_account))
    for ir in cases:
        _, ctx = emit(ir, allow_unsupported=True)
        predicted = [(u.feature, u.where) for u, _ in KubernetesBackend().check(ir, {})]
        reported = [d.message for d in ctx.diagnostics]
        assert len(reported) == len(predicted)
        assert all(f"cannot express {f}" in m for (f, _), m in zip(predicted, reported, strict=True))
    assert [u.feature for u, _ in KubernetesBackend().check(cases[-1], {})] == [
        "infrastructure.no_account_id"
    ]


def test_churn_compiles_without_diagnostics():
    _, ctx = emit(ir_for(churn_text()), allow_unsupported=False)
    assert ctx.diagnostics == []


def test_overlay_composes_with_the_base(built, tmp_path):
    """A deploy-time overlay pins the image by digest on top of the generated base."""
    ir, base, _ = built["canary"]
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    digest = "sha256:" + "0" * 64
    name = ir.images["runtime"].rsplit(":", 1)[0]
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n- {os.path.relpath(base, overlay)}\nimages:\n- name: {name}\n  digest: {digest}\n"
    )
    objects = kustomize(overlay)
    (cron,) = find(objects, "CronJob")
    assert (
        cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"]
        == f"{name}@{digest}"
    )


def test_compile_is_byte_identical(tmp_path):
    outs = []
    for i, seed in enumerate(("0", "12345")):
        out = tmp_path / f"out{i}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "mlspec",
                "compile",
                "specs/churn.yaml",
                "--target",
                "kubernetes",
                "--out",
                str(out),
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        outs.append(
            {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
        )
    assert outs[0] == outs[1]
    assert len(outs[0]) > 15
    assert all(str(tmp_path).encode() not in data for data in outs[0].values())


def test_libyaml_and_pure_python_emitters_write_the_same_bytes(built):
    """Machines without libyaml fall back to PyYAML's pure emitter: the output must not change."""
    import yaml
    from mlspec_kubernetes import render

    assert yaml.__with_libyaml__  # otherwise this test would compare the pure emitter with itself
    for _, folder, _ in built.values():
        for path in sorted(folder.glob("*.yaml")):
            data = yaml.safe_load(path.read_text("utf-8"))
            assert render.dump(data) == render.dump(data, render.PURE_DUMPER), path
