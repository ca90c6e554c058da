"""The multi-node training job template: schema-valid as the train step's launcher fills it in (core kinds with
kubernetes-validate --strict, the TrainJob against Kubeflow Trainer's CRD and its API models), and what it
says agrees with the IR's training.distribution."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from k8s_testlib import churn_text, emit, ir_for
from test_schemas import CRDS, strict

from mlspec import contracts
from mlspec.runtime import launch

CLUSTER = "1.31"
TRAINJOB_CRD = CRDS / "trainer.kubeflow.org_trainjobs.yaml"  # kubeflow/trainer v2.3.0, see SOURCES.md


def spread_text(workers: int = 2, launcher: str = "job") -> str:
    return churn_text().replace(
        "  retries: 2\n", f"  distributed: {{workers: {workers}, launcher: {launcher}}}\n  retries: 2\n", 1
    )


def compiled(launcher: str):
    ir = ir_for(spread_text(launcher=launcher))
    artifacts, _ = emit(ir, allow_unsupported=False)
    files = {
        a.path: yaml.safe_load(a.data())
        for a in artifacts
        if not a.path.startswith("platform/") and a.path.endswith(".yaml")
    }
    config = files[f"configmap-{ir.training.distribution.template}.yaml"]
    template = [d for d in yaml.safe_load_all(config["data"][contracts.TRAIN_JOB_TEMPLATE_KEY]) if d]
    filled = launch.fill(
        template,
        ir_json=ir.to_json(),
        run_dir="s3://acme-ml-artifacts/churn/runs/7",
        args=["--hparam", "lr=0.01"],
    )
    return ir, files, template, filled


@pytest.fixture(scope="module")
def job():
    return compiled("job")


@pytest.fixture(scope="module")
def trainjob():
    return compiled("trainjob")


def test_the_job_launcher_template_is_schema_valid_before_and_after_filling(job) -> None:
    _ir, files, template, filled = job
    assert [o["kind"] for o in template] == ["Service", "Job"]
    for obj in [*template, *filled]:
        kubernetes_validate.validate(obj, CLUSTER, strict=True)
    for name in ("role-churn-train-launcher.yaml", "rolebinding-churn-train-launcher.yaml"):
        kubernetes_validate.validate(files[name], CLUSTER, strict=True)
    kubernetes_validate.validate(files["networkpolicy-churn-train-workers.yaml"], CLUSTER, strict=True)
    # a kustomization resource is applied with the platform; the template must not start a run then
    assert not any(f.startswith(("job-", "service-churn-train.")) for f in files)


def test_the_indexed_job_says_what_the_ir_decided(job) -> None:
    ir, _, template, filled = job
    d = ir.training.distribution
    service, job_obj = filled
    spec = job_obj["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 2, 2)
    assert spec["backoffLimit"] == d.max_restarts
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == d.command
    assert pod["subdomain"] == service["metadata"]["name"] and service["spec"]["clusterIP"] == "None"
    env = {e["name"]: e.get("value") for e in container["env"]}
    name = job_obj["metadata"]["name"]
    assert env["PET_RDZV_ENDPOINT"] == f"{name}-0.{service['metadata']['name']}:{d.rendezvous_port}"
    assert env["PET_RDZV_BACKEND"] == "c10d" and env[contracts.DDP_WORKER_ENV] == "1"
    assert env[contracts.RUN_DIR_ENV] == "s3://acme-ml-artifacts/churn/runs/7"
    assert env[contracts.IR_ENV] == ir.to_json()  # no $( in the IR, nothing to escape
    assert container["args"] == [
        "--ir",
        "$(MLSPEC_IR)",
        "--run-dir",
        "$(MLSPEC_RUN_DIR)",
        "--hparam",
        "lr=0.01",
    ]
    limits = container["resources"]["limits"]
    assert limits[d.placement.gpu.resource] == str(d.placement.gpu.count)
    assert pod["nodeSelector"] == d.placement.node_selector
    assert [t["key"] for t in pod["tolerations"]] == [t.key for t in d.placement.tolerations]
    assert pod["securityContext"]["runAsNonRoot"] and container["securityContext"]["readOnlyRootFilesystem"]
    # the launcher's pods: the unfilled template has empty values to fill
    blank = {
        e["name"]: e.get("value") for e in template[1]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert blank[contracts.IR_ENV] == "" and blank[contracts.RUN_DIR_ENV] == ""


def _trainjob_schema():
    assert TRAINJOB_CRD.exists(), (
        f"vendor Kubeflow Trainer's TrainJob CRD to {TRAINJOB_CRD} (kubeflow/trainer v2.3.0, "
        "manifests/base/crds/trainer.kubeflow.org_trainjobs.yaml; see SOURCES.md)"
    )
    crd = yaml.safe_load(TRAINJOB_CRD.read_text("utf-8"))
    entry = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    return strict(entry["schema"]["openAPIV3Schema"])


def test_the_trainjob_validates_against_the_trainer_crd(trainjob) -> None:
    _ir, files, template, filled = trainjob
    assert [o["kind"] for o in template] == ["TrainJob"]
    schema = _trainjob_schema()
    for obj in (template[0], filled[0]):
        jsonschema.Draft7Validator(schema).validate(obj)
    broken = copy.deepcopy(filled[0])
    broken["spec"]["trainer"]["numNodez"] = 2
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(broken)
    assert not any(f.startswith(("service-", "job-")) for f in files if "train" in f)


def test_the_trainjob_round_trips_through_the_trainer_api_models(trainjob) -> None:
    """kubeflow-trainer-api's models keep exactly the fields they know: a field they drop is one the API lacks."""
    from kubeflow_trainer_api.models import TrainerV1alpha1TrainJob

    ir, _, _, filled = trainjob
    (obj,) = filled
    assert TrainerV1alpha1TrainJob.from_dict(obj).to_dict() == obj
    d = ir.training.distribution
    trainer = obj["spec"]["trainer"]
    assert (trainer["numNodes"], trainer["numProcPerNode"], trainer["command"]) == (
        d.nodes,
        d.processes_per_node,
        d.command,
    )
    env = {e["name"] for e in trainer["env"]}
    assert not {
        n for n in env if n.startswith("PET_")
    }  # Trainer injects the rendezvous and refuses its names


def test_one_node_needs_no_job(tmp_path: Path) -> None:
    text = churn_text().replace(
        "    gpu: {instance_type: g5.xlarge, min: 0, max: 4, accelerator: nvidia-a10g}\n",
        "    gpu: {instance_type: g5.12xlarge, min: 0, max: 1}\n",
    )
    text = text.replace("  retries: 2\n", "  distributed: {workers: 2}\n  retries: 2\n", 1)
    ir = ir_for(text)
    assert ir.training.distribution.launcher == "standalone"  # two one-GPU workers on one four-GPU node
    artifacts, _ = emit(ir, allow_unsupported=False)
    assert not [a.path for a in artifacts if "train-job" in a.path or "train-launcher" in a.path]


def test_checkov_accepts_the_workers_as_it_does_every_other_pod(job, tmp_path: Path) -> None:
    """The template sits in a ConfigMap, out of the main checkov run: check what the launcher creates, with
    the workers' NetworkPolicy, at checkov's defaults."""
    import json
    import subprocess

    from test_checkov import CHECKOV, accepted_ids

    _, files, _, filled = job
    for i, obj in enumerate(filled):
        (tmp_path / f"launched-{i}.yaml").write_text(yaml.safe_dump(obj))
    policy = files["networkpolicy-churn-train-workers.yaml"]
    (tmp_path / "networkpolicy.yaml").write_text(yaml.safe_dump(policy))
    out = subprocess.run(
        [str(CHECKOV), "-d", str(tmp_path), "--skip-download", "-o", "json", "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    reports = json.loads(out.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [f["check_id"] for r in reports for f in r["results"]["failed_checks"]]
    assert set(failed) <= accepted_ids(), failed
    assert sum(r["summary"]["passed"] for r in reports) > 50
