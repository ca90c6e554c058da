#!/usr/bin/env bash
# Sets up (idempotent) and runs the whole test suite, engine tests included.
# Quick loop without engines:  .venv/bin/pytest -m "not engine"
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1
exec .venv/bin/python -m pytest "$@"
