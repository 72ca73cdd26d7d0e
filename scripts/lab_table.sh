#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The lab's results table (docs/lab.md): every attack at its default settings over poison rates x seeds on one
# data set, each attack a `backdoor_lab sweep` (resumable: run the same command again after an interruption),
# plus a clean model per seed (a sweep at rate 0), then the table as Markdown (scripts/lab_table.py).
#
#   scripts/lab_table.sh DATA_DIR OUT_DIR [--threads N] [--epochs N] [--seeds N] [--rates R,R,...] [--attacks "A B ..."]
#
# Defaults: 2 threads, 10 epochs, 3 seeds, rates 0.005,0.01,0.05,0.1, all six attacks. Each sweep's wall time and
# peak memory (GNU time, when /usr/bin/time is installed) are appended to OUT_DIR/<attack>/resources.txt, a line per
# run (a resumed run reads the cells already written and is short).
set -euo pipefail
[ $# -ge 2 ] || { sed -n 3,10p "$0" | sed 's/^# \{0,1\}//'; exit 2; }
data=$(realpath -m -- "$1") out=$(realpath -m -- "$2")  # relative to where it was called from, not to the repository
shift 2
cd "$(dirname "$0")/.."
threads=2 epochs=10 seeds=3 rates=0.005,0.01,0.05,0.1 attacks="badnets-pixel badnets-patch blended sig wanet label-consistent"
while [ $# -gt 0 ]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --rates) rates=$2; shift 2 ;;
    --attacks) attacks=$2; shift 2 ;;
    *) echo "lab_table.sh: unknown argument '$1' (flags: --threads --epochs --seeds --rates --attacks)" >&2; exit 2 ;;
  esac
done
lab=build/examples/backdoor_lab
[ -x "$lab" ] || { echo "lab_table.sh: $lab not built (cmake --build build --target backdoor_lab)" >&2; exit 1; }
mkdir -p "$out"
run() {  # NAME SWEEP-FLAGS...: one sweep into OUT/NAME, resumable, timed
  local name=$1
  shift
  mkdir -p "$out/$name"
  local timer=()
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -a -f "$(date -u +%FT%TZ) $threads thread(s): wall %e s, peak RSS %M KB" -o "$out/$name/resources.txt")
  echo "== $name: $(date -u +%H:%M:%S)"
  "${timer[@]}" "$lab" sweep "$@" --data "$data" --threads "$threads" --epochs "$epochs" --seeds "$seeds" \
      --output-dir "$out/$name" --resume > "$out/$name/log.txt" 2>&1 || { echo "lab_table.sh: $name failed; see $out/$name/log.txt" >&2; tail -5 "$out/$name/log.txt" >&2; exit 1; }
}
# The clean model of each seed: rate 0 (no image poisoned; the same weights and batches as every attack's model of
# that seed), and the badnets-patch trigger measured on it.
run clean --attack badnets-patch --poison-rates 0
for a in $attacks; do run "$a" --attack "$a" --poison-rates "$rates"; done
python3 scripts/lab_table.py "$out" clean $attacks
