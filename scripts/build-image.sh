#!/usr/bin/env bash
# Build a generated runtime image on this machine, daemonless and without Docker Hub: podman (buildah) from
# Debian, a local stand-in for python:3.11-slim-bookworm made with mmdebstrap, and a wheelhouse of mlspec (not
# on PyPI) and everything it needs, mounted into the build's RUN steps with a pip config that says
# --no-index. The generated Dockerfile is built unchanged; only its BASE build argument is set.
#
#   bash scripts/build-image.sh [CONTAINER_DIR] [TAG]
#
# CONTAINER_DIR: a generated container folder, CPU variant only (default generated/breast-cancer/container).
# TAG: default the Dockerfile's org.opencontainers.image.ref.name label.
# Needs root, podman, mmdebstrap, a Debian mirror and PyPI (directly or through a proxy whose CA is in the
# host's bundle), and torch's CPU wheel on disk (TORCH_CPU_WHEEL): download.pytorch.org is not reachable here.
# Idempotent: the base is made once; the wheelhouse and the image are rebuilt from the working tree each time.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."

dir=${1:-generated/breast-cancer/container}
dockerfile=$dir/Dockerfile
work=${MLSPEC_IMAGE_WORK:-/tmp/mlspec-image}
base=localhost/mlspec-bookworm-python:3.11
torch_wheel=${TORCH_CPU_WHEEL:-/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl}
ca_bundle=/etc/ssl/certs/ca-certificates.crt
# This VM mounts cgroup v1 and v2 side by side (crun refuses) and forbids raising rlimits (podman's defaults
# raise them): runc with the cgroupfs manager and limits below the host's runs containers.
run=(podman --cgroup-manager cgroupfs run --rm --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

for tool in podman mmdebstrap runc; do
  command -v "$tool" >/dev/null || { echo "'$tool' is required: apt-get install -y podman mmdebstrap runc" >&2; exit 2; }
done
grep -q 'mlspec.io/accelerator="cpu"' "$dockerfile" || {
  echo "$dockerfile: only the CPU variant builds here (the CUDA one installs PyPI's CUDA torch and asks an index for onnxruntime-gpu)" >&2
  exit 2
}
[[ -f $torch_wheel ]] || { echo "no CPU torch wheel at $torch_wheel: set TORCH_CPU_WHEEL" >&2; exit 2; }
extras=$(sed -n 's/.*pip install "mlspec\[\([a-z,-]*\)\]==.*/\1/p' "$dockerfile")
version=$(sed -n 's/.*pip install "mlspec\[[a-z,-]*\]==\([0-9.]*\)".*/\1/p' "$dockerfile")
tag=${2:-$(sed -n 's/.*org.opencontainers.image.ref.name="\([^"]*\)".*/\1/p' "$dockerfile")}
[[ -n $extras && -n $version && -n $tag ]] || { echo "$dockerfile: no mlspec requirement or image reference found" >&2; exit 2; }
mkdir -p "$work/wheelhouse" "$work/pip-cache" "$work/pip-home/.config/pip"

# 1. The base: Debian 12 minbase with Debian's Python 3.11 (venv), bash and passwd (groupadd, useradd).
if ! podman image exists "$base"; then
  mmdebstrap --variant=minbase --include=python3-venv,python-is-python3,ca-certificates bookworm "$work/rootfs.tar"
  podman import --change 'CMD ["python3"]' "$work/rootfs.tar" "$base"
  rm -f "$work/rootfs.tar"
fi

# 2. The wheelhouse, resolved by the base's own interpreter: environment markers depend on it (Debian's 3.11.2
# needs async-timeout for redis, python_full_version < "3.11.3"; the host's 3.11.7 does not).
rm -rf "$work/src" "$work"/wheelhouse/mlspec-*.whl && mkdir "$work/src"
git ls-files -z --cached --others --exclude-standard | tar --null --ignore-failed-read -T - -cf - | tar -xf - -C "$work/src"
"${run[@]}" --network host -v "$work/src:/src" -v "$work/wheelhouse:/w" -v "$work/pip-cache:/root/.cache/pip" \
  -v "$torch_wheel:/torch/$(basename "$torch_wheel"):ro" -v "$ca_bundle:/ca.crt:ro" \
  -e PIP_CERT=/ca.crt -e PIP_DISABLE_PIP_VERSION_CHECK=1 -e PIP_PROGRESS_BAR=off "$base" bash -euc '
    python -m venv /v && /v/bin/pip install -q --upgrade pip
    /v/bin/pip wheel -q --no-deps -w /w /src
    /v/bin/pip wheel -q --find-links /w -w /w /torch/*.whl "/w/mlspec-$1-py3-none-any.whl[$2]"' _ "$version" "$extras"
cuda=("$work"/wheelhouse/nvidia* "$work"/wheelhouse/triton*)
if ((${#cuda[@]})); then
  echo "the wheelhouse holds CUDA wheels; refusing to build a CPU image with them" >&2
  exit 1
fi

# 3. The image. pip in the RUN steps reads ~/.config/pip/pip.conf (HOME is /root there): no index, the
# wheelhouse only. Both mounts land on directories the base already has, so nothing of them stays in a layer.
# --layers=false: no layer cache (a RUN step's cache key does not see the wheelhouse change) and no
# intermediate images; the image the tag named before is removed. chroot isolation shares the host's network
# (it allows no other); pip does not use it.
printf '[global]\nno-index = true\nfind-links = /mnt\n' >"$work/pip-home/.config/pip/pip.conf"
previous=$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
podman build --layers=false --isolation chroot --format docker --network host \
  -v "$work/wheelhouse:/mnt:ro" -v "$work/pip-home:/root:ro" \
  --build-arg "BASE=$base" -f "$dockerfile" -t "$tag" .
if [[ -n $previous && $previous != "$(podman image inspect --format '{{.Id}}' "$tag")" ]]; then
  podman rmi "$previous" >/dev/null || true
fi

"${run[@]}" --network none "$tag" mlspec --version
podman image inspect "$tag" --format "$tag: {{.Size}} bytes"
