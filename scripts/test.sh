#!/usr/bin/env bash
# Sets up (idempotent) and runs the whole test suite, engine tests included.
# Quick loop without engines:  .venv/bin/pytest -m "not engine"
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Tools installed into the venv (hadolint, actionlint, mlspec) are found without activating it.
export PATH="$PWD/.venv/bin:$PATH"
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1
# Two workers (pytest-xdist): the engine tests wait on subprocesses; MLSPEC_TEST_WORKERS=0 runs in one process.
# loadgroup keeps the tests of one xdist_group (a chain of CI jobs sharing session fixtures) on one worker.
exec .venv/bin/python -m pytest -n "${MLSPEC_TEST_WORKERS:-2}" --dist loadgroup "$@"
