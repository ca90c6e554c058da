"""Fixtures for the CloudFormation backend tests; helpers live in cfn_testlib (importable by test modules)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cfn_testlib import EXISTING_NETWORK, FAMILIES, emit, load_template, lowered, variant


@pytest.fixture(scope="session")
def churn_cfn(churn_ir) -> dict[str, str]:
    return emit(churn_ir)


@pytest.fixture(scope="session")
def churn_doc(churn_cfn) -> dict:
    return load_template(churn_cfn["template.yaml"])


@pytest.fixture(scope="session")
def families_ir():
    return lowered(variant(FAMILIES))


@pytest.fixture(scope="session")
def existing_ir():
    return lowered(variant(EXISTING_NETWORK))
