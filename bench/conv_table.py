#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""conv_bench's JSON as a Markdown table: eigencnn against oneDNN per shape and pass.

    build/bench/conv_bench --threads 2 --benchmark_repetitions=3 --benchmark_out=conv.json
    build/bench/fma_peak --threads 2            # prints the peak; pass the float all-threads figure:
    bench/conv_table.py conv.json --peak 400

Each cell: eigencnn's GFLOP/s, oneDNN's, and the ratio eigencnn / oneDNN (>= 1: eigencnn is at least
as fast). With repetitions the medians are used. --peak adds eigencnn's best share of the FMA peak.
GFLOP/s counts the direct convolution's multiply-adds whatever the algorithm: eigencnn's stride-1 3x3
cells with channels in 16s run by Winograd F(2x2, 3x3) (unless conv_bench --no-winograd), 4 multiply-adds
where the direct conv does 9, so their figure is an effective rate and may pass the peak.
"""
import argparse
import json
import re
import statistics
import sys

PASSES = ["forward_inference", "forward_training", "backward_data", "backward_weights"]


def load(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"conv_table.py: cannot read {path}: {e}")
    runs = {}  # (pass, impl, shape) -> [GFLOP/s]
    for b in doc.get("benchmarks", []):
        if b.get("run_type") == "aggregate" or "error_occurred" in b and b["error_occurred"]:
            continue
        m = re.match(r"([a-z_]+)/([a-z]+)/([^/]+)/", b["name"])
        if not m or "GFLOPS" not in b:
            continue
        runs.setdefault(m.groups(), []).append(b["GFLOPS"])
    return {k: statistics.median(v) for k, v in runs.items()}, doc.get("context", {})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json", help="conv_bench --benchmark_out file")
    ap.add_argument("--peak", type=float, help="the machine's FMA peak in GFLOP/s on the same threads (bench/fma_peak)")
    a = ap.parse_args()
    if a.peak is not None and not a.peak > 0:
        sys.exit(f"conv_table.py: --peak must be a positive number, got {a.peak}")
    med, ctx = load(a.json)
    shapes = sorted({k[2] for k in med}, key=lambda s: (re.sub(r"_b\d+$", "", s), int(re.search(r"_b(\d+)$", s).group(1))))
    if not shapes:
        sys.exit(f"conv_table.py: {a.json} holds no conv_bench GFLOPS figures")
    print(f"threads: {ctx.get('threads', '?')}; GFLOP/s eigencnn / oneDNN (ratio)"
          + (f"; peak {a.peak:g} GFLOP/s" if a.peak else ""))
    print()
    print("| shape | " + " | ".join(PASSES) + " |")
    print("|---|" + "---|" * len(PASSES))
    ratios, best = [], 0.0
    for s in shapes:
        cells = []
        for p in PASSES:
            e, o = med.get((p, "eigencnn", s)), med.get((p, "onednn", s))
            if e is None:
                cells.append("")
                continue
            best = max(best, e)
            if o:
                ratios.append((e / o, p, s))
                cells.append(f"{e:.1f} / {o:.1f} ({e / o:.2f})")
            else:
                cells.append(f"{e:.1f}")
        print(f"| {s} | " + " | ".join(cells) + " |")
    if ratios:
        rs = sorted(r for r, _, _ in ratios)
        worst = min(ratios)
        print()
        print(f"ratio eigencnn / oneDNN over {len(rs)} cells: median {statistics.median(rs):.2f}, "
              f"worst {worst[0]:.2f} ({worst[1]} {worst[2]}), best {rs[-1]:.2f}; "
              f"{sum(r >= 1 for r in rs)} cells >= 1")
    if a.peak:
        print(f"eigencnn's best cell: {best:.1f} GFLOP/s = {100 * best / a.peak:.0f}% of the peak"
              + (f" (winograd {ctx['winograd']}: an effective rate)" if ctx.get("winograd") == "on" and best > a.peak else ""))


if __name__ == "__main__":
    main()
