#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install eigencnn's build and test dependencies from Debian's packages.
#   scripts/install_deps.sh          library, examples, tests, benchmarks
#   scripts/install_deps.sh --fuzz   also clang and its libFuzzer runtime (scripts/fuzz.sh)
#   scripts/install_deps.sh --torch  also PyTorch for Debian's /usr/bin/python3 (the "torch" oracle tests), with
#                                    OpenBLAS (without it PyTorch runs on the reference BLAS: bench/compare.sh then
#                                    measured its epoch at 47 s instead of 18 s)
#   scripts/install_deps.sh --bench  also oneDNN (libdnnl-dev), compared side by side in bench/conv_bench
# The flags combine: scripts/install_deps.sh --fuzz --torch
set -euo pipefail
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
pkgs=(g++ cmake make pkg-config curl ca-certificates
      libeigen3-dev zlib1g-dev libstb-dev libcli11-dev nlohmann-json3-dev doctest-dev libbenchmark-dev
      gnuplot-nox)  # gnuplot-nox: backdoor_lab sweep's plot (optional at run time: skipped when missing)
for arg in "$@"; do
  case $arg in
    --fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
    --torch) pkgs+=(python3 python3-torch python3-numpy libopenblas0-pthread) ;;
    --bench) pkgs+=(libdnnl-dev) ;;
    *) echo "install_deps.sh: unknown option $arg (known: --fuzz, --torch, --bench)" >&2; exit 2 ;;
  esac
done
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${pkgs[@]}" >/dev/null
echo "dependencies installed: ${pkgs[*]}"
