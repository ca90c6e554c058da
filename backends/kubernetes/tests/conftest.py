"""Fixtures for the Kubernetes backend tests; helpers live in k8s_testlib (importable by test modules)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from k8s_testlib import build_all


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    return build_all(tmp_path_factory.mktemp("k8s"))
