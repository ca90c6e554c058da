"""The generated pull request workflow of churn, run on this machine (actions_runner): its jobs pass on the
repository as it is and fail, at their own step, on a pull request that should fail them. Every `run:` step
really runs; only checkout and setup-python are stood in for (see actions_runner).

Within the suite's time budget (2 shared cores) this runs the data validation job, passing and failing a data
check (about 70 s with building the wheels). The other four jobs pass under this runner too, and fail on a
failing gate, stale generated output, a missed SLO, a checkov finding and a planted secret, but each needs
minutes here (training alone takes 100-160 s; the scanners' install, the secret scan and checkov about
150 s; a 30 s load test), about 15 minutes in all: commit 0fa214a holds those cases.

The repository is a scratch copy of this checkout with the pull request committed on top.
"""

from __future__ import annotations

import os
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

pytestmark = [pytest.mark.engine, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
WORKFLOW = "generated/churn/ci/pull-request.yml"
SPEC = "specs/churn.yaml"
# scripts/setup.sh fills it with the scanners' wheels (the runner's pip has no index)
SCANNER_WHEELS = ROOT / ".venv-checkov" / "wheelhouse"
STOOD_IN = {"actions/checkout", "actions/setup-python"}

Change = Callable[[Path], None]


def edit(path: str, old: str, new: str) -> Change:
    def change(work: Path) -> None:
        file = work / path
        text = file.read_text("utf-8")
        assert text.count(old) == 1, f"{path}: {old!r} is not there exactly once"
        file.write_text(text.replace(old, new), "utf-8")

    return change


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


def test_data_validation_passes_on_churn(churn_pr: WorkflowRun) -> None:
    result = churn_pr.job("data-validation")
    assert result.passed, result.report()
    declared = churn_pr.doc["jobs"]["data-validation"]["steps"]
    assert [s.name for s in result.steps] == [d["name"] for d in declared]
    for step, ran in zip(declared, result.steps, strict=True):
        stood_in = "uses" in step and step["uses"].split("@")[0] in STOOD_IN
        assert ran.status == ("stood in" if stood_in else "passed"), (step["name"], ran.status)
    assert "checks passed" in result.steps[-1].log, result.report()  # the layer's check ran


def test_data_validation_fails_a_failing_data_check(machine, tmp_path_factory) -> None:
    # generated/ is left as it was: the data validation job reads only the spec and the data
    change = edit(SPEC, "{check: row_count, min: 2000}", "{check: row_count, min: 1000000}")
    run = pull_request(machine, tmp_path_factory, change, "expect a million rows")
    failed_at(run.job("data-validation"), "Validate the data", "row_count")
