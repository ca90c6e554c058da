"""Fixtures for the terraform backend tests: the churn example compiled once per session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


@pytest.fixture(scope="session")
def churn_tf(churn_ir) -> dict[str, str]:
    """path -> text of the terraform backend's artifacts for the churn example."""
    return emit(churn_ir)


def emit(ir) -> dict[str, str]:
    from mlspec_terraform import TerraformBackend

    from mlspec.backends import EmitContext

    ctx = EmitContext()
    artifacts = TerraformBackend().emit(ir, ctx)
    assert not ctx.diagnostics, [d.message for d in ctx.diagnostics]
    return {a.path: a.content for a in artifacts}


@pytest.fixture(scope="session")
def churn_doc(churn_tf) -> dict:
    return json.loads(churn_tf["main.tf.json"])


@pytest.fixture(scope="session")
def families_ir(churn_spec_path):
    """churn plus an Inferentia pool: a standard, an NVIDIA and a Neuron node image."""
    import mlspec

    text = churn_spec_path.read_text("utf-8").replace(
        "    gpu: {instance_type: g5.xlarge,",
        "    inf: {instance_type: inf2.xlarge, min: 0, max: 2}\n    gpu: {instance_type: g5.xlarge,",
    )
    assert "inf2.xlarge" in text
    return mlspec.lower(mlspec.loads(text, "specs/churn.yaml"))


@pytest.fixture(scope="session")
def families_tf(families_ir) -> dict[str, str]:
    return emit(families_ir)


@pytest.fixture(scope="session")
def families_doc(families_tf) -> dict:
    return json.loads(families_tf["main.tf.json"])


@pytest.fixture()
def tf_dir(tmp_path: Path, churn_tf: dict[str, str]) -> Path:
    for path, text in churn_tf.items():
        (tmp_path / path).write_text(text)
    return tmp_path


def terraform(
    args: list[str], cwd: Path, cli_config: Path, timeout: float = 300
) -> subprocess.CompletedProcess:
    exe = shutil.which("terraform")
    if exe is None:
        pytest.fail("terraform is not installed")
    env = {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(cli_config),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
    }
    proc = subprocess.run(
        [exe, *args, "-no-color"], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, (
        f"terraform {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc
