"""The generated pull request workflow of churn, run job by job on this machine (actions_runner): each of the
five jobs passes on the repository as it is, and each fails, at its own step, on a pull request that should
fail it. Every `run:` step really runs; only checkout and setup-python are stood in for (see actions_runner).

The repository is a scratch copy of this checkout; a pull request that changes the spec also commits the
recompiled generated/, as its author would (`mlspec compile`), unless staleness is what it tests. The secret
scan reads this repository's tracked files too: a test credential needs its `pragma: allowlist secret`.

About 6 minutes on 2 cores, in one xdist group: the jobs of one run share the runner machine's wheels and the
artifacts each job hands the next (model-performance -> integration -> load).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from actions_runner import (
    JobResult,
    Machine,
    WorkflowRun,
    make_repository,
    prepare_machine,
)

pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.xdist_group("pull-request-jobs")]

ROOT = Path(__file__).resolve().parents[3]
WORKFLOW = "generated/churn/ci/pull-request.yml"
SPEC = "specs/churn.yaml"
ENVIRONMENTS = ("staging", "prod")
# scripts/setup.sh fills it with the scanners' wheels (the runner's pip has no index)
SCANNER_WHEELS = ROOT / ".venv-checkov" / "wheelhouse"
STOOD_IN = {"actions/checkout", "actions/setup-python"}
# What each passing job's log must show, so that "passed" means the layer's check ran.
EVIDENCE = {
    "data-validation": ["checks passed"],
    "model-performance": ["PASS auc = ", "PASS f1 = ", "champion: no current champion"],
    "integration": ["generated output is current", "champion is models:/churn@champion"],
    "load": ["SLO met: p99 <= 200 ms"],
    "security": ["Failed checks: 0", "Passed checks: "],
}

Change = Callable[[Path], None]


def edit(path: str, old: str, new: str) -> Change:
    def change(work: Path) -> None:
        file = work / path
        text = file.read_text("utf-8")
        assert text.count(old) == 1, f"{path}: {old!r} is not there exactly once"
        file.write_text(text.replace(old, new), "utf-8")

    return change


def recompiled(change: Change) -> Change:
    """The change, then generated/ recompiled for the base and each environment, as the author commits it."""

    def both(work: Path) -> None:
        change(work)
        env = {**os.environ, "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
        for extra in ([], *(["--env", e] for e in ENVIRONMENTS)):
            subprocess.run(
                [sys.executable, "-m", "mlspec", "compile", SPEC, *extra],
                cwd=work,
                env=env,
                check=True,
                capture_output=True,
            )

    return both


@pytest.fixture(scope="session")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Machine:
    return prepare_machine(
        tmp_path_factory.mktemp("runner-machine"),
        ROOT,
        (SCANNER_WHEELS,),
        {"MLSPEC_NOW": os.environ["MLSPEC_NOW"]},
    )


def pull_request(
    machine: Machine, tmp_path_factory: pytest.TempPathFactory, change: Change | None, message: str
) -> WorkflowRun:
    root = tmp_path_factory.mktemp("pull-request")
    repository = make_repository(root, ROOT, change, message)
    return WorkflowRun(machine, repository.path / WORKFLOW, repository, root / "run")


@pytest.fixture(scope="session")
def churn_pr(machine: Machine, tmp_path_factory: pytest.TempPathFactory) -> WorkflowRun:
    return pull_request(machine, tmp_path_factory, None, "no change")


def failed_at(result: JobResult, step: str, *evidence: str) -> None:
    assert not result.passed and result.failed_step == step, result.report()
    for text in evidence:
        assert text in result.failure_log, f"{text!r} not in the failing step's log:\n{result.report()}"


@pytest.mark.parametrize("job", list(EVIDENCE))
def test_each_job_passes_on_churn(churn_pr: WorkflowRun, job: str) -> None:
    result = churn_pr.job(job)
    print(result.report())
    assert result.passed, result.report()
    declared = churn_pr.doc["jobs"][job]["steps"]
    assert [s.name for s in result.steps] == [d["name"] for d in declared]
    for step, ran in zip(declared, result.steps, strict=True):
        stood_in = "uses" in step and step["uses"].split("@")[0] in STOOD_IN
        assert ran.status == ("stood in" if stood_in else "passed"), (step["name"], ran.status)
    logs = "".join(s.log for s in result.steps)
    for text in EVIDENCE[job]:
        assert text in logs, f"{text!r} not in the logs of {job}:\n{logs[-4000:]}"


def test_data_validation_fails_a_failing_data_check(machine, tmp_path_factory) -> None:
    change = recompiled(edit(SPEC, "{check: row_count, min: 2000}", "{check: row_count, min: 1000000}"))
    run = pull_request(machine, tmp_path_factory, change, "expect a million rows")
    failed_at(run.job("data-validation"), "Validate the data", "row_count")


def test_model_performance_fails_a_failing_gate(machine, tmp_path_factory) -> None:
    change = recompiled(edit(SPEC, "{metric: auc, min: 0.75}", "{metric: auc, min: 0.99}"))
    run = pull_request(machine, tmp_path_factory, change, "an AUC no model here reaches")
    failed_at(
        run.job("model-performance"),
        "Gates and regression against the champion",
        "FAIL auc = ",
        "model performance: a gate failed",
    )


def test_integration_fails_stale_generated_output(machine, tmp_path_factory) -> None:
    change = edit(SPEC, "replicas: {min: 2, max: 20}", "replicas: {min: 3, max: 20}")
    run = pull_request(machine, tmp_path_factory, change, "spec changed, generated/ not recompiled")
    failed_at(run.job("integration"), "Generated output is current", "stale")


def test_load_fails_a_missed_slo(machine, tmp_path_factory, churn_pr: WorkflowRun) -> None:
    change = recompiled(edit(SPEC, "    latency_p99_ms: 200\n", "    latency_p99_ms: 0.01\n"))
    run = pull_request(machine, tmp_path_factory, change, "a p99 of 10 microseconds")
    # The load job serves the registry the integration job uploads. Nothing it trains or registers reads
    # serving.slo, so the unchanged repository's integration run (already made) stands for this one's.
    run.reuse("integration", churn_pr)
    failed_at(run.job("load"), "Serve and drive load against the SLO", "SLO missed")


def test_security_fails_a_weakened_manifest(machine, tmp_path_factory) -> None:
    manifest = "generated/churn/staging/kubernetes/deployment-churn-cache.yaml"
    change = edit(manifest, "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true")
    run = pull_request(machine, tmp_path_factory, change, "hand-edit the staging cache Deployment")
    failed_at(
        run.job("security"),
        "checkov on the generated Terraform and manifests",
        "CKV_K8S_20",
        "deployment-churn-cache.yaml",
    )


def test_security_fails_a_planted_secret(machine, tmp_path_factory) -> None:
    key_id = "AKIA" + "2E5GK7QX4MWB9ZRT"  # split, so this file does not hold one

    def plant(work: Path) -> None:
        (work / "config").mkdir()
        (work / "config" / "deploy.env").write_text(f"AWS_ACCESS_KEY_ID={key_id}\n", "utf-8")

    run = pull_request(machine, tmp_path_factory, plant, "commit an AWS key")
    failed_at(run.job("security"), "Secret scan of the tracked files", "AWS Access Key", "config/deploy.env")
