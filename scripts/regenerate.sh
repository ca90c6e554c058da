#!/usr/bin/env bash
# Recompile every spec in specs/ (and each of its environments) into generated/. `--check` writes nothing
# and fails when the committed output is stale, missing, extra or hand-edited.
set -euo pipefail
cd "$(dirname "$0")/.."
MLSPEC=${MLSPEC:-.venv/bin/mlspec}
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1
for spec in specs/*.yaml; do
  "$MLSPEC" compile "$spec" "$@"
  for env in $(.venv/bin/python -c 'import sys, mlspec; print(" ".join(mlspec.load(sys.argv[1]).spec.environments))' "$spec"); do
    "$MLSPEC" compile "$spec" --env "$env" "$@"
  done
done
