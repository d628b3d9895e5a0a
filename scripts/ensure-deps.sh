#!/usr/bin/env bash
# Installs what featleak needs to build on Debian/Ubuntu when it is missing:
# OpenCV (libopencv-dev), clang + libclang (the opencv crate generates its bindings with them),
# HDF5 (libhdf5-dev, for hloc's features.h5; found through pkg-config), pkg-config and a C++
# compiler. Runs apt-get when root; otherwise prints the command and stops.
#
#   scripts/ensure-deps.sh            what the default build needs
#   scripts/ensure-deps.sh --gpu-smoke  and the Vulkan loader with Mesa's lavapipe (a CPU Vulkan
#                                       driver), for `make test-gpu` on a machine without a GPU
set -euo pipefail

packages=(libopencv-dev clang libclang-dev libhdf5-dev pkg-config g++)
case "${1:-}" in
  "") ;;
  --gpu-smoke) packages+=(libvulkan1 mesa-vulkan-drivers) ;;
  *)
    echo "usage: $0 [--gpu-smoke]" >&2
    exit 2
    ;;
esac
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "installing ${missing[*]} (apt-get)..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "featleak needs these Debian packages: ${missing[*]}" >&2
    echo "install them with:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

if ! command -v cargo >/dev/null; then
  echo "featleak needs a Rust toolchain (1.88 or newer); install it with:" >&2
  echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y && . \"\$HOME/.cargo/env\"" >&2
  exit 1
fi
