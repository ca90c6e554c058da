"""The local runner itself (actions_runner): GitHub's shell and file-command semantics, a failing step ending
the job, left-over processes stopped, and what it does not emulate refused rather than guessed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from actions_runner import Machine, Repository, UnsupportedWorkflow, WorkflowRun


def workflow_run(tmp_path: Path, text: str) -> WorkflowRun:
    (tmp_path / "workflow.yml").write_text(text, "utf-8")
    machine = Machine(root=tmp_path, packages=tmp_path, find_links=(), env={})
    repository = Repository(path=tmp_path, merge_sha="0" * 40)
    return WorkflowRun(machine, tmp_path / "workflow.yml", repository, tmp_path / "run")


STEPS = """
on: {pull_request: {branches: [main]}}
%s
jobs:
  a:
    runs-on: ubuntu-24.04
    steps:
      - name: tools and env for later steps
        run: |
          mkdir -p "$RUNNER_TEMP/tools"
          printf '#!/bin/sh\\necho tool ran\\n' > "$RUNNER_TEMP/tools/tool"
          chmod +x "$RUNNER_TEMP/tools/tool"
          echo "$RUNNER_TEMP/tools" >> "$GITHUB_PATH"
          echo "GREETING=hello" >> "$GITHUB_ENV"
          sleep 300 &
          echo $! > "$RUNNER_TEMP/sleeper"
      - name: uses them
        run: tool && echo "$GREETING from ${{ github.event_name }} on ${{ github.base_ref }}"
      - name: a failing command inside a pipe
        run: false | true
      - name: fails
        run: exit 3
      - name: never runs
        run: echo never
"""


def test_steps_run_in_order_and_a_failure_ends_the_job(tmp_path):
    run = workflow_run(tmp_path, STEPS % "")
    result = run.job("a")
    assert [(s.name, s.status) for s in result.steps] == [
        ("tools and env for later steps", "passed"),
        ("uses them", "passed"),
        ("a failing command inside a pipe", "passed"),  # `bash -e`, GitHub's default, has no pipefail
        ("fails", "failed"),
    ]
    assert result.steps[1].log == "tool ran\nhello from pull_request on main\n"
    assert result.failed_step == "fails" and result.steps[3].detail == "exit code 3"
    sleeper = int((tmp_path / "run" / "a" / "temp" / "sleeper").read_text())
    with pytest.raises(ProcessLookupError):  # the job's left-over process was stopped
        os.kill(sleeper, 0)


def test_shell_bash_from_defaults_adds_pipefail(tmp_path):
    result = workflow_run(tmp_path, STEPS % "defaults: {run: {shell: bash}}").job("a")
    assert result.failed_step == "a failing command inside a pipe"


@pytest.mark.parametrize(
    ("snippet", "refusal"),
    [
        ("    env: {TOKEN: '${{ secrets.TOKEN }}'}\n", "secrets.TOKEN"),
        ("    env: {X: \"${{ github.ref == 'x' }}\"}\n", "github.ref == 'x'"),
        ("    if: github.event_name == 'pull_request'\n", "if"),
        ("    services: {redis: {image: redis}}\n", "services"),
    ],
)
def test_what_it_does_not_emulate_is_refused(tmp_path, snippet, refusal):
    text = (
        "on: pull_request\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
        + snippet
        + "    steps: [{run: 'true'}]\n"
    )
    with pytest.raises(UnsupportedWorkflow, match=refusal.replace("$", r"\$").replace("(", r"\(")):
        workflow_run(tmp_path, text).job("a")


def test_an_unknown_action_is_refused(tmp_path):
    text = "on: pull_request\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps: [{uses: docker/build-push-action@v6}]\n"
    with pytest.raises(UnsupportedWorkflow, match="docker/build-push-action"):
        workflow_run(tmp_path, text).job("a")
