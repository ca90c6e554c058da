#!/usr/bin/env bash
# Static checks CI runs before the tests: ruff (lint and format) and mypy over everything pyproject.toml
# configures, backends included. Runs all three and fails if any of them finds a problem.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${MLSPEC_VENV:-.venv}/bin
failed=()
"$BIN/ruff" check . || failed+=("ruff check")
"$BIN/ruff" format --check . || failed+=("ruff format --check")
"$BIN/mypy" || failed+=("mypy")
if [ ${#failed[@]} -gt 0 ]; then
  (IFS=,; echo "static checks failed: ${failed[*]}" | sed 's/,/, /g' >&2)
  exit 1
fi
echo "static checks passed: ruff check, ruff format --check, mypy"
