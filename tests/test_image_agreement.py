"""One runtime image: the container backend builds it, Terraform creates its ECR repository, CI pushes it
there, and every pipeline step, pod and DAG task pulls exactly that reference."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import mlspec
from mlspec.api import compile as compile_spec

SPECS = Path(__file__).resolve().parents[1] / "specs"

IMAGE_FIELD = re.compile(r"""(?:image|image_uri)["']?\s*[:=]\s*["']?([^"'\s,)]+)""")
CACHE_IMAGE = "docker.io/library/redis:"


@pytest.mark.parametrize("spec", ["churn.yaml", "fraud.yaml"])
def test_every_generated_reference_is_the_ir_image(spec):
    loaded = mlspec.load(SPECS / spec)
    result = compile_spec(loaded, ["kubeflow", "airflow", "kubernetes", "terraform", "container", "ci"])
    ir = result.ir
    image = ir.image
    assert image is not None and image.registry_kind == "ecr"
    assert image.reference == ir.images["runtime"] == f"{image.repository}:{image.tag}"
    seen = set()
    for target in ("kubeflow", "airflow", "kubernetes"):
        for artifact in result.artifacts[target]:
            if artifact.path.startswith("platform/"):
                continue  # the cluster's add-ons: pinned third-party images (backends/kubernetes/tests/test_platform.py)
            text = str(artifact.content)
            for ref in IMAGE_FIELD.findall(text):
                if ref.startswith(CACHE_IMAGE) or "/" not in ref:
                    continue
                seen.add((target, ref))
    assert {t for t, _ in seen} == {"kubeflow", "airflow", "kubernetes"}, seen
    assert {ref for _, ref in seen} == {image.reference}, seen
    # Terraform creates the repository the reference names, in its region.
    doc = json.loads(next(str(a.content) for a in result.artifacts["terraform"] if a.path == "main.tf.json"))
    repo = next(iter(doc["resource"]["aws_ecr_repository"].values()))
    assert repo["name"] == image.ecr_repository and doc["provider"]["aws"][0]["region"] == image.region
    assert (
        image.repository
        == f"{ir.infrastructure.account_id}.dkr.ecr.{image.region}.amazonaws.com/{repo['name']}"
    )
    # The container backend labels and builds that reference; CI tags and pushes that repository.
    dockerfile = next(str(a.content) for a in result.artifacts["container"] if a.path == "Dockerfile")
    assert f'org.opencontainers.image.ref.name="{image.reference}"' in dockerfile
    workflows = "".join(str(a.content) for a in result.artifacts["ci"])
    assert '["image"]["reference"]' in workflows  # read from the IR when the job runs
    assert f'--repository-name "{image.ecr_repository}"' in workflows and "amazon-ecr-login" in workflows


def test_without_an_account_the_spec_reference_is_kept():
    ir = mlspec.lower(mlspec.load(SPECS / "breast-cancer.yaml"))
    assert ir.images["runtime"] == "ghcr.io/acme/mlspec-runtime:0.1.0"
    assert ir.image.registry_kind == "ghcr" and ir.image.ecr_repository is None
