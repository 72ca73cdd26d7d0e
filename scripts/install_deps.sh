#!/usr/bin/env bash
# Install eigencnn's build and test dependencies from Debian's packages.
#   scripts/install_deps.sh          library, examples, tests, benchmarks
#   scripts/install_deps.sh --fuzz   also clang and its libFuzzer runtime (scripts/fuzz.sh)
set -euo pipefail
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
pkgs=(g++ cmake make pkg-config curl ca-certificates
      libeigen3-dev zlib1g-dev libstb-dev libcli11-dev nlohmann-json3-dev doctest-dev libbenchmark-dev
      gnuplot-nox)  # gnuplot-nox: backdoor_lab sweep's plot (optional at run time: skipped when missing)
[ "${1:-}" = "--fuzz" ] && pkgs+=(clang libclang-rt-14-dev)
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${pkgs[@]}" >/dev/null
echo "dependencies installed: ${pkgs[*]}"
