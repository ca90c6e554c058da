#!/usr/bin/env bash
# The main job: set up the core and the runtime, then lint, compile-check and run the example spec locally
# (validate data, tune, train, evaluate and gate, export ONNX, register in a local MLflow registry).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q -e '.[serving]'
SPEC=${1:-specs/churn.yaml}
.venv/bin/mlspec lint "$SPEC"
.venv/bin/mlspec run "$SPEC"
echo "next: serve the champion with  .venv/bin/mlspec serve $SPEC  (Open Inference Protocol on 127.0.0.1:8080)"
